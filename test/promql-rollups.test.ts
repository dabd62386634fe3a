import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { Authenticator } from "../common/auth.js";
import { configSchema } from "../config.js";
import { rollupBatch } from "../aggregator/rollup.js";
import { createLogger } from "../common/log.js";
import { batchId, SampleKind, type Series } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { prometheusRoutes, SOURCES_HEADER } from "../query/promql/api.js";
import { rangeQuery } from "../query/promql/evaluation/evaluator.js";
import type { QuerySource } from "../query/promql/evaluation/loader.js";
import { parsePromql } from "../query/promql/syntax/parser.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { Store } from "../storage/store.js";
import { prng } from "./helpers/batches.js";
import { T0_MS } from "./helpers/promql-data.js";
import { CLICKHOUSE_URL, uniqueName } from "./helpers/services.js";

// Differential test of rollup-answered PromQL (query/promql/pushdown/rollups.ts): every generated query is evaluated once
// with rollups allowed and once from raw samples only, on both stores, and the answers must be identical. The data
// is written as the aggregator writes it (raw samples, and rollupBatch() partials of the same batches), split
// into batches that two aggregators deliver late and out of order, one of them twice. It has samples exactly on
// minute and hour boundaries, counter resets, duplicate timestamps, floats, and a tenant with NaN samples.

const RETENTION = { logs_days: 3650, samples_days: 3650, rollups_1m_days: 3650, rollups_1h_days: 3650 };
const SPAN_MS = 3 * 3_600_000;
const TENANT = "diff";
const NAN_TENANT = "diff-nan";

function series(
  name: string,
  labels: [string, string][],
  kind: SampleKind,
  intervalMs: number,
  shiftMs: number,
  value: (i: number) => number,
): Series {
  const points = [];
  for (let i = 0, t = T0_MS + shiftMs; t < T0_MS + SPAN_MS; i++, t += intervalMs)
    points.push({ timeUnixMs: t, value: value(i) });
  return { name, labels: labelsOf(labels), kind, points };
}

function dataSet(): Series[] {
  const random = prng(42);
  let counter = 0;
  return [
    // Every 15 s from a whole minute: a sample on every minute and hour boundary.
    series("edge_gauge", [["job", "a"]], SampleKind.Gauge, 15_000, 0, () => Math.floor(random() * 100) - 50),
    // Rising: the sample on the minute boundary is its bucket's minimum.
    series("edge_gauge", [["job", "rising"]], SampleKind.Gauge, 20_000, 0, (i) => i),
    // Falling every 30 s from a whole minute: the boundary sample is its bucket's maximum.
    series("edge_gauge", [["job", "falling"]], SampleKind.Gauge, 30_000, 0, (i) => 10_000 - i),
    // A counter with resets, every 10 s plus 3 ms.
    series("requests_total", [["job", "a"]], SampleKind.Counter, 10_000, 3, (i) =>
      i % 97 === 0 ? (counter = 0) : (counter += Math.floor(random() * 10)),
    ),
    // Floats, off the boundaries: sums must come from raw samples, extremes need not.
    series("float_gauge", [["job", "b"]], SampleKind.Gauge, 7_000, 1_234, () => random() * 10),
    // Every 60 s on the boundary and once more 1 ms later: duplicate-free, but two samples per bucket edge area.
    series("sparse", [["job", "c"]], SampleKind.Gauge, 60_000, 0, (i) => (i * 7) % 13),
    series("sparse", [["job", "c2"]], SampleKind.Gauge, 60_000, 1, (i) => (i * 5) % 11),
  ];
}

/** Each series cut into batches of `size` points, with the sample before each batch as the node sends it. */
function batches(
  all: Series[],
  size: number,
  tenant: string,
  node: string,
): { id: string; tenant: string; series: Series[] }[] {
  const out = [];
  const longest = Math.max(...all.map((s) => s.points.length));
  for (let from = 0; from < longest; from += size) {
    const part = all
      .filter((s) => s.points.length > from)
      .map((s) => ({
        ...s,
        points: s.points.slice(from, from + size),
        ...(from > 0 ? { previous: s.points[from - 1]! } : {}),
      }));
    out.push({ id: batchId({ tenant, nodeId: node, sequence: from }), tenant, series: part });
  }
  return out;
}

