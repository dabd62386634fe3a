import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { configSchema } from "../config.js";
import { IndexCatalog, type IndexReads } from "../query/catalog/index-catalog.js";
import type { IndexCacheConfig } from "../query/config.js";
import { indexStats, volume, type VolumeRequest } from "../query/loki/volume.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { SeriesSelect, Store } from "../storage/store.js";
import { CLICKHOUSE_URL, uniqueName } from "./helpers/services.js";
import { logBatch, TEST_RETENTION } from "./helpers/store-contract.js";

// The query service's index catalog (query/catalog/) against the store it reads, on both stores: every answer the
// index endpoints take from it equals the store's own; a stream written by another process after the catalog
// loaded, its entries hours old as from an edge node back online, shows up once the staleness bound has passed,
// and one written through the same store object at once; tenants stay apart; past its memory bound the store
// answers.

const MINUTE_NS = 60_000_000_000n;
const SEC_NS = 1_000_000_000n;
/** Mid-minute, 20 minutes ago: the data lies within the catalog's volume window. */
const NOW_NS = ((BigInt(Date.now()) * 1_000_000n) / MINUTE_NS) * MINUTE_NS - 20n * MINUTE_NS + 17n * SEC_NS;
const HOUR_NS = 60n * MINUTE_NS;

const config = (overrides: Partial<IndexCacheConfig> = {}): IndexCacheConfig => ({
  ...configSchema().parse({}).query.index_cache,
  ...overrides,
});

/** Streams of `tenant` with entries over the last hour, one entry repeated by a second batch. */
async function write(store: Store, tenant: string, id: string, services: string[], atNs = NOW_NS): Promise<void> {
  const streams = services.map((service, s) => ({
    labels: [
      ["service_name", service],
      ["level", s % 2 === 0 ? "info" : "error"],
    ] as [string, string][],
    entries: Array.from({ length: 12 }, (_, i): [bigint, string] => [
      atNs - HOUR_NS + BigInt(i) * 5n * MINUTE_NS + BigInt(s * 7 + i) * SEC_NS,
      `msg="request ${i}" service=${service} ${"x".repeat(i)}`,
    ]),
  }));
  await store.appendLogs([logBatch(`${tenant}:${id}`, streams, tenant)]);
  const repeated = [streams[0]!.entries[0]!, streams[0]!.entries[11]!];
  await store.appendLogs([logBatch(`${tenant}:${id}:again`, [{ ...streams[0]!, entries: repeated }], tenant)]);
}

const seriesSelect = (tenant: string, selectors: SeriesSelect["selectors"] = []): SeriesSelect => ({
  tenant,
  signal: "logs",
  selectors,
  startMs: Number((NOW_NS - 4n * HOUR_NS) / 1_000_000n),
  endMs: Number((NOW_NS + HOUR_NS) / 1_000_000n),
});

/** The reads of the index endpoints, through `reads`, for ranges ending mid-minute as Grafana's do. */
async function answers(reads: IndexReads, tenant: string): Promise<unknown[]> {
  const all = [{ name: "service_name", op: "=~" as const, value: ".+" }];
  const one = [{ name: "level", op: "=" as const, value: "error" }];
  const out: unknown[] = [
    await reads.series(seriesSelect(tenant)),
    await reads.series(seriesSelect(tenant, [one])),
    await reads.labelNames(seriesSelect(tenant)),
    await reads.labelValues(seriesSelect(tenant, [all]), "service_name"),
  ];
  for (const [startNs, endNs] of [
    [NOW_NS - HOUR_NS, NOW_NS],
    [NOW_NS - 4n * HOUR_NS - 13n * SEC_NS, NOW_NS + 3n * SEC_NS],
    [NOW_NS - 30n * MINUTE_NS + 1n, NOW_NS - 30n * MINUTE_NS + 20n * SEC_NS],
  ] as const) {
    for (const matchers of [all, one]) {
      out.push(await indexStats(reads, tenant, matchers, startNs, endNs - 1n));
      const request: VolumeRequest = {
        tenant,
        matchers,
        startNs,
        endNs,
        stepNs: undefined,
        limit: 100,
        targetLabels: ["service_name"],
        aggregateBy: "series",
      };
      out.push(await volume(reads, request), await volume(reads, { ...request, stepNs: 5n * MINUTE_NS }));
    }
  }
  return out;
}

