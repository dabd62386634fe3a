import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { evaluate, type QueryParams, type QueryResult } from "../query/logql/evaluation/evaluator.js";
import { parseLogQL } from "../common/logql/syntax/parser.js";
import { StoreSource } from "../query/logql/pushdown/store-source.js";
import { keepLabels, labelsKey, type Labels } from "../proto/labels.js";
import type { Store } from "../storage/store.js";
import { onBothStores } from "./helpers/loki-http.js";
import { logBatch, T0_NS } from "./helpers/store-contract.js";

// An outer `sum by (...)` lends its grouping to the range aggregation under it, and the parsers then extract only
// the labels the query reads (query/logql/pipeline/hints.ts). Neither may change an answer: each grouped query
// must equal the range aggregation evaluated alone (every label extracted, one series per label set) and summed
// here by the same labels. Lines are logfmt and JSON, with keys that clash with stream labels, nested objects,
// empty values and malformed lines; the engine reads them in pages of fifty entries, so that paging counts too.

const SEC = 1_000_000_000n;
const SEED = Number(process.env.BIFROST_TEST_SEED ?? 20261207);

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = random(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

function logfmtLine(): string {
  const fields = [
    `level=${pick(["info", "warn", "error"])}`,
    `status=${pick(["200", "404", "500", ""])}`,
    `duration=${pick(["12ms", "1.5s", "bad", "300us"])}`,
    `pod=${pick(["a", "b"])}`,
    `id=${Math.floor(rand() * 1000)}`,
  ];
  if (rand() < 0.1) fields.push('msg="unterminated');
  return fields.filter(() => rand() < 0.85).join(" ");
}

function jsonLine(): string {
  if (rand() < 0.05) return '{"level": "info", "status": ';
  return JSON.stringify({
    level: pick(["info", "warn", "error"]),
    status: pick([200, 404, 500]),
    pod: pick(["a", "b"]),
    user: { tier: pick(["free", "gold"]), id: `u${Math.floor(rand() * 50)}`, deep: { x: pick(["1", "2"]) } },
    bytes: Math.floor(rand() * 5000),
  });
}

async function load(store: Store): Promise<void> {
  const streams = [];
  for (const [app, line] of [
    ["api", logfmtLine],
    ["web", jsonLine],
  ] as const) {
    for (const pod of ["a", "b", "c"]) {
      const entries: [bigint, string][] = [];
      for (let i = 0; i < 120; i++) entries.push([T0_NS + BigInt(Math.floor(rand() * 3600)) * SEC, line()]);
      streams.push({ labels: [["app", app] as [string, string], ["pod", pod] as [string, string]], entries });
    }
  }
  await store.appendLogs([logBatch("hints:0", streams)]);
}

const GROUPINGS = ["status", "level", "pod, level", "pod_extracted", "user_tier", "user_deep_x, status", ""];
const PIPELINES = [
  "| logfmt",
  '| logfmt | __error__=""',
  '| logfmt | status >= 400 | __error__=""',
  '| logfmt | drop id | __error__=""',
  '| logfmt | keep level, status | __error__=""',
  '| logfmt | label_format lvl="{{.level}}-{{.status}}" | line_format "{{.duration}}" | __error__=""',
  "| json",
  '| json | __error__=""',
  '| json | user_tier="gold" | __error__=""',
  '| json | line_format "{{.user_id}}" | __error__=""',
];

function sumBy(result: QueryResult, names: string[]): unknown {
  if (result.type !== "matrix") return result;
  const groups = new Map<string, { labels: Labels; points: Map<number, number> }>();
  for (const series of result.series) {
    const labels = keepLabels(series.labels, names);
    const key = labelsKey(labels);
    let group = groups.get(key);
    if (group === undefined) groups.set(key, (group = { labels, points: new Map() }));
    for (const [ts, value] of series.points) group.points.set(ts, (group.points.get(ts) ?? 0) + value);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, g]) => ({ labels: { ...g.labels }, points: [...g.points].sort((a, b) => a[0] - b[0]) }));
}

function matrixOf(result: QueryResult): unknown {
  if (result.type !== "matrix") return result;
  return result.series
    .map((s) => ({ key: labelsKey(s.labels), labels: { ...s.labels }, points: s.points }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ labels, points }) => ({ labels, points }));
}

/** Relative differences below 1e-12 (a sum added in another order) made equal. */
function close(actual: unknown, expected: unknown): unknown {
  if (typeof actual === "number" && typeof expected === "number")
    return Math.abs(actual - expected) <= 1e-12 * Math.max(Math.abs(actual), Math.abs(expected)) ? expected : actual;
  if (Array.isArray(actual) && Array.isArray(expected)) return actual.map((v, i) => close(v, expected[i]));
  if (typeof actual === "object" && actual !== null && typeof expected === "object" && expected !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(actual)) out[k] = close(v, (expected as Record<string, unknown>)[k]);
    return out;
  }
  return actual;
}

async function outcome(run: () => Promise<QueryResult>, shape: (result: QueryResult) => unknown): Promise<unknown> {
  try {
    return shape(await run());
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function suite(name: string, open: () => Promise<Store>): void {
  describe(`grouped LogQL metric queries equal their ungrouped sums on ${name}`, () => {
    let store: Store;
    before(async () => {
      store = await open();
      await load(store);
    });
    after(() => store.close());

    it(`answers 80 random parsed queries as the sums of their series (seed ${SEED})`, async () => {
      let series = 0;
      for (let i = 0; i < 80; i++) {
        const grouping = pick(GROUPINGS);
        const names = grouping === "" ? [] : grouping.split(", ");
        const pipeline = pick(PIPELINES);
        const selector = pipeline.includes("json") ? '{app="web"}' : '{app="api"}';
        const unwrap = pipeline.includes("json")
          ? ' | unwrap bytes | __error__=""'
          : ' | unwrap duration(duration) | __error__=""';
        const op = pick(["count_over_time", "rate", "bytes_over_time", "sum_over_time"]);
        const inner = `${op}(${selector} ${pipeline}${op === "sum_over_time" ? unwrap : ""} [${pick(["1m", "5m", "10m"])}])`;
        const query = `sum${grouping === "" ? "" : ` by (${grouping})`} (${inner})`;
        const startNs = T0_NS + BigInt(Math.floor(rand() * 1800)) * SEC;
        const params: QueryParams = {
          startNs,
          endNs: startNs + BigInt(Math.floor(rand() * 1800)) * SEC,
          stepNs: BigInt(pick([30, 60, 90])) * SEC,
          direction: "forward",
          limit: 100,
          instant: false,
        };
        const limits = { maxSeries: 100_000 };
        const source = () => new StoreSource(store, "acme", { pushdown: false, pageEntries: 50 });
        const grouped = await outcome(() => evaluate(parseLogQL(query), params, source(), limits), matrixOf);
        const expected = await outcome(
          () => evaluate(parseLogQL(inner), params, source(), limits),
          (result) => sumBy(result, names),
        );
        const refused = (value: unknown) => typeof value === "object" && value !== null && "error" in value;
        // A pipeline error refuses both; the refusal names a series, which grouping may pick differently.
        if (refused(expected)) assert.ok(refused(grouped), `${query}: ${JSON.stringify(grouped)}`);
        else {
          assert.deepEqual(close(grouped, expected), expected, query);
          series += Array.isArray(expected) ? expected.length : 0;
        }
      }
      assert.ok(series > 50, `only ${series} series in all answers`);
    });
  });
}

onBothStores("grouping_hints", suite);