async function load(store: Store): Promise<void> {
  const data = dataSet();
  // Two aggregators: one has the even series, the other the odd ones, in batches that arrive newest first.
  const a = batches(
    data.filter((_, i) => i % 2 === 0),
    40,
    TENANT,
    "node-a",
  ).reverse();
  const b = batches(
    data.filter((_, i) => i % 2 === 1),
    25,
    TENANT,
    "node-b",
  );
  // Late duplicates of the same timestamps in a batch of their own (a retried scrape of another node).
  const late = {
    id: batchId({ tenant: TENANT, nodeId: "node-late", sequence: 0 }),
    tenant: TENANT,
    series: [{ ...data[0]!, points: data[0]!.points.slice(100, 140) }],
  };
  for (const batch of [...a.slice(0, 3), ...b, late, ...a.slice(3), a[0]!]) {
    await store.appendSamples([batch]);
    await store.appendRollups([{ id: batch.id, tenant: batch.tenant, partials: rollupBatch(batch.series) }]);
  }
  const nan = [series("with_nan", [["job", "n"]], SampleKind.Gauge, 15_000, 0, (i) => (i % 50 === 7 ? NaN : i))];
  const nanBatch = { id: batchId({ tenant: NAN_TENANT, nodeId: "n", sequence: 0 }), tenant: NAN_TENANT, series: nan };
  await store.appendSamples([nanBatch]);
  await store.appendRollups([{ id: nanBatch.id, tenant: NAN_TENANT, partials: rollupBatch(nan) }]);
}

const FUNCTIONS = ["count_over_time", "sum_over_time", "avg_over_time", "min_over_time", "max_over_time"];
const SELECTORS = [
  "edge_gauge",
  'edge_gauge{job="rising"}',
  'edge_gauge{job="falling"}',
  "requests_total",
  "float_gauge",
  "sparse",
  '{__name__=~"edge_gauge|sparse"}',
];
// Mostly shapes rollups can answer, some that they cannot (90 s, 30 s, starts off the minute).
const RANGES = ["1m", "2m", "5m", "10m", "1h", "90s"];
const STEPS = [60_000, 120_000, 300_000, 3_600_000, 30_000];
const STARTS = [T0_MS, T0_MS + 60_000, T0_MS + 3_600_000, T0_MS + 120_000, T0_MS + 1, T0_MS + 30_000];

interface Generated {
  query: string;
  startMs: number;
  endMs: number;
  stepMs: number;
}

function generated(count: number): Generated[] {
  const random = prng(7);
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)]!;
  const out: Generated[] = [];
  for (let i = 0; i < count; i++) {
    const offset = pick(["", "", "", " offset 1m", " offset 30s", " offset 1h"]);
    let query = `${pick(FUNCTIONS)}(${pick(SELECTORS)}[${pick(RANGES)}]${offset})`;
    if (random() < 0.2) query = `sum by (job) (${query})`;
    if (random() < 0.1) query = `${query} * 2`;
    const stepMs = pick(STEPS);
    const startMs = pick(STARTS);
    const steps = 1 + Math.floor(random() * 60);
    out.push({ query, startMs, endMs: Math.min(startMs + (steps - 1) * stepMs, T0_MS + SPAN_MS + 3_600_000), stepMs });
  }
  return out;
}

const QUERY_COUNT = 300;