/** The store seen as another process sees it: its writes do not tell the catalog. */
function elsewhere(store: Store): Store {
  return new Proxy(store, {
    get(target, name) {
      if (name === "writeEpochs") return undefined;
      const value = Reflect.get(target, name, target) as unknown;
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function catalogSuite(name: string, open: () => Promise<Store>): void {
  describe(`index catalog on ${name}`, () => {
    let store: Store;
    before(async () => {
      store = await open();
      await write(store, "acme", "1", ["api", "web", "db"]);
      await write(store, "other", "1", ["billing"]);
    });
    after(() => store.close());

    it("answers every index read as the store does, and follows writes through the same store at once", async () => {
      const catalog = new IndexCatalog(store, config());
      assert.deepEqual(await answers(catalog, "acme"), await answers(store, "acme"));
      await write(store, "acme", "2", ["queue"], NOW_NS - 3n * HOUR_NS);
      const names = (await catalog.labelValues(seriesSelect("acme"), "service_name")) as string[];
      assert.ok(names.includes("queue"), names.join());
      assert.deepEqual(await answers(catalog, "acme"), await answers(store, "acme"));
    });

    it("shows a stream another process writes after it loaded, entries hours old, once the staleness bound passed", async () => {
      let clock = 0;
      const catalog = new IndexCatalog(elsewhere(store), config({ staleness_ms: 1000 }), () => clock);
      await catalog.series(seriesSelect("acme"));
      await write(store, "acme", "3", ["late-edge-node"], NOW_NS - 2n * HOUR_NS);
      clock += 1001;
      const services = (await catalog.series(seriesSelect("acme"))).map((labels) => labels["service_name"]);
      assert.ok(services.includes("late-edge-node"), services.join());
      assert.deepEqual(await answers(catalog, "acme"), await answers(store, "acme"));
    });

    it("keeps tenants apart", async () => {
      const catalog = new IndexCatalog(store, config());
      const acme = await catalog.series(seriesSelect("acme"));
      const other = await catalog.series(seriesSelect("other"));
      assert.deepEqual(
        other.map((labels) => labels["service_name"]),
        ["billing"],
      );
      assert.ok(!acme.some((labels) => labels["service_name"] === "billing"));
      assert.deepEqual(await answers(catalog, "other"), await answers(store, "other"));
      assert.deepEqual(await answers(catalog, "nobody"), await answers(store, "nobody"));
    });

    it("leaves a tenant over its memory bound to the store, with the same answers", async () => {
      const catalog = new IndexCatalog(store, config({ max_streams: 2 }));
      assert.deepEqual(await answers(catalog, "acme"), await answers(store, "acme"));
      const cells = new IndexCatalog(store, config({ max_volume_cells: 10 }));
      assert.deepEqual(await answers(cells, "acme"), await answers(store, "acme"));
    });

    it("reads what a retention run left", async () => {
      const catalog = new IndexCatalog(store, config());
      await catalog.series(seriesSelect("other"));
      await store.enforceRetention(Date.now() + (TEST_RETENTION.logs_days + 1) * 86_400_000);
      assert.deepEqual(await answers(catalog, "other"), await answers(store, "other"));
    });
  });
}

catalogSuite("ClickHouse", async () => {
  const store = new ClickHouseStore({
    url: CLICKHOUSE_URL,
    username: "default",
    password: "",
    database: uniqueName("index_catalog"),
    retention: TEST_RETENTION,
  });
  await store.migrate();
  return store;
});

const dir = mkdtempSync(join(tmpdir(), "bifrost-index-catalog-"));
after(() => rmSync(dir, { recursive: true, force: true }));
catalogSuite("DuckDB", async () => {
  const store = new DuckDBStore({ path: join(dir, "bifrost.duckdb"), retention: TEST_RETENTION });
  await store.migrate();
  return store;
});
