import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { batchId, SampleKind, type Series } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { STALE_NAN } from "../proto/staleness.js";
import { instantQuery, rangeQuery } from "../query/promql/evaluation/evaluator.js";
import { parsePromql } from "../query/promql/syntax/parser.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { Store } from "../storage/store.js";
import { prng } from "./helpers/batches.js";
import { T0_MS } from "./helpers/promql-data.js";
import { CLICKHOUSE_URL, uniqueName } from "./helpers/services.js";

// Differential test of range functions answered from the store's per-slice sums (query/promql/pushdown/slices.ts):
// every generated query is evaluated once with slices and once from raw samples only (rollups off in both), on
// both stores, and the answers must be identical, instant queries too. The data has samples exactly on slice
// edges, duplicate timestamps, gaps, floats, and a tenant whose series hold NaN, staleness markers, negative zero
// and infinities; the test also checks which of the two answered, by counting the store's raw sample reads.

const RETENTION = { logs_days: 3650, samples_days: 3650, rollups_1m_days: 3650, rollups_1h_days: 3650 };
const SPAN_MS = 3 * 3_600_000;
const TENANT = "slices";
const SPECIAL_TENANT = "slices-special";

function series(
  name: string,
  labels: [string, string][],
  intervalMs: number,
  shiftMs: number,
  value: (i: number) => number,
  skip: (i: number) => boolean = () => false,
): Series {
  const points = [];
  for (let i = 0, t = T0_MS + shiftMs; t < T0_MS + SPAN_MS; i++, t += intervalMs)
    if (!skip(i)) points.push({ timeUnixMs: t, value: value(i) });
  return { name, labels: labelsOf(labels), kind: SampleKind.Gauge, points };
}

function dataSet(): Series[] {
  const random = prng(11);
  return [
    // Every 15 s from a whole minute: samples on every slice edge of whole-minute windows.
    series("gauge", [["job", "a"]], 15_000, 0, () => Math.floor(random() * 1000) - 500),
    // Every 10 s plus 3 ms, with an hour-long gap.
    series(
      "gauge",
      [["job", "b"]],
      10_000,
      3,
      (i) => (i * 37) % 101,
      (i) => i >= 400 && i < 760,
    ),
    // Every 20 s from a whole minute, only in the middle hour: windows before and after hold nothing.
    series(
      "gauge",
      [["job", "c"]],
      20_000,
      0,
      (i) => i,
      (i) => i < 180 || i >= 360,
    ),
    // Floats: sums must come from raw samples, extremes and counts need not.
    series("float_gauge", [["job", "f"]], 7_000, 1_234, () => random() * 10),
    // Large integers: beyond the bound that keeps sums exact in any order.
    series("big_gauge", [["job", "g"]], 30_000, 0, (i) => 2 ** 40 + i),
  ];
}

function specialSet(): Series[] {
  return [
    series("with_nan", [["job", "n"]], 15_000, 0, (i) => (i % 50 === 7 ? NaN : i)),
    series("with_stale", [["job", "s"]], 15_000, 0, (i) => (i % 240 === 120 ? STALE_NAN : i)),
    series("with_negative_zero", [["job", "z"]], 15_000, 0, (i) => (i % 3 === 0 ? -0 : 0)),
    series("with_infinity", [["job", "i"]], 15_000, 0, (i) => (i % 100 === 5 ? -Infinity : i % 7)),
  ];
}

async function load(store: Store): Promise<void> {
  const data = dataSet();
  let sequence = 0;
  for (const [tenant, all] of [
    [TENANT, data],
    [SPECIAL_TENANT, specialSet()],
  ] as const) {
    for (const one of all) {
      for (let from = 0; from < one.points.length; from += 200) {
        const part = { ...one, points: one.points.slice(from, from + 200) };
        await store.appendSamples([
          { id: batchId({ tenant, nodeId: "n", sequence: sequence++ }), tenant, series: [part] },
        ]);
      }
    }
  }
  // Late duplicates of the same timestamps in a batch of their own (a retried scrape of another node).
  const late = { ...data[0]!, points: data[0]!.points.slice(100, 140) };
  await store.appendSamples([
    { id: batchId({ tenant: TENANT, nodeId: "late", sequence: 0 }), tenant: TENANT, series: [late] },
  ]);
}