function rollupSuite(name: string, open: () => Promise<Store>): void {
  describe(`PromQL rollups on ${name}`, () => {
    let store: Store;

    before(async () => {
      store = await open();
      await load(store);
    });
    after(() => store.close());

    it(`answers ${QUERY_COUNT} generated queries as raw samples do, many of them from rollups`, async () => {
      const used = new Map<string, number>();
      for (const q of generated(QUERY_COUNT)) {
        const expr = parsePromql(q.query);
        const sources: QuerySource[] = [];
        const rolled = await rangeQuery({ store, tenant: TENANT, sources }, expr, q.startMs, q.endMs, q.stepMs);
        const raw = await rangeQuery({ store, tenant: TENANT, rollups: false }, expr, q.startMs, q.endMs, q.stepMs);
        assert.deepStrictEqual(
          rolled,
          raw,
          `${q.query} from ${q.startMs} to ${q.endMs} step ${q.stepMs}: ${JSON.stringify(sources)}`,
        );
        for (const s of sources) {
          const key = s.source + (s.reason ? ` (${s.reason})` : "");
          used.set(key, (used.get(key) ?? 0) + 1);
        }
      }
      const rolledUp = (used.get("rollup_1m") ?? 0) + (used.get("rollup_1h") ?? 0);
      assert.ok(rolledUp >= QUERY_COUNT / 5, `too few rollup answers: ${JSON.stringify([...used])}`);
      assert.ok((used.get("rollup_1h") ?? 0) > 0, `no 1h rollup answers: ${JSON.stringify([...used])}`);
    });

    it("answers from rollups across bucket-edge samples, and says which source answered", async () => {
      const cases: [string, string, number, string | RegExp][] = [
        // Samples on every minute edge: counts, sums and maxima of the rising series still come from rollups.
        ['count_over_time(edge_gauge{job="rising"}[5m])', TENANT, 60_000, "rollup_1m"],
        ['max_over_time(edge_gauge{job="rising"}[5m])', TENANT, 60_000, "rollup_1m"],
        ['max_over_time(edge_gauge{job="rising"}[1h])', TENANT, 3_600_000, "rollup_1h"],
        // Its minimum of each window's first bucket is on the left edge, outside the window: unknowable.
        ['min_over_time(edge_gauge{job="rising"}[5m])', TENANT, 60_000, "raw (extreme on a bucket edge)"],
        ["sum_over_time(float_gauge[5m])", TENANT, 60_000, "raw (sums of non-integer samples)"],
        ["max_over_time(float_gauge[5m])", TENANT, 60_000, "rollup_1m"],
        ["count_over_time(with_nan[5m])", NAN_TENANT, 60_000, "raw (NaN samples)"],
        ["count_over_time(edge_gauge[5m])", TENANT, 30_000, /^raw \(range or evaluation times/],
      ];
      for (const [query, tenant, stepMs, want] of cases) {
        const expr = parsePromql(query);
        const sources: QuerySource[] = [];
        const startMs = T0_MS + 3_600_000;
        const rolled = await rangeQuery({ store, tenant, sources }, expr, startMs, startMs + 2 * 3_600_000, stepMs);
        assert.deepStrictEqual(
          rolled,
          await rangeQuery({ store, tenant, rollups: false }, expr, startMs, startMs + 2 * 3_600_000, stepMs),
          query,
        );
        assert.ok(rolled.length > 0, query);
        assert.equal(sources.length, 1, query);
        const got = sources[0]!.source + (sources[0]!.reason ? ` (${sources[0]!.reason})` : "");
        if (typeof want === "string") assert.equal(got, want, query);
        else assert.match(got, want, query);
      }
    });

    it(`names the sources in the ${SOURCES_HEADER} header`, async () => {
      const app = new Hono();
      app.use(new Authenticator(configSchema().parse({}).auth, TENANT).middleware());
      prometheusRoutes(app, { store, log: createLogger("silent") });
      const params = new URLSearchParams({
        query: "max_over_time(sparse[5m]) + count_over_time(float_gauge[90s])",
        start: String(T0_MS / 1000 + 600),
        end: String(T0_MS / 1000 + 1200),
        step: "60",
      });
      const response = await app.request(`/api/v1/query_range?${params}`, { headers: { "X-Scope-OrgID": TENANT } });
      assert.equal(response.status, 200, await response.clone().text());
      assert.equal(
        response.headers.get(SOURCES_HEADER),
        "max_over_time[300s]=rollup_1m, count_over_time[90s]=raw (range or evaluation times not multiples of a rollup bucket)",
      );
    });
  });
}

rollupSuite("ClickHouse", async () => {
  const store = new ClickHouseStore({
    url: CLICKHOUSE_URL,
    username: "default",
    password: "",
    database: uniqueName("rollups"),
    retention: RETENTION,
  });
  await store.migrate();
  return store;
});

const dir = mkdtempSync(join(tmpdir(), "bifrost-rollups-"));
after(() => rmSync(dir, { recursive: true, force: true }));
rollupSuite("DuckDB", async () => {
  const store = new DuckDBStore({ path: join(dir, "bifrost.duckdb"), retention: RETENTION });
  await store.migrate();
  return store;
});
