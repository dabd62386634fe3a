import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { evaluate, type QueryParams } from "../query/logql/evaluation/evaluator.js";
import { parseLogQL } from "../common/logql/syntax/parser.js";
import type { Step } from "../query/logql/evaluation/source.js";
import { StoreSource } from "../query/logql/pushdown/store-source.js";
import type { LogSelect, Store } from "../storage/store.js";
import { onBothStores } from "./helpers/loki-http.js";
import { logBatch, T0_NS } from "./helpers/store-contract.js";

// The TypeScript engine is the reference: every query answered with pushdown into the Store must equal the
// answer of the engine streaming the same entries itself. Random data (entries on and between bucket edges,
// with and without structured metadata) and random queries over operations, ranges, steps, offsets and filters.

const SEC = 1_000_000_000n;
const WORDS = ["GET", "POST", "error", "timeout", "orders", "users", "ok", "Ünïcode"];

/** A small deterministic PRNG so that a failure can be replayed from its seed. */
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

const SEED = Number(process.env.BIFROST_TEST_SEED ?? 20261128);
const rand = random(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

async function load(store: Store): Promise<void> {
  const data = random(SEED);
  const batches = [];
  for (let b = 0; b < 6; b++) {
    const streams = [];
    for (const service of ["api", "worker", "db"]) {
      const entries: [bigint, string, [string, string][]?][] = [];
      for (let i = 0; i < 150; i++) {
        // Timestamps on whole seconds and minutes (window edges) as well as in between.
        const second = Math.floor(data() * 3 * 3600);
        const ts = T0_NS + BigInt(second) * SEC + (data() < 0.5 ? 0n : BigInt(Math.floor(data() * 1e9)));
        const line = Array.from(
          { length: 1 + Math.floor(data() * 4) },
          () => WORDS[Math.floor(data() * WORDS.length)],
        ).join(" ");
        // Structured metadata: a label no stream has (trace) and one that clashes with a stream label (level).
        const metadata = data();
        if (metadata < 0.2) entries.push([ts, line, [["trace", `t${Math.floor(data() * 3)}`]]]);
        else if (metadata < 0.25)
          entries.push([
            ts,
            line,
            [
              ["trace", "t0"],
              ["level", "debug"],
            ],
          ]);
        else entries.push([ts, line]);
      }
      streams.push({
        labels: [
          ["service", service],
          ["level", pick(["info", "error"])],
          ["node", `n${b % 2}`],
        ] as [string, string][],
        entries,
      });
    }
    batches.push(logBatch(`edge:${b}`, streams));
  }
  await store.appendLogs(batches);
}

/** Aggregations around the range aggregation; the `sum`s with `by` or no grouping are pushed down as sums. */
const OUTER = [
  "",
  "sum by (level) ",
  "sum by (trace) ",
  "sum by (level, node) ",
  "sum ",
  "sum by (level_extracted) ",
  "sum without (node) ",
  "topk(2, ",
];
const PUSHED_SUMS = ["sum ", "sum by (level) ", "sum by (level, node) ", "sum by (trace) "];

function queries(count: number): { query: string; outer: string; op: string; params: QueryParams }[] {
  const out = [];
  for (let i = 0; i < count; i++) {
    const op = pick(["count_over_time", "rate", "bytes_over_time", "bytes_rate"]);
    const range = pick(["1m", "5m", "90s", "1h", "10m"]);
    const offset = pick(["", "", " offset 1m", " offset 7m"]);
    const selector = pick(['{service="api"}', '{service=~"api|db"}', '{node="n1"}', '{level!="info", service=~".+"}']);
    const filter = pick(["", ' |= "error"', ' != "ok"', ' |~ "GET|POST"', ' |= "orders" or "users"', ' !~ "time.*"']);
    const inner = `${op}(${selector}${filter} [${range}]${offset})`;
    const outer = pick(OUTER);
    const query = outer === "" ? inner : outer.endsWith(", ") ? `${outer}${inner})` : `${outer}(${inner})`;
    const instant = rand() < 0.3;
    const startNs = T0_NS + BigInt(Math.floor(rand() * 3600)) * SEC + (rand() < 0.5 ? 0n : 123_456_789n);
    const stepNs = BigInt(pick([15, 60, 120, 300, 37])) * SEC;
    const endNs = startNs + BigInt(Math.floor(rand() * 2 * 3600)) * SEC;
    out.push({
      query,
      outer,
      op,
      params: {
        startNs,
        endNs: instant ? startNs : endNs,
        stepNs,
        direction: "backward" as const,
        limit: 100,
        instant,
      },
    });
  }
  return out;
}

/** A StoreSource that counts the grouped sums it answers itself, to show that the pushed-down path is taken. */
class CountingSource extends StoreSource {
  grouped = 0;

  override async groupedRangeAggregation(
    ...args: Parameters<StoreSource["groupedRangeAggregation"]>
  ): Promise<Step[] | undefined> {
    const steps = await super.groupedRangeAggregation(...args);
    if (steps !== undefined) this.grouped++;
    return steps;
  }
}

/**
 * Values within `relative` of each other made equal, so that deepEqual compares the rest exactly. A pushed-down
 * summed rate is (sum of counts) / range, the streaming engine's the sum of (count / range) per series: the same
 * number rounded differently, at most a few ulps apart, hence 1e-12 for rates and exactness for everything else.
 */
function withinTolerance(pushed: unknown, reference: unknown, relative: number): unknown {
  if (typeof pushed === "number" && typeof reference === "number") {
    return Math.abs(pushed - reference) <= relative * Math.max(Math.abs(pushed), Math.abs(reference))
      ? reference
      : pushed;
  }
  if (Array.isArray(pushed) && Array.isArray(reference))
    return pushed.map((value, i) => withinTolerance(value, reference[i], relative));
  if (typeof pushed === "object" && pushed !== null && typeof reference === "object" && reference !== null) {
    const out: Record<string, unknown> = Object.create(Object.getPrototypeOf(pushed));
    for (const [key, value] of Object.entries(pushed))
      out[key] = withinTolerance(value, (reference as Record<string, unknown>)[key], relative);
    return out;
  }
  return pushed;
}

/** The store, telling `seen` about each selectLogs it answers. */
function watchingReads(store: Store, seen: (select: LogSelect) => void): Store {
  return new Proxy(store, {
    get: (target, name) =>
      name === "selectLogs"
        ? (select: LogSelect) => {
            seen(select);
            return target.selectLogs(select);
          }
        : Reflect.get(target, name),
  });
}

function suite(name: string, open: () => Promise<Store>): void {
  describe(`pushdown equals the streaming engine on ${name}`, () => {
    let store: Store;
    before(async () => {
      store = await open();
      await load(store);
    });
    after(() => store.close());

    it(`answers 200 random metric queries identically (seed ${SEED})`, async () => {
      let pushedSeries = 0;
      const source = new CountingSource(store, "acme");
      const groupedSums = new Set<string>();
      for (const { query, outer, op, params } of queries(200)) {
        const expr = parseLogQL(query);
        const limits = { maxSeries: 10_000 };
        const reference = await evaluate(expr, params, new StoreSource(store, "acme", { pushdown: false }), limits);
        const answered = source.grouped;
        const pushed = await evaluate(expr, params, source, limits);
        if (source.grouped > answered) groupedSums.add(outer);
        const relative = outer.startsWith("sum") && op.endsWith("rate") ? 1e-12 : 0;
        const message = `${query} ${JSON.stringify(params, (_, v) => (typeof v === "bigint" ? String(v) : v))}`;
        assert.deepEqual(withinTolerance(pushed, reference, relative), reference, message);
        pushedSeries +=
          pushed.type === "matrix" ? pushed.series.length : pushed.type === "vector" ? pushed.samples.length : 0;
      }
      // The comparison means something only if the queries found data and took the grouped path.
      assert.ok(pushedSeries > 100, `only ${pushedSeries} series in all answers`);
      assert.deepEqual([...groupedSums].sort(), PUSHED_SUMS);
    });

    it("reads limit + 1 entries for a log query whose pipeline the Store applies whole", async () => {
      const limits: number[] = [];
      const counting = watchingReads(store, (select) => limits.push(select.limit));
      const params: QueryParams = {
        startNs: T0_NS,
        endNs: T0_NS + 3n * 3600n * SEC,
        stepNs: SEC,
        direction: "backward",
        limit: 5,
        instant: false,
      };
      const pushed = await evaluate(
        parseLogQL('{service="api"} |= "error"'),
        params,
        new StoreSource(counting, "acme"),
        { maxSeries: 10_000 },
      );
      assert.deepEqual(limits, [6]);
      // The same entries as read two at a time.
      const paged = await evaluate(
        parseLogQL('{service="api"} |= "error"'),
        params,
        new StoreSource(store, "acme", { pageEntries: 2 }),
        { maxSeries: 10_000 },
      );
      assert.deepEqual(pushed, paged);
      assert.equal(pushed.type === "streams" ? pushed.streams.flatMap((s) => s.entries).length : 0, 5);
      limits.length = 0;
      await evaluate(parseLogQL('{service="api"} |= "error" | logfmt'), params, new StoreSource(counting, "acme"), {
        maxSeries: 10_000,
      });
      assert.deepEqual(limits, [10_000], "a pipeline stage run by the engine may drop entries");
    });

    it("narrows a pattern line filter's read with a substring, and answers as without it", async () => {
      const filters: LogSelect["lineFilters"][] = [];
      const counting = watchingReads(store, (select) => filters.push(select.lineFilters));
      const params: QueryParams = {
        startNs: T0_NS,
        endNs: T0_NS + 3n * 3600n * SEC,
        stepNs: SEC,
        direction: "forward",
        limit: 1000,
        instant: false,
      };
      const query = '{service=~".+"} |> "<_> error <_>" or "GET <_>" |= ip("10.0.0.0/8") or "o"';
      const narrowed = await evaluate(parseLogQL(query), params, new StoreSource(counting, "acme"), {
        maxSeries: 10_000,
      });
      assert.deepEqual(filters, [[{ op: "|=", values: [" error ", "GET "] }]]);
      // After line_format, a stage that may rewrite the line, the Store runs no line filter.
      const unpushed = parseLogQL(
        '{service=~".+"} | line_format "{{__line__}}" |> "<_> error <_>" or "GET <_>" |= ip("10.0.0.0/8") or "o"',
      );
      const reference = await evaluate(unpushed, params, new StoreSource(store, "acme"), { maxSeries: 10_000 });
      assert.deepEqual(narrowed, reference);
      assert.ok(narrowed.type === "streams" && narrowed.streams.flatMap((s) => s.entries).length > 10);
    });
  });
}

onBothStores("pushdown", suite);