/** The store, counting its raw sample reads: a query answered from slices reads none. */
function counting(store: Store): { store: Store; reads: () => number } {
  let reads = 0;
  const wrapped = new Proxy(store, {
    get(target, property) {
      if (property === "selectSamples")
        return (...args: Parameters<Store["selectSamples"]>) => {
          reads++;
          return target.selectSamples(...args);
        };
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store: wrapped, reads: () => reads };
}

const FUNCTIONS = [
  "count_over_time",
  "present_over_time",
  "sum_over_time",
  "avg_over_time",
  "min_over_time",
  "max_over_time",
];
const SELECTORS = [
  "gauge",
  'gauge{job="a"}',
  'gauge{job="c"}',
  "float_gauge",
  "big_gauge",
  '{__name__=~"gauge|big_gauge"}',
];
const RANGES = ["1m", "2m", "5m", "90s", "1h", "7s", "15s"];
const STEPS = [60_000, 30_000, 300_000, 17_000, 3_600_000, 15_000];
const STARTS = [T0_MS, T0_MS + 60_000, T0_MS + 3_600_000, T0_MS + 1, T0_MS + 30_000, T0_MS - 600_000];
const MODIFIERS = ["", "", "", " offset 1m", " offset 7s", " @ start()", ` @ ${(T0_MS + 5_400_000) / 1000}`];

interface Generated {
  query: string;
  startMs: number;
  endMs: number;
  stepMs: number;
}

function generated(count: number, functions: string[], selectors: string[]): Generated[] {
  const random = prng(5);
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)]!;
  const out: Generated[] = [];
  for (let i = 0; i < count; i++) {
    let query = `${pick(functions)}(${pick(selectors)}[${pick(RANGES)}]${pick(MODIFIERS)})`;
    if (random() < 0.2) query = `sum by (job) (${query})`;
    if (random() < 0.1) query = `${query} * 2`;
    const stepMs = pick(STEPS);
    const startMs = pick(STARTS);
    const steps = 1 + Math.floor(random() * 80);
    out.push({ query, startMs, endMs: Math.min(startMs + (steps - 1) * stepMs, T0_MS + SPAN_MS + 3_600_000), stepMs });
  }
  return out;
}

const QUERY_COUNT = 200;

function slicesSuite(name: string, open: () => Promise<Store>): void {
  describe(`PromQL slices on ${name}`, () => {
    let store: Store;

    before(async () => {
      store = await open();
      await load(store);
    });
    after(() => store.close());

    /** Both answers of one query must be equal; says whether slices answered (no raw sample read). */
    async function compare(tenant: string, q: Generated): Promise<boolean> {
      const expr = parsePromql(q.query);
      const raw = await rangeQuery(
        { store, tenant, rollups: false, slices: false },
        expr,
        q.startMs,
        q.endMs,
        q.stepMs,
      );
      const spy = counting(store);
      const sliced = await rangeQuery({ store: spy.store, tenant, rollups: false }, expr, q.startMs, q.endMs, q.stepMs);
      assert.deepStrictEqual(sliced, raw, `${q.query} from ${q.startMs} to ${q.endMs} step ${q.stepMs}`);
      const instantRaw = await instantQuery({ store, tenant, rollups: false, slices: false }, expr, q.endMs);
      const instant = await instantQuery({ store, tenant, rollups: false }, expr, q.endMs);
      assert.deepStrictEqual(instant, instantRaw, `${q.query} at ${q.endMs}`);
      return spy.reads() === 0;
    }

    it(`answers ${QUERY_COUNT} generated queries as raw samples do, most of them from slices`, async () => {
      let sliced = 0;
      for (const q of generated(QUERY_COUNT, FUNCTIONS, SELECTORS)) if (await compare(TENANT, q)) sliced++;
      assert.ok(sliced >= QUERY_COUNT / 2, `only ${sliced} of ${QUERY_COUNT} queries answered from slices`);
    });

    it("reads raw samples where slices are not exact, and answers the same", async () => {
      const window = { startMs: T0_MS + 3_600_000, endMs: T0_MS + 7_200_000, stepMs: 60_000 };
      const cases: [string, string, boolean][] = [
        ["count_over_time(with_nan[5m])", SPECIAL_TENANT, false],
        ["max_over_time(with_nan[5m])", SPECIAL_TENANT, false],
        ["count_over_time(with_stale[5m])", SPECIAL_TENANT, false],
        ["min_over_time(with_negative_zero[5m])", SPECIAL_TENANT, false],
        ["avg_over_time(with_negative_zero[5m])", SPECIAL_TENANT, false],
        ["sum_over_time(with_infinity[5m])", SPECIAL_TENANT, false],
        ["min_over_time(with_infinity[5m])", SPECIAL_TENANT, true],
        ["sum_over_time(float_gauge[5m])", TENANT, false],
        ["max_over_time(float_gauge[5m])", TENANT, true],
        ["avg_over_time(big_gauge[5m])", TENANT, false],
        ["count_over_time(big_gauge[5m])", TENANT, true],
        ['sum_over_time(gauge{job="a"}[5m])', TENANT, true],
        ["rate(gauge[5m])", TENANT, false],
      ];
      for (const [query, tenant, fromSlices] of cases) {
        const q = { query, ...window };
        assert.equal(await compare(tenant, q), fromSlices, query);
        const answer = await rangeQuery(
          { store, tenant, rollups: false },
          parsePromql(query),
          q.startMs,
          q.endMs,
          q.stepMs,
        );
        assert.ok(answer.length > 0, query);
      }
    });
  });
}

slicesSuite("ClickHouse", async () => {
  const store = new ClickHouseStore({
    url: CLICKHOUSE_URL,
    username: "default",
    password: "",
    database: uniqueName("slices"),
    retention: RETENTION,
  });
  await store.migrate();
  return store;
});

const dir = mkdtempSync(join(tmpdir(), "bifrost-slices-"));
after(() => rmSync(dir, { recursive: true, force: true }));
slicesSuite("DuckDB", async () => {
  const store = new DuckDBStore({ path: join(dir, "bifrost.duckdb"), retention: RETENTION });
  await store.migrate();
  return store;
});
