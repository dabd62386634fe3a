import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Direction, LabelMatcher } from "../storage/store.js";
import { compareLabels, formatLabels, labelsKey, sortedLabelsOf, type Labels } from "../proto/labels.js";
import { compareText } from "../common/go/string-order.js";
import { aggregate } from "../query/vector/aggregate.js";
import { vectorBinary, vectorScalar } from "../query/vector/binary.js";
import { arithmetic } from "../common/vector/arithmetic.js";
import { PROMETHEUS_SEMANTICS, LOKI_SEMANTICS } from "../common/vector/types.js";
import { expandReplacement } from "../common/regex.js";
import type {
  BinaryExpr,
  BinaryOp,
  Grouping,
  LogExpr,
  LogRange,
  MetricExpr,
  RangeAggregationExpr,
  RangeOp,
  VectorMatching,
  VectorOp,
} from "../common/logql/syntax/ast.js";
import {
  EvaluationError,
  INSTANT_LOG_QUERY_ERROR,
  PipelineError,
  QueryLimitError,
  evaluate,
  type QueryParams,
  type QueryResult,
} from "../query/logql/evaluation/evaluator.js";
import type { EngineSource, LogRow, SampleRow } from "../query/logql/evaluation/source.js";
import { quantile } from "../query/vector/aggregate.js";
import { counterRate } from "../query/logql/evaluation/range-functions.js";
import { durationSeconds } from "../common/go/duration-format.js";
import { absentLabels, rangeAggregationSteps, TooManySamplesError } from "../query/logql/evaluation/range-vector.js";
import { compileMatcher } from "../common/matchers.js";

// Every expected value below is worked out by hand from the small data sets, never by asking the engine.

const S = 1_000_000_000n;
const sec = (n: number) => BigInt(n) * S;

interface Row {
  tsNs: bigint;
  line: string;
  labels: Labels;
  /** Unwrapped value; rows with one are served by samples(). */
  value?: number;
}

function matches(labels: Labels, matcher: LabelMatcher): boolean {
  return compileMatcher(matcher.op, matcher.value)(labels[matcher.name] ?? "");
}

/** Serves rows whose labels match the selector; pipelines are ignored (the engine gets already-piped rows). */
class MemorySource implements EngineSource {
  readonly calls: { kind: string; startNs: bigint; endNs: bigint; direction?: Direction }[] = [];
  chunksRead = 0;

  constructor(
    private readonly rows: Row[],
    private readonly chunkSize = 2,
  ) {}

  private select(log: LogExpr, startNs: bigint, endNs: bigint): Row[] {
    return this.rows
      .filter((row) => row.tsNs >= startNs && row.tsNs < endNs && log.matchers.every((m) => matches(row.labels, m)))
      .sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
  }

  private async *chunked<T>(rows: T[]): AsyncIterable<T[]> {
    for (let i = 0; i < rows.length; i += this.chunkSize) {
      this.chunksRead++;
      yield rows.slice(i, i + this.chunkSize);
    }
  }

  logs(log: LogExpr, startNs: bigint, endNs: bigint, direction: Direction): AsyncIterable<LogRow[]> {
    this.calls.push({ kind: "logs", startNs, endNs, direction });
    const rows = this.select(log, startNs, endNs).filter((row) => row.value === undefined);
    if (direction === "backward") rows.reverse();
    return this.chunked(rows.map(({ tsNs, line, labels }) => ({ tsNs, line, labels })));
  }

  samples(range: LogRange, startNs: bigint, endNs: bigint): AsyncIterable<SampleRow[]> {
    this.calls.push({ kind: "samples", startNs, endNs });
    const rows = this.select(range.log, startNs, endNs).filter((row) => row.value !== undefined);
    return this.chunked(rows.map(({ tsNs, value, labels }) => ({ tsNs, value: value!, labels })));
  }
}

const L = (entries: Record<string, string>): Labels => sortedLabelsOf(Object.entries(entries));

function logRow(seconds: number, line: string, labels: Record<string, string>, extraNs = 0n): Row {
  return { tsNs: sec(seconds) + extraNs, line, labels: L(labels) };
}

function sampleRow(seconds: number, value: number, labels: Record<string, string>): Row {
  return { tsNs: sec(seconds), line: "", labels: L(labels), value };
}

// Logs: a/h1 at 1,2,3,10,20; a/h2 at 5,15; b/h1 at 30.
const A1 = { app: "a", host: "h1" };
const A2 = { app: "a", host: "h2" };
const B1 = { app: "b", host: "h1" };
const LOGS: Row[] = [
  logRow(1, "x", A1),
  logRow(2, "yy", A1),
  logRow(3, "zzz", A1),
  logRow(10, "é", A1),
  logRow(20, "ab", A1),
  logRow(5, "hello", A2),
  logRow(15, "hi", A2),
  logRow(30, "b", B1),
];

// Samples: p1 1,3,2,10 at 1..4; p2 4,8 at 2,4; p3 5 at 3.
const P1 = { svc: "api", pod: "p1" };
const P2 = { svc: "api", pod: "p2" };
const P3 = { svc: "web", pod: "p3" };
const SAMPLES: Row[] = [
  sampleRow(1, 1, P1),
  sampleRow(2, 3, P1),
  sampleRow(3, 2, P1),
  sampleRow(4, 10, P1),
  sampleRow(2, 4, P2),
  sampleRow(4, 8, P2),
  sampleRow(3, 5, P3),
];

function selector(matchers: Record<string, string>, regex: Record<string, string> = {}): LogExpr {
  return {
    kind: "log",
    pos: 0,
    matchers: [
      ...Object.entries(matchers).map(([name, value]): LabelMatcher => ({ name, op: "=", value })),
      ...Object.entries(regex).map(([name, value]): LabelMatcher => ({ name, op: "=~", value })),
    ],
    pipeline: [],
  };
}

const ALL_LOGS = selector({}, { app: ".+" });
const ALL_SAMPLES = selector({}, { svc: ".+" });

function logRange(log: LogExpr, rangeS: number, offsetS = 0, unwrap = false): LogRange {
  return {
    pos: 0,
    log,
    rangeNs: sec(rangeS),
    offsetNs: sec(offsetS),
    ...(unwrap ? { unwrap: { label: "latency", conversion: "none" as const, postFilters: [] } } : {}),
  };
}

function ra(op: RangeOp, range: LogRange, extra: { param?: number; grouping?: Grouping } = {}): RangeAggregationExpr {
  return { kind: "range_aggregation", pos: 0, op, range, ...extra };
}

/** count_over_time over all logs with the given range. */
const counts = (rangeS = 30, log = ALL_LOGS): RangeAggregationExpr => ra("count_over_time", logRange(log, rangeS));
const unwrapped = (op: RangeOp, rangeS = 4, extra: { param?: number; grouping?: Grouping } = {}) =>
  ra(op, logRange(ALL_SAMPLES, rangeS, 0, true), extra);

function va(op: VectorOp, expr: MetricExpr, grouping?: Grouping, param?: number): MetricExpr {
  return {
    kind: "vector_aggregation",
    pos: 0,
    op,
    expr,
    ...(grouping ? { grouping } : {}),
    ...(param !== undefined ? { param } : {}),
  };
}

const by = (...labels: string[]): Grouping => ({ without: false, labels });
const without = (...labels: string[]): Grouping => ({ without: true, labels });

function bin(
  op: BinaryOp,
  lhs: MetricExpr,
  rhs: MetricExpr,
  opts: { bool?: boolean; matching?: VectorMatching } = {},
): BinaryExpr {
  return {
    kind: "binary",
    pos: 0,
    op,
    lhs,
    rhs,
    returnBool: opts.bool ?? false,
    ...(opts.matching ? { matching: opts.matching } : {}),
  };
}

const lit = (value: number): MetricExpr => ({ kind: "literal", pos: 0, value });
const vec = (value: number): MetricExpr => ({ kind: "vector", pos: 0, value });
const on = (labels: string[], card: VectorMatching["card"] = "one-to-one", include: string[] = []): VectorMatching => ({
  on: true,
  labels,
  card,
  include,
});
const ignoring = (
  labels: string[],
  card: VectorMatching["card"] = "one-to-one",
  include: string[] = [],
): VectorMatching => ({
  on: false,
  labels,
  card,
  include,
});
function labelReplace(expr: MetricExpr, dst: string, replacement: string, src: string, regex: string): MetricExpr {
  return { kind: "label_replace", pos: 0, expr, dst, replacement, src, regex };
}

function instant(atS: number, extraNs = 0n): QueryParams {
  const t = sec(atS) + extraNs;
  return { startNs: t, endNs: t, stepNs: 0n, direction: "backward", limit: 100, instant: true };
}

function range(startS: number, endS: number, stepS: number): QueryParams {
  return {
    startNs: sec(startS),
    endNs: sec(endS),
    stepNs: sec(stepS),
    direction: "backward",
    limit: 100,
    instant: false,
  };
}

async function run(
  expr: MetricExpr | LogExpr,
  params: QueryParams,
  rows: Row[] = LOGS,
  maxSeries = 1000,
): Promise<QueryResult> {
  return evaluate(expr, params, new MemorySource(rows), { maxSeries });
}

const plain = (labels: Labels) => ({ ...labels });

/** An instant query's samples as [labels, value] with plain label objects. */
async function vectorOf(
  expr: MetricExpr,
  atS: number,
  rows: Row[] = LOGS,
): Promise<[Record<string, string>, number][]> {
  const result = await run(expr, instant(atS), rows);
  assert.equal(result.type, "vector");
  if (result.type !== "vector") throw new Error("unreachable");
  for (const sample of result.samples) assert.equal(sample.tsMs, atS * 1000);
  return result.samples.map((sample) => [plain(sample.labels), sample.value]);
}

async function matrixOf(
  expr: MetricExpr,
  params: QueryParams,
  rows: Row[] = LOGS,
): Promise<[Record<string, string>, [number, number][]][]> {
  const result = await run(expr, params, rows);
  assert.equal(result.type, "matrix");
  if (result.type !== "matrix") throw new Error("unreachable");
  return result.series.map((series) => [plain(series.labels), series.points]);
}

function assertClose(actual: number, expected: number, epsilon = 1e-12): void {
  assert.ok(
    Math.abs(actual - expected) <= epsilon * Math.max(1, Math.abs(expected)),
    `${actual} is not close to ${expected}`,
  );
}

describe("range aggregations: windows", () => {
  it("count_over_time counts the lines of each stream in (t - range, t]", async () => {
    assert.deepEqual(await vectorOf(counts(10), 10), [
      [A1, 4],
      [A2, 1],
    ]);
  });

  it("excludes a line exactly at the window's start", async () => {
    // (1, 11]: the line at 1 is out, 2, 3 and 10 are in.
    assert.deepEqual(await vectorOf(counts(10), 11), [
      [A1, 3],
      [A2, 1],
    ]);
  });

  it("includes a line exactly at the window's end but not one a nanosecond later", async () => {
    const result = await run(counts(10), instant(10, -1n));
    assert.equal(result.type, "vector");
    if (result.type !== "vector") return;
    // (-1ns, 10s - 1ns]: 1, 2, 3 only.
    assert.deepEqual(
      result.samples.map((s) => [plain(s.labels), s.value]),
      [
        [A1, 3],
        [A2, 1],
      ],
    );
  });

  it("truncates the step time to milliseconds", async () => {
    const result = await run(counts(10), instant(10, 1_500_000n));
    assert.equal(result.type, "vector");
    if (result.type === "vector")
      assert.deepEqual(
        result.samples.map((s) => s.tsMs),
        [10001, 10001],
      );
  });

  it("rate divides the count by the range in seconds", async () => {
    assert.deepEqual(await vectorOf(ra("rate", logRange(ALL_LOGS, 10)), 10), [
      [A1, 0.4],
      [A2, 0.1],
    ]);
  });

  it("bytes_over_time sums line sizes in UTF-8 bytes", async () => {
    // a/h1: x(1) yy(2) zzz(3) é(2) ab(2) = 10; a/h2: hello(5) hi(2) = 7.
    assert.deepEqual(await vectorOf(ra("bytes_over_time", logRange(ALL_LOGS, 20)), 20), [
      [A1, 10],
      [A2, 7],
    ]);
  });

  it("bytes_rate divides the bytes by the range in seconds", async () => {
    assert.deepEqual(await vectorOf(ra("bytes_rate", logRange(ALL_LOGS, 20)), 20), [
      [A1, 0.5],
      [A2, 0.35],
    ]);
  });

  it("steps a range query from start to end inclusive, a series only where its window has data", async () => {
    assert.deepEqual(await matrixOf(counts(5), range(5, 20, 5)), [
      [
        A1,
        [
          [5000, 3],
          [10000, 1],
          [20000, 1],
        ],
      ],
      [
        A2,
        [
          [5000, 1],
          [15000, 1],
        ],
      ],
    ]);
  });

  it("aligns steps on the start, not on multiples of the step", async () => {
    // t = 3, 8, 13: (-2,3] a/h1 x3; (3,8] a/h2 x1; (8,13] a/h1 x1.
    assert.deepEqual(await matrixOf(counts(5), range(3, 13, 5)), [
      [
        A1,
        [
          [3000, 3],
          [13000, 1],
        ],
      ],
      [A2, [[8000, 1]]],
    ]);
  });

  it("stops at the last step not after the end", async () => {
    // t = 0, 5, 10 (15 > 12).
    const result = await matrixOf(counts(5), range(0, 12, 5));
    assert.deepEqual(result, [
      [
        A1,
        [
          [5000, 3],
          [10000, 1],
        ],
      ],
      [A2, [[5000, 1]]],
    ]);
  });

  it("skips lines between windows when the range is shorter than the step", async () => {
    // t = 10, 20, 30 with 2s windows: (8,10] a/h1 x1; (18,20] a/h1 x1; (28,30] b/h1 x1.
    assert.deepEqual(await matrixOf(counts(2), range(10, 30, 10)), [
      [
        A1,
        [
          [10000, 1],
          [20000, 1],
        ],
      ],
      [B1, [[30000, 1]]],
    ]);
  });

  it("offset moves the window back but keeps the step's timestamp", async () => {
    // At 10 with offset 5: (0, 5].
    assert.deepEqual(await vectorOf(ra("count_over_time", logRange(ALL_LOGS, 5, 5)), 10), [
      [A1, 3],
      [A2, 1],
    ]);
  });

  it("offset in a range query", async () => {
    // t = 10, 15 -> (0,5], (5,10].
    assert.deepEqual(await matrixOf(ra("count_over_time", logRange(ALL_LOGS, 5, 5)), range(10, 15, 5)), [
      [
        A1,
        [
          [10000, 3],
          [15000, 1],
        ],
      ],
      [A2, [[10000, 1]]],
    ]);
  });

  it("reads the source once, from the first window's start to just past the last window's end", async () => {
    const source = new MemorySource(LOGS);
    await evaluate(ra("count_over_time", logRange(ALL_LOGS, 5, 2)), range(10, 20, 5), source, { maxSeries: 10 });
    assert.deepEqual(source.calls, [{ kind: "logs", startNs: sec(3), endNs: sec(18) + 1n, direction: "forward" }]);
  });

  it("reads unwrapped samples for an unwrap range", async () => {
    const source = new MemorySource(SAMPLES);
    await evaluate(unwrapped("sum_over_time"), instant(4), source, { maxSeries: 10 });
    assert.deepEqual(source.calls, [{ kind: "samples", startNs: 0n, endNs: sec(4) + 1n }]);
  });

  it("returns an empty vector when nothing matches", async () => {
    assert.deepEqual(await vectorOf(counts(10, selector({ app: "none" })), 10), []);
  });

  it("returns an empty matrix when nothing matches", async () => {
    assert.deepEqual(await matrixOf(counts(10, selector({ app: "none" })), range(0, 100, 10)), []);
  });

  it("works whatever the chunk size", async () => {
    for (const size of [1, 3, 100]) {
      const result = await evaluate(counts(5), range(5, 20, 5), new MemorySource(LOGS, size), { maxSeries: 10 });
      assert.equal(result.type, "matrix");
      if (result.type === "matrix")
        assert.deepEqual(
          result.series.map((s) => s.points.length),
          [3, 2],
        );
    }
  });

  it("refuses a source that returns rows out of time order", async () => {
    const source = new MemorySource(LOGS);
    source.logs = async function* () {
      yield [{ tsNs: sec(5), line: "a", labels: L(A1) }];
      yield [{ tsNs: sec(4), line: "b", labels: L(A2) }];
    };
    await assert.rejects(evaluate(counts(10), instant(10), source, { maxSeries: 10 }), /out of time order/);
  });

  it("refuses a range aggregation whose windows would hold more than maxSamples entries at once, and counts what the windows let go", async () => {
    // 100 rows one second apart, in two series: a 10 s window holds 10 of them at any step.
    const rows = Array.from({ length: 100 }, (_, i) => logRow(i + 1, "l", i % 2 === 0 ? A1 : A2));
    const over = (maxSamples: number) =>
      evaluate(counts(10), range(10, 100, 1), new MemorySource(rows, 7), { maxSeries: 10, maxSamples });
    await assert.rejects(over(9), (err: Error) => {
      assert.ok(err instanceof TooManySamplesError);
      assert.ok(err instanceof EvaluationError, "answered 400 as the engine's other refusals");
      assert.match(err.message, /too many samples.*more than 9 log entries.*query\.limits\.max_samples/s);
      return true;
    });
    // Exactly what the windows hold at most: 91 steps over 100 rows evaluate, every window counting 10.
    const result = await over(10);
    assert.equal(result.type, "matrix");
    if (result.type === "matrix")
      assert.deepEqual(
        result.series.map((s) => s.points.every(([, v]) => v === 5) && s.points.length),
        [91, 91],
      );
  });

  it("holds only the current window: the source is read no further than the step being produced", async () => {
    const rows = Array.from({ length: 100 }, (_, i) => logRow(i + 1, "l", A1));
    const source = new MemorySource(rows, 1);
    const steps = rangeAggregationSteps(counts(1), { startNs: sec(1), endNs: sec(100), stepNs: S }, source);
    const first = await steps.next();
    assert.deepEqual(first.done === true ? [] : first.value.vector.map((sample) => sample.value), [1]);
    // Row 1 plus the peeked row 2.
    assert.equal(source.chunksRead, 2);
    await steps.next();
    assert.equal(source.chunksRead, 3);
    await steps.return(undefined);
  });
});

describe("range aggregations: absent_over_time", () => {
  it("reports 1 with the selector's equality labels when nothing is in the window", async () => {
    assert.deepEqual(await vectorOf(ra("absent_over_time", logRange(selector({ app: "c" }), 10)), 10), [
      [{ app: "c" }, 1],
    ]);
  });

  it("reports nothing when lines are in the window", async () => {
    assert.deepEqual(await vectorOf(ra("absent_over_time", logRange(selector({ app: "a" }), 10)), 10), []);
  });

  it("only reports the steps where the stream is absent", async () => {
    // b has a line at 30: (25,30] has it; (15,20], (20,25], (30,35], (35,40] do not.
    assert.deepEqual(await matrixOf(ra("absent_over_time", logRange(selector({ app: "b" }), 5)), range(20, 40, 5)), [
      [
        { app: "b" },
        [
          [20000, 1],
          [25000, 1],
          [35000, 1],
          [40000, 1],
        ],
      ],
    ]);
  });

  it("takes labels from equality matchers only, dropping names matched twice", () => {
    const m = (name: string, op: LabelMatcher["op"], value: string): LabelMatcher => ({ name, op, value });
    assert.deepEqual(plain(absentLabels([m("app", "=", "a"), m("host", "=~", "h.*")])), { app: "a" });
    assert.deepEqual(plain(absentLabels([m("app", "=", "a"), m("app", "!=", "b")])), {});
    assert.deepEqual(plain(absentLabels([m("app", "=", "a"), m("app", "=", "b"), m("env", "=", "p")])), { env: "p" });
    assert.deepEqual(plain(absentLabels([m("__name__", "=", "x"), m("job", "=", "j")])), { job: "j" });
  });
});

describe("range aggregations over unwrapped values", () => {
  const at4 = async (op: RangeOp, extra: { param?: number; grouping?: Grouping } = {}) =>
    vectorOf(unwrapped(op, 4, extra), 4, SAMPLES);

  it("sum_over_time", async () => {
    assert.deepEqual(await at4("sum_over_time"), [
      [P1, 16],
      [P2, 12],
      [P3, 5],
    ]);
  });

  it("avg_over_time", async () => {
    assert.deepEqual(await at4("avg_over_time"), [
      [P1, 4],
      [P2, 6],
      [P3, 5],
    ]);
  });

  it("min_over_time and max_over_time", async () => {
    assert.deepEqual(
      (await at4("min_over_time")).map(([, v]) => v),
      [1, 4, 5],
    );
    assert.deepEqual(
      (await at4("max_over_time")).map(([, v]) => v),
      [10, 8, 5],
    );
  });

  it("stdvar_over_time is the population variance", async () => {
    // p1: mean 4, squared deviations 9+1+4+36 = 50, /4 = 12.5; p2: 4; p3: 0.
    assert.deepEqual(
      (await at4("stdvar_over_time")).map(([, v]) => v),
      [12.5, 4, 0],
    );
  });

  it("stddev_over_time", async () => {
    const values = (await at4("stddev_over_time")).map(([, v]) => v);
    assertClose(values[0]!, Math.SQRT2 * 2.5);
    assert.deepEqual(values.slice(1), [2, 0]);
  });

  it("quantile_over_time interpolates between ranks", async () => {
    // p1 sorted 1,2,3,10: rank 1.5 -> 2.5; p2 4,8: rank 0.5 -> 6; p3: 5.
    assert.deepEqual(
      (await at4("quantile_over_time", { param: 0.5 })).map(([, v]) => v),
      [2.5, 6, 5],
    );
    // p1 rank 2.7 -> 3 * 0.3 + 10 * 0.7 = 7.9.
    assertClose((await at4("quantile_over_time", { param: 0.9 }))[0]![1], 7.9);
  });

  it("quantile_over_time at 0 and 1 is the minimum and maximum, outside [0, 1] infinite", async () => {
    assert.deepEqual(
      (await at4("quantile_over_time", { param: 0 })).map(([, v]) => v),
      [1, 4, 5],
    );
    assert.deepEqual(
      (await at4("quantile_over_time", { param: 1 })).map(([, v]) => v),
      [10, 8, 5],
    );
    assert.deepEqual(
      (await at4("quantile_over_time", { param: 1.5 })).map(([, v]) => v),
      [Infinity, Infinity, Infinity],
    );
    assert.deepEqual(
      (await at4("quantile_over_time", { param: -1 })).map(([, v]) => v),
      [-Infinity, -Infinity, -Infinity],
    );
  });

  it("first_over_time and last_over_time", async () => {
    assert.deepEqual(
      (await at4("first_over_time")).map(([, v]) => v),
      [1, 4, 5],
    );
    assert.deepEqual(
      (await at4("last_over_time")).map(([, v]) => v),
      [10, 8, 5],
    );
  });

  it("rate with unwrap divides the sum by the range", async () => {
    assert.deepEqual(
      (await at4("rate")).map(([, v]) => v),
      [4, 3, 1.25],
    );
  });

  it("absent_over_time works with unwrap too", async () => {
    assert.deepEqual(
      await vectorOf(ra("absent_over_time", logRange(selector({ svc: "db" }), 4, 0, true)), 4, SAMPLES),
      [[{ svc: "db" }, 1]],
    );
  });

  it("groups by labels before windowing: max over all pods of a service", async () => {
    assert.deepEqual(await at4("max_over_time", { grouping: by("svc") }), [
      [{ svc: "api" }, 10],
      [{ svc: "web" }, 5],
    ]);
  });

  it("groups without labels: the average of every sample of the group", async () => {
    const result = await at4("avg_over_time", { grouping: without("pod") });
    assert.deepEqual(
      result.map(([labels]) => labels),
      [{ svc: "api" }, { svc: "web" }],
    );
    // api: (1 + 3 + 2 + 10 + 4 + 8) / 6.
    assertClose(result[0]![1], 28 / 6);
    assert.equal(result[1]![1], 5);
  });

  it("by () puts every sample in one series", async () => {
    assert.deepEqual(await at4("min_over_time", { grouping: by() }), [[{}, 1]]);
  });

  it("quantile over a group", async () => {
    // api: 1,2,3,4,8,10 -> rank 2.5 -> 3.5.
    assert.deepEqual(await at4("quantile_over_time", { param: 0.5, grouping: by("svc") }), [
      [{ svc: "api" }, 3.5],
      [{ svc: "web" }, 5],
    ]);
  });

  it("steps a sliding window over unwrapped values", async () => {
    // sum over 2s: p1 at t=2: (0,2] 1+3 = 4; t=4: (2,4] 2+10 = 12.
    assert.deepEqual(await matrixOf(unwrapped("sum_over_time", 2), range(2, 4, 2), SAMPLES.slice(0, 4)), [
      [
        P1,
        [
          [2000, 4],
          [4000, 12],
        ],
      ],
    ]);
  });

  it("avg_over_time keeps an infinite mean and turns opposite infinities into NaN", async () => {
    const rows = [
      sampleRow(1, Infinity, P1),
      sampleRow(2, 1, P1),
      sampleRow(1, Infinity, P2),
      sampleRow(2, -Infinity, P2),
    ];
    const result = await vectorOf(unwrapped("avg_over_time"), 4, rows);
    assert.equal(result[0]![1], Infinity);
    assert.ok(Number.isNaN(result[1]![1]));
  });

  it("stddev_over_time of a lone infinity is NaN, as Loki's range function starts from zero", async () => {
    const result = await vectorOf(unwrapped("stddev_over_time"), 4, [sampleRow(1, Infinity, P1)]);
    assert.ok(Number.isNaN(result[0]![1]));
  });

  it("max_over_time skips a leading NaN", async () => {
    const rows = [sampleRow(1, NaN, P1), sampleRow(2, 3, P1), sampleRow(3, 2, P1)];
    assert.deepEqual(await vectorOf(unwrapped("max_over_time"), 4, rows), [[P1, 3]]);
  });
});

describe("rate_counter", () => {
  const counter = (values: [number, number][]) => values.map(([t, v]) => sampleRow(t, v, P1));

  it("is the extrapolated increase per second", async () => {
    // 1..4 at 1..4s in (0,4]: increase 3 over 3s, extrapolated by 1s at the start -> 4, / 4s = 1.
    assert.deepEqual(
      await vectorOf(
        unwrapped("rate_counter"),
        4,
        counter([
          [1, 1],
          [2, 2],
          [3, 3],
          [4, 4],
        ]),
      ),
      [[P1, 1]],
    );
  });

  it("counts a drop as a counter reset", async () => {
    // 5, 10, 2, 6: 6 - 5 + 10 = 11 over 3s, extrapolated to 4s -> 44/3, / 4s = 11/3.
    const result = await vectorOf(
      unwrapped("rate_counter"),
      4,
      counter([
        [1, 5],
        [2, 10],
        [3, 2],
        [4, 6],
      ]),
    );
    assertClose(result[0]![1], 11 / 3);
  });

  it("is 0 with a single sample", async () => {
    assert.deepEqual(await vectorOf(unwrapped("rate_counter"), 4, counter([[2, 7]])), [[P1, 0]]);
  });

  it("extrapolates by half a sample gap when the first sample is far from the window start", async () => {
    // 10 -> 20 at 3s, 4s: toStart 3s > 1.1 gaps -> 0.5s; 10 * 1.5 / 1 = 15, / 4s = 3.75.
    assert.deepEqual(
      await vectorOf(
        unwrapped("rate_counter"),
        4,
        counter([
          [3, 10],
          [4, 20],
        ]),
      ),
      [[P1, 3.75]],
    );
  });

  it("does not extrapolate below zero", async () => {
    // 1 -> 11 at 3s, 4s: the zero point is 0.1s before the first sample, nearer than 0.5s: 10 * 1.1 = 11, / 4 = 2.75.
    const result = await vectorOf(
      unwrapped("rate_counter"),
      4,
      counter([
        [3, 1],
        [4, 11],
      ]),
    );
    assertClose(result[0]![1], 2.75);
  });

  it("counterRate measures the window from the query, not from the samples", () => {
    // A leading sample outside [from, to) must not count.
    const window = { ts: [sec(1), sec(12), sec(14), sec(16)], values: [99, 0, 4, 8], from: 1, to: 4 };
    // Window (10, 20]: toStart 2s and toEnd 4s against a 2.2s threshold -> 2s and 1s; 8 * 7/4 = 14, / 10s.
    // The zero point (0s before the first sample) is nearer: toStart 0 -> 8 * 5/4 = 10, / 10s = 1.
    assert.equal(counterRate(window, sec(10), sec(20)), 1);
  });
});

describe("range aggregations: validation and pipeline errors", () => {
  it("refuses grouping on an op that does not allow it", async () => {
    await assert.rejects(run(unwrapped("sum_over_time", 4, { grouping: by("svc") }), instant(4), SAMPLES), {
      name: "EvaluationError",
      message: "grouping not allowed for sum_over_time aggregation",
    });
  });

  it("refuses unwrap for count_over_time", async () => {
    await assert.rejects(run(unwrapped("count_over_time"), instant(4), SAMPLES), {
      message: "invalid aggregation count_over_time with unwrap",
    });
  });

  it("refuses sum_over_time without unwrap", async () => {
    await assert.rejects(run(ra("sum_over_time", logRange(ALL_LOGS, 4)), instant(4)), {
      message: "invalid aggregation sum_over_time without unwrap",
    });
  });

  it("refuses a series carrying __error__ and names it", async () => {
    const rows = [...SAMPLES, sampleRow(2, 0, { ...P1, __error__: "SampleExtractionErr" })];
    await assert.rejects(run(unwrapped("sum_over_time"), instant(4), rows), (err: Error) => {
      assert.ok(err instanceof PipelineError);
      assert.ok(err instanceof EvaluationError);
      assert.ok(
        err.message.startsWith(
          `pipeline error: 'SampleExtractionErr' for series: '{__error__="SampleExtractionErr", pod="p1", svc="api"}'.\n` +
            'Use a label filter to intentionally skip this error. (e.g | __error__!="SampleExtractionErr").',
        ),
        err.message,
      );
      return true;
    });
  });

  it("refuses the error even when grouping would drop the label", async () => {
    const rows = [...SAMPLES, sampleRow(2, 0, { ...P1, __error__: "JSONParserErr" })];
    await assert.rejects(run(unwrapped("max_over_time", 4, { grouping: by("svc") }), instant(4), rows), PipelineError);
  });

  it("keeps an error that __preserve_error__ asks for", async () => {
    const errored = { ...P3, __error__: "E", __preserve_error__: "true" };
    const rows = [sampleRow(2, 7, errored)];
    assert.deepEqual(await vectorOf(unwrapped("sum_over_time"), 4, rows), [[errored, 7]]);
  });

  it("ignores an error row outside every window", async () => {
    // Read (the source range starts at 0) but at the window's open start.
    const rows = [sampleRow(0, 0, { ...P1, __error__: "E" }), sampleRow(1, 1, P1)];
    assert.deepEqual(await vectorOf(unwrapped("sum_over_time"), 4, rows), [[P1, 1]]);
  });

  it("refuses a log error in a count", async () => {
    const rows = [logRow(5, "x", { app: "a", __error__: "LogfmtParserErr" })];
    await assert.rejects(run(counts(10), instant(10), rows), PipelineError);
  });
});

describe("vector aggregations", () => {
  // At 30 over 30s: a/h1 5, a/h2 2, b/h1 1.
  const at30 = (expr: MetricExpr) => vectorOf(expr, 30);

  it("sum without grouping", async () => {
    assert.deepEqual(await at30(va("sum", counts())), [[{}, 8]]);
  });

  it("sum by", async () => {
    assert.deepEqual(await at30(va("sum", counts(), by("app"))), [
      [{ app: "a" }, 7],
      [{ app: "b" }, 1],
    ]);
  });

  it("sum without", async () => {
    assert.deepEqual(await at30(va("sum", counts(), without("host"))), [
      [{ app: "a" }, 7],
      [{ app: "b" }, 1],
    ]);
  });

  it("by a label no series has gives one group without labels", async () => {
    assert.deepEqual(await at30(va("sum", counts(), by("nope"))), [[{}, 8]]);
  });

  it("avg by host", async () => {
    assert.deepEqual(await at30(va("avg", counts(), by("host"))), [
      [{ host: "h1" }, 3],
      [{ host: "h2" }, 2],
    ]);
  });

  it("min and max", async () => {
    assert.deepEqual(await at30(va("min", counts())), [[{}, 1]]);
    assert.deepEqual(await at30(va("max", counts())), [[{}, 5]]);
    assert.deepEqual(await at30(va("max", counts(), by("app"))), [
      [{ app: "a" }, 5],
      [{ app: "b" }, 1],
    ]);
  });

  it("count", async () => {
    assert.deepEqual(await at30(va("count", counts())), [[{}, 3]]);
    assert.deepEqual(await at30(va("count", counts(), by("app"))), [
      [{ app: "a" }, 2],
      [{ app: "b" }, 1],
    ]);
  });

  it("stdvar and stddev", async () => {
    // 5, 2, 1: mean 8/3, squared deviations 49/9 + 4/9 + 25/9 = 78/9, / 3 = 26/9.
    assertClose((await at30(va("stdvar", counts())))[0]![1], 26 / 9);
    assertClose((await at30(va("stddev", counts())))[0]![1], Math.sqrt(26 / 9));
    assert.deepEqual(await at30(va("stddev", counts(), by("app", "host"))), [
      [{ app: "a", host: "h1" }, 0],
      [{ app: "a", host: "h2" }, 0],
      [{ app: "b", host: "h1" }, 0],
    ]);
  });

  it("avg of infinities", () => {
    const samples = (values: number[]) => values.map((value, i) => ({ labels: L({ i: String(i) }), value }));
    assert.equal(aggregate("avg", samples([Infinity, 3, Infinity]), undefined, undefined)[0]!.value, Infinity);
    assert.ok(Number.isNaN(aggregate("avg", samples([Infinity, -Infinity]), undefined, undefined)[0]!.value));
    assert.equal(aggregate("avg", samples([1, 2, 3, 4]), undefined, undefined)[0]!.value, 2.5);
  });

  it("stddev of a lone infinity is 0, as the aggregation seeds its mean with the first sample", () => {
    const lone = [{ labels: L({}), value: Infinity }];
    assert.equal(aggregate("stddev", lone, undefined, undefined)[0]!.value, 0);
  });

  it("topk keeps the k largest samples with their own labels", async () => {
    assert.deepEqual(await at30(va("topk", counts(), undefined, 1)), [[A1, 5]]);
    // An instant vector is ordered by labels unless the query sorts.
    assert.deepEqual(await at30(va("topk", counts(), undefined, 2)), [
      [A1, 5],
      [A2, 2],
    ]);
  });

  it("topk with k above the vector's size returns all", async () => {
    assert.equal((await at30(va("topk", counts(), undefined, 10))).length, 3);
  });

  it("topk with k below 1 returns nothing", async () => {
    assert.deepEqual(await at30(va("topk", counts(), undefined, 0)), []);
  });

  it("topk by group", async () => {
    assert.deepEqual(await at30(va("topk", counts(), by("host"), 1)), [
      [A1, 5],
      [A2, 2],
    ]);
  });

  it("bottomk", async () => {
    assert.deepEqual(await at30(va("bottomk", counts(), undefined, 1)), [[B1, 1]]);
    assert.deepEqual(await at30(va("bottomk", counts(), by("app"), 1)), [
      [A2, 2],
      [B1, 1],
    ]);
  });

  it("topk breaks ties by label order", async () => {
    // Every value is 0.
    assert.deepEqual(await at30(va("topk", bin("*", counts(), lit(0)), undefined, 1)), [[A1, 0]]);
    assert.deepEqual(await at30(va("bottomk", bin("*", counts(), lit(0)), undefined, 2)), [
      [A1, 0],
      [A2, 0],
    ]);
  });

  it("topk and bottomk rank NaN last", async () => {
    // count / (count - 1): a/h1 5/4, a/h2 2/1, b/h1 1/0 = NaN in Loki.
    const ratio = bin("/", counts(), bin("-", counts(), lit(1)));
    assert.deepEqual(await at30(va("topk", ratio, undefined, 1)), [[A2, 2]]);
    assert.deepEqual(await at30(va("bottomk", ratio, undefined, 1)), [[A1, 1.25]]);
    const all = await at30(va("topk", ratio, undefined, 3));
    assert.equal(all.length, 3);
  });

  it("sort orders an instant vector by value, sort_desc the other way", async () => {
    assert.deepEqual(await at30(va("sort", counts())), [
      [B1, 1],
      [A2, 2],
      [A1, 5],
    ]);
    assert.deepEqual(await at30(va("sort_desc", counts())), [
      [A1, 5],
      [A2, 2],
      [B1, 1],
    ]);
  });

  it("sort puts NaN last both ways", async () => {
    const ratio = bin("/", counts(), bin("-", counts(), lit(1)));
    const asc = await at30(va("sort", ratio));
    assert.deepEqual(asc.slice(0, 2), [
      [A1, 1.25],
      [A2, 2],
    ]);
    assert.ok(Number.isNaN(asc[2]![1]));
    const desc = await at30(va("sort_desc", ratio));
    assert.deepEqual(desc.slice(0, 2), [
      [A2, 2],
      [A1, 1.25],
    ]);
    assert.ok(Number.isNaN(desc[2]![1]));
  });

  it("the order sort gives survives an enclosing operation", async () => {
    assert.deepEqual(await at30(bin("*", va("sort_desc", counts()), lit(10))), [
      [A1, 50],
      [A2, 20],
      [B1, 10],
    ]);
  });

  it("a range query's matrix is ordered by labels even with sort", async () => {
    const result = await matrixOf(va("sort_desc", counts(30)), range(30, 30, 10));
    assert.deepEqual(
      result.map(([labels]) => labels),
      [A1, A2, B1],
    );
  });

  it("sum by steps through a range query", async () => {
    // Windows of 10s at 10, 20, 30: a: (0,10] 4+1, (10,20] 1+1, (20,30] none; b: (20,30] 1.
    assert.deepEqual(await matrixOf(va("sum", counts(10), by("app")), range(10, 30, 10)), [
      [
        { app: "a" },
        [
          [10000, 5],
          [20000, 2],
        ],
      ],
      [{ app: "b" }, [[30000, 1]]],
    ]);
  });

  it("nests aggregations", async () => {
    // max by app -> a 5, b 1; then sum = 6.
    assert.deepEqual(await at30(va("sum", va("max", counts(), by("app")))), [[{}, 6]]);
  });
});

describe("binary operators: vector and scalar", () => {
  const at30 = (expr: MetricExpr) => vectorOf(expr, 30);

  it("vector * scalar", async () => {
    assert.deepEqual(await at30(bin("*", counts(), lit(2))), [
      [A1, 10],
      [A2, 4],
      [B1, 2],
    ]);
  });

  it("scalar - vector keeps the operand order", async () => {
    assert.deepEqual(await at30(bin("-", lit(10), counts())), [
      [A1, 5],
      [A2, 8],
      [B1, 9],
    ]);
  });

  it("division by zero is NaN in Loki", async () => {
    const values = (await at30(bin("/", counts(), lit(0)))).map(([, v]) => v);
    assert.equal(values.length, 3);
    assert.ok(values.every(Number.isNaN));
  });

  it("modulo and power", async () => {
    assert.deepEqual(
      (await at30(bin("%", counts(), lit(2)))).map(([, v]) => v),
      [1, 0, 1],
    );
    assert.deepEqual(
      (await at30(bin("^", counts(), lit(2)))).map(([, v]) => v),
      [25, 4, 1],
    );
    assert.deepEqual(
      (await at30(bin("^", lit(2), counts()))).map(([, v]) => v),
      [32, 4, 2],
    );
  });

  it("a comparison filters and keeps the vector's values", async () => {
    assert.deepEqual(await at30(bin(">", counts(), lit(1))), [
      [A1, 5],
      [A2, 2],
    ]);
    assert.deepEqual(await at30(bin("==", counts(), lit(2))), [[A2, 2]]);
    assert.deepEqual(await at30(bin("!=", counts(), lit(2))), [
      [A1, 5],
      [B1, 1],
    ]);
    assert.deepEqual(await at30(bin("<=", counts(), lit(2))), [
      [A2, 2],
      [B1, 1],
    ]);
    assert.deepEqual(await at30(bin(">=", counts(), lit(5))), [[A1, 5]]);
  });

  it("a scalar on the left of a comparison still keeps the vector's values", async () => {
    assert.deepEqual(await at30(bin("<", lit(3), counts())), [[A1, 5]]);
  });

  it("bool returns 1 or 0 for every sample", async () => {
    assert.deepEqual(await at30(bin(">", counts(), lit(1), { bool: true })), [
      [A1, 1],
      [A2, 1],
      [B1, 0],
    ]);
    assert.deepEqual(await at30(bin(">", lit(1), counts(), { bool: true })), [
      [A1, 0],
      [A2, 0],
      [B1, 0],
    ]);
  });

  it("a comparison with NaN never holds", async () => {
    const nan = bin("/", counts(), lit(0));
    assert.deepEqual(await at30(bin("==", nan, nan)), []);
    assert.deepEqual(
      (await at30(bin("!=", nan, lit(1), { bool: true }))).map(([, v]) => v),
      [1, 1, 1],
    );
  });

  it("arithmetic on an empty vector is empty", async () => {
    const none = counts(30, selector({ app: "none" }));
    assert.deepEqual(await at30(bin("+", none, lit(1))), []);
    assert.deepEqual(await at30(bin("+", none, counts())), []);
    assert.deepEqual(await at30(bin("+", counts(), none)), []);
  });

  it("a number folds to a scalar for an instant query", async () => {
    assert.deepEqual(await run(bin("+", lit(1), lit(2)), instant(30)), { type: "scalar", tsMs: 30000, value: 3 });
  });

  it("a number comparison folds to 1 or 0", async () => {
    assert.deepEqual(await run(bin(">", lit(2), lit(1)), instant(30)), { type: "scalar", tsMs: 30000, value: 1 });
    assert.deepEqual(await run(bin(">", lit(1), lit(2)), instant(30)), { type: "scalar", tsMs: 30000, value: 0 });
  });

  it("a number divided by zero is NaN", async () => {
    const result = await run(bin("/", lit(1), lit(0)), instant(30));
    assert.equal(result.type, "scalar");
    if (result.type === "scalar") assert.ok(Number.isNaN(result.value));
  });

  it("a number in a range query is a matrix of one unlabelled series", async () => {
    const result = await run(lit(-1.5), range(0, 20, 10));
    assert.equal(result.type, "matrix");
    if (result.type !== "matrix") return;
    assert.deepEqual(
      result.series.map((s) => [plain(s.labels), s.points]),
      [
        [
          {},
          [
            [0, -1.5],
            [10000, -1.5],
            [20000, -1.5],
          ],
        ],
      ],
    );
  });

  it("folded numbers combine with a vector", async () => {
    assert.deepEqual(
      (await at30(bin("*", bin("+", lit(1), lit(2)), counts()))).map(([, v]) => v),
      [15, 6, 3],
    );
  });

  it("vector() is one unlabelled sample per step", async () => {
    assert.deepEqual(await vectorOf(vec(5), 30), [[{}, 5]]);
    assert.deepEqual(await matrixOf(vec(5), range(0, 10, 5)), [
      [
        {},
        [
          [0, 5],
          [5000, 5],
          [10000, 5],
        ],
      ],
    ]);
  });

  it("vector() matches only unlabelled series", async () => {
    assert.deepEqual(await at30(bin("+", vec(1), counts())), []);
    assert.deepEqual(await at30(bin("+", va("sum", counts()), vec(1))), [[{}, 9]]);
  });

  it("a literal as a vector aggregation's operand is refused", async () => {
    await assert.rejects(run(va("sum", lit(1)), instant(30)), EvaluationError);
  });
});

describe("binary operators: vector matching", () => {
  const at30 = (expr: MetricExpr) => vectorOf(expr, 30);
  const perApp = va("sum", counts(), by("app"));

  it("one-to-one on all labels", async () => {
    assert.deepEqual(await at30(bin("+", counts(), counts())), [
      [A1, 10],
      [A2, 4],
      [B1, 2],
    ]);
  });

  it("one-to-one drops samples without a match", async () => {
    assert.deepEqual(await at30(bin("-", counts(), counts(30, selector({ host: "h1" })))), [
      [A1, 0],
      [B1, 0],
    ]);
  });

  it("a comparison between vectors keeps the left values", async () => {
    // a/h1 5 > 2*? : compare counts with counts of h1 only scaled: a/h1 5 > 4, b/h1 1 > 2 fails.
    const h1Doubled = bin("*", counts(30, selector({ host: "h1" })), lit(2));
    assert.deepEqual(await at30(bin(">", counts(), h1Doubled)), []);
    assert.deepEqual(await at30(bin("<", counts(), h1Doubled)), [
      [A1, 5],
      [B1, 1],
    ]);
    assert.deepEqual(await at30(bin("<", counts(), h1Doubled, { bool: true })), [
      [A1, 1],
      [B1, 1],
    ]);
  });

  it("on() keeps only the matching labels in one-to-one results", async () => {
    const h2 = counts(30, selector({ host: "h2" }));
    assert.deepEqual(await at30(bin("+", h2, perApp, { matching: on(["app"]) })), [[{ app: "a" }, 9]]);
  });

  it("ignoring() drops the ignored labels in one-to-one results", async () => {
    const h2 = counts(30, selector({ host: "h2" }));
    assert.deepEqual(await at30(bin("+", h2, perApp, { matching: ignoring(["host"]) })), [[{ app: "a" }, 9]]);
  });

  it("many-to-one needs group_left", async () => {
    await assert.rejects(run(bin("/", counts(), perApp, { matching: on(["app"]) }), instant(30)), {
      name: "EvaluationError",
      message: "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
    });
  });

  it("group_left keeps the many side's labels", async () => {
    const result = await at30(bin("/", counts(), perApp, { matching: on(["app"], "many-to-one") }));
    assert.deepEqual(
      result.map(([labels]) => labels),
      [A1, A2, B1],
    );
    assertClose(result[0]![1], 5 / 7);
    assertClose(result[1]![1], 2 / 7);
    assert.equal(result[2]![1], 1);
  });

  it("group_right keeps the right side's labels and the operand order", async () => {
    const result = await at30(bin("/", perApp, counts(), { matching: on(["app"], "one-to-many") }));
    assert.deepEqual(result, [
      [A1, 7 / 5],
      [A2, 7 / 2],
      [B1, 1],
    ]);
  });

  it("group_left copies the listed labels from the one side", async () => {
    const teams = labelReplace(perApp, "team", "t-$1", "app", "(.*)");
    assert.deepEqual(
      (await at30(bin("*", counts(), teams, { matching: on(["app"], "many-to-one", ["team"]) }))).map(([l]) => l),
      [
        { ...A1, team: "t-a" },
        { ...A2, team: "t-a" },
        { ...B1, team: "t-b" },
      ],
    );
  });

  it("group_left removes a listed label the one side lacks", async () => {
    const rows = [logRow(1, "x", { app: "a", team: "old" })];
    const expr = bin("*", counts(30, ALL_LOGS), va("sum", counts(30, ALL_LOGS), by("app")), {
      matching: on(["app"], "many-to-one", ["team"]),
    });
    assert.deepEqual(await vectorOf(expr, 30, rows), [[{ app: "a" }, 1]]);
  });

  it("group_left with ignoring", async () => {
    assert.deepEqual(
      (await at30(bin("-", counts(), perApp, { matching: ignoring(["host"], "many-to-one") }))).map(([, v]) => v),
      [-2, -5, 0],
    );
  });

  it("refuses duplicates on the one side: many-to-many", async () => {
    await assert.rejects(run(bin("+", perApp, counts(), { matching: on(["app"]) }), instant(30)), {
      message:
        "found duplicate series on the right hand-side;many-to-many matching not allowed: matching labels must be unique on one side",
    });
  });

  it("names the left side for group_right", async () => {
    await assert.rejects(run(bin("+", counts(), counts(), { matching: on(["host"], "one-to-many") }), instant(30)), {
      message:
        "found duplicate series on the left hand-side;many-to-many matching not allowed: matching labels must be unique on one side",
    });
  });

  it("refuses group_left results that collide", async () => {
    // Two left series differ only in team, which group_left(team) overwrites from the right.
    const rows = [logRow(1, "x", { app: "a", team: "x" }), logRow(2, "y", { app: "a", team: "y" })];
    const expr = bin(
      "*",
      counts(30, ALL_LOGS),
      labelReplace(va("sum", counts(30, ALL_LOGS), by("app")), "team", "z", "app", ".*"),
      {
        matching: on(["app"], "many-to-one", ["team"]),
      },
    );
    await assert.rejects(run(expr, instant(30), rows), {
      message: "multiple matches for labels: grouping labels must ensure unique matches",
    });
  });

  it("matches at every step of a range query", async () => {
    // 10s windows at 10, 20: per app a: 5, 2; per series a/h1: 4, 1; a/h2: 1, 1.
    const result = await matrixOf(
      bin("/", counts(10), va("sum", counts(10), by("app")), { matching: on(["app"], "many-to-one") }),
      range(10, 20, 10),
    );
    assert.deepEqual(result, [
      [
        A1,
        [
          [10000, 0.8],
          [20000, 0.5],
        ],
      ],
      [
        A2,
        [
          [10000, 0.2],
          [20000, 0.5],
        ],
      ],
    ]);
  });
});

describe("binary operators: set operations", () => {
  const at30 = (expr: MetricExpr) => vectorOf(expr, 30);
  const h1 = counts(30, selector({ host: "h1" }));
  const none = counts(30, selector({ app: "none" }));

  it("and keeps the left samples with a match", async () => {
    assert.deepEqual(await at30(bin("and", counts(), h1)), [
      [A1, 5],
      [B1, 1],
    ]);
  });

  it("and on() matches on the listed labels only", async () => {
    assert.deepEqual(await at30(bin("and", counts(), va("sum", h1, by("app")), { matching: on(["app"]) })), [
      [A1, 5],
      [A2, 2],
      [B1, 1],
    ]);
    assert.deepEqual(await at30(bin("and", counts(), va("sum", h1, by("host")), { matching: on(["app"]) })), []);
  });

  it("or adds the right samples without a match", async () => {
    assert.deepEqual(await at30(bin("or", bin(">", counts(), lit(3)), counts())), [
      [A1, 5],
      [A2, 2],
      [B1, 1],
    ]);
    assert.deepEqual(await at30(bin("or", bin(">", counts(), lit(3)), bin("*", counts(), lit(100)))), [
      [A1, 5],
      [A2, 200],
      [B1, 100],
    ]);
  });

  it("unless drops the left samples with a match", async () => {
    assert.deepEqual(await at30(bin("unless", counts(), bin(">", counts(), lit(3)))), [
      [A2, 2],
      [B1, 1],
    ]);
  });

  it("unless ignoring()", async () => {
    assert.deepEqual(
      await at30(bin("unless", counts(), va("sum", h1, by("app")), { matching: ignoring(["host"]) })),
      [],
    );
  });

  it("with an empty side", async () => {
    assert.deepEqual(await at30(bin("and", counts(), none)), []);
    assert.deepEqual(await at30(bin("or", none, h1)), [
      [A1, 5],
      [B1, 1],
    ]);
    assert.equal((await at30(bin("unless", counts(), none))).length, 3);
  });

  it("refuses a number on either side", async () => {
    await assert.rejects(run(bin("and", counts(), lit(1)), instant(30)), {
      message: "unexpected literal for right leg of logical/set binary operation (and): 1.000000",
    });
    await assert.rejects(run(bin("or", lit(2), counts()), instant(30)), {
      message: "unexpected literal for left leg of logical/set binary operation (or): 2.000000",
    });
  });
});

describe("label_replace", () => {
  const at30 = (expr: MetricExpr) => vectorOf(expr, 30);

  it("sets the destination from the source's capture groups", async () => {
    assert.deepEqual(
      (await at30(labelReplace(counts(), "n", "$1", "host", "h(.*)"))).map(([l]) => l),
      [
        { ...A1, n: "1" },
        { ...A2, n: "2" },
        { ...B1, n: "1" },
      ],
    );
  });

  it("leaves samples unchanged when the regex does not match the whole value", async () => {
    assert.deepEqual(
      (await at30(labelReplace(counts(), "n", "x", "host", "h"))).map(([l]) => l),
      [A1, A2, B1],
    );
  });

  it("matches an absent source label as the empty string", async () => {
    assert.deepEqual(
      (await at30(labelReplace(counts(), "n", "none", "missing", ""))).map(([l]) => l.n),
      ["none", "none", "none"],
    );
  });

  it("removes the destination when the replacement expands to nothing", async () => {
    assert.deepEqual(await vectorOf(labelReplace(counts(30, selector(A2)), "host", "", "app", "a"), 30), [
      [{ app: "a" }, 2],
    ]);
  });

  it("overwrites an existing destination", async () => {
    assert.deepEqual(await vectorOf(labelReplace(counts(30, selector(A2)), "host", "$1-x", "host", "(h.)"), 30), [
      [{ app: "a", host: "h2-x" }, 2],
    ]);
  });

  it("expands named groups and braces", async () => {
    assert.deepEqual(
      (
        await vectorOf(labelReplace(counts(30, selector(A2)), "n", "${num}0 ${1}x $1x $$", "host", "h(?P<num>\\d)"), 30)
      ).map(([l]) => l.n),
      // `$1x` names the group "1x", which does not exist.
      ["20 2x  $"],
    );
  });

  it("refuses an invalid destination name", async () => {
    await assert.rejects(run(labelReplace(counts(), "1bad", "x", "app", ".*"), instant(30)), EvaluationError);
  });

  it("refuses an invalid regular expression", async () => {
    await assert.rejects(run(labelReplace(counts(), "n", "x", "app", "(a"), instant(30)), EvaluationError);
  });

  it("applies at every step", async () => {
    assert.deepEqual(await matrixOf(labelReplace(counts(5, selector(B1)), "app", "B", "app", "b"), range(30, 35, 5)), [
      [{ app: "B", host: "h1" }, [[30000, 1]]],
    ]);
  });
});

describe("log queries", () => {
  const logParams = (direction: Direction, limit: number, intervalS?: number): QueryParams => ({
    startNs: 0n,
    endNs: sec(100),
    stepNs: sec(1),
    direction,
    limit,
    instant: false,
    ...(intervalS !== undefined ? { intervalNs: sec(intervalS) } : {}),
  });

  async function streamsOf(expr: LogExpr, params: QueryParams, rows: Row[] = LOGS) {
    const result = await run(expr, params, rows);
    assert.equal(result.type, "streams");
    if (result.type !== "streams") throw new Error("unreachable");
    return result.streams.map((s) => [plain(s.labels), s.entries.map(([ts, line]) => [Number(ts / 1_000_000n), line])]);
  }

  it("forward takes the oldest entries up to the limit, across streams", async () => {
    assert.deepEqual(await streamsOf(ALL_LOGS, logParams("forward", 4)), [
      [
        A1,
        [
          [1000, "x"],
          [2000, "yy"],
          [3000, "zzz"],
        ],
      ],
      [A2, [[5000, "hello"]]],
    ]);
  });

  it("backward takes the newest entries, newest first in each stream", async () => {
    assert.deepEqual(await streamsOf(ALL_LOGS, logParams("backward", 3)), [
      [A1, [[20000, "ab"]]],
      [A2, [[15000, "hi"]]],
      [B1, [[30000, "b"]]],
    ]);
    assert.deepEqual(await streamsOf(ALL_LOGS, logParams("backward", 5)), [
      [
        A1,
        [
          [20000, "ab"],
          [10000, "é"],
        ],
      ],
      [
        A2,
        [
          [15000, "hi"],
          [5000, "hello"],
        ],
      ],
      [B1, [[30000, "b"]]],
    ]);
  });

  it("a limit of 0 returns nothing", async () => {
    assert.deepEqual(await streamsOf(ALL_LOGS, logParams("forward", 0)), []);
  });

  it("groups entries by their final labels, whatever the label objects", async () => {
    const rows = [
      logRow(1, "a", { x: "1", y: "2" }),
      {
        tsNs: sec(2),
        line: "b",
        labels: sortedLabelsOf([
          ["y", "2"],
          ["x", "1"],
        ]),
      },
    ];
    assert.deepEqual(await streamsOf(selector({ x: "1" }), logParams("forward", 10), rows), [
      [
        { x: "1", y: "2" },
        [
          [1000, "a"],
          [2000, "b"],
        ],
      ],
    ]);
  });

  it("orders streams by their label text, as Loki does", async () => {
    // `{app="a", ...}` sorts before `{app="a"}` because "," < "}".
    const rows = [logRow(1, "1", { app: "a" }), logRow(2, "2", { app: "a", host: "h" }), logRow(3, "3", { app: "B" })];
    assert.deepEqual(
      (await streamsOf(ALL_LOGS, logParams("forward", 10), rows)).map(([l]) => l),
      [{ app: "B" }, { app: "a", host: "h" }, { app: "a" }],
    );
  });

  it("keeps one entry per interval going forward", async () => {
    // 1, 2, 3, 5, 10 ... with 2s: 1, (2 < 3 skipped), 3, 5, 10, 15, 20, 30.
    const result = await streamsOf(ALL_LOGS, logParams("forward", 100, 2));
    assert.deepEqual(result, [
      [
        A1,
        [
          [1000, "x"],
          [3000, "zzz"],
          [10000, "é"],
          [20000, "ab"],
        ],
      ],
      [
        A2,
        [
          [5000, "hello"],
          [15000, "hi"],
        ],
      ],
      [B1, [[30000, "b"]]],
    ]);
  });

  it("keeps one entry per interval going backward", async () => {
    // 30; 20 (<= 24); 15 skipped (> 14); 10; 5 skipped (> 4); 3; 2 and 1 skipped (> -3).
    const result = await streamsOf(ALL_LOGS, logParams("backward", 100, 6));
    assert.deepEqual(result, [
      [
        A1,
        [
          [20000, "ab"],
          [10000, "é"],
          [3000, "zzz"],
        ],
      ],
      [B1, [[30000, "b"]]],
    ]);
  });

  it("asks the source for [start, end) in the query's direction and stops at the limit", async () => {
    const source = new MemorySource(LOGS, 1);
    await evaluate(ALL_LOGS, logParams("backward", 2), source, { maxSeries: 1 });
    assert.deepEqual(source.calls, [{ kind: "logs", startNs: 0n, endNs: sec(100), direction: "backward" }]);
    assert.equal(source.chunksRead, 2);
  });

  it("refuses an instant log query", async () => {
    await assert.rejects(run(ALL_LOGS, instant(10)), { name: "EvaluationError", message: INSTANT_LOG_QUERY_ERROR });
  });
});

describe("limits and cancellation", () => {
  it("refuses an instant vector with more series than the limit", async () => {
    await assert.rejects(evaluate(counts(), instant(30), new MemorySource(LOGS), { maxSeries: 2 }), (err: Error) => {
      assert.ok(err instanceof QueryLimitError);
      assert.match(err.message, /^maximum number of series \(2\) reached for a single query; consider reducing/);
      return true;
    });
  });

  it("allows exactly the limit", async () => {
    const result = await evaluate(counts(), instant(30), new MemorySource(LOGS), { maxSeries: 3 });
    assert.equal(result.type === "vector" && result.samples.length, 3);
  });

  it("counts series across the steps of a range query", async () => {
    // At 5: a/h1, a/h2; at 30: b/h1 -> 3 series although no step has more than 2.
    await assert.rejects(
      evaluate(counts(5), range(5, 30, 25), new MemorySource(LOGS), { maxSeries: 2 }),
      QueryLimitError,
    );
    const result = await evaluate(counts(5), range(5, 30, 25), new MemorySource(LOGS), { maxSeries: 3 });
    assert.equal(result.type === "matrix" && result.series.length, 3);
  });

  it("the limit applies to the result, not to the series aggregated into it", async () => {
    const result = await evaluate(va("sum", counts()), instant(30), new MemorySource(LOGS), { maxSeries: 1 });
    assert.equal(result.type === "vector" && result.samples.length, 1);
  });

  it("stops when the signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort(new Error("client went away"));
    await assert.rejects(
      evaluate(counts(), instant(30), new MemorySource(LOGS), { maxSeries: 10, signal: controller.signal }),
      { message: "client went away" },
    );
  });

  it("stops between chunks when aborted during the query", async () => {
    const controller = new AbortController();
    const source = new MemorySource(LOGS, 1);
    const logs = source.logs.bind(source);
    source.logs = (...args) => {
      const inner = logs(...args);
      return (async function* () {
        for await (const chunk of inner) {
          // The query is cancelled while it works on the first chunk.
          controller.abort(new Error("stop"));
          yield chunk;
        }
      })();
    };
    await assert.rejects(evaluate(counts(), range(0, 30, 1), source, { maxSeries: 10, signal: controller.signal }), {
      message: "stop",
    });
    assert.equal(source.chunksRead, 1);
  });

  it("refuses a range query without a positive step", async () => {
    await assert.rejects(run(counts(), { ...range(0, 30, 1), stepNs: 0n }), EvaluationError);
  });
});

describe("vector operations as PromQL will use them", () => {
  const s = (labels: Record<string, string>, value: number) => ({ labels: L(labels), value });

  it("Prometheus divides by zero into infinities", () => {
    assert.equal(arithmetic("/", 1, 0, PROMETHEUS_SEMANTICS), Infinity);
    assert.equal(arithmetic("/", -1, 0, PROMETHEUS_SEMANTICS), -Infinity);
    assert.ok(Number.isNaN(arithmetic("/", 0, 0, PROMETHEUS_SEMANTICS)));
    assert.ok(Number.isNaN(arithmetic("/", 1, 0, LOKI_SEMANTICS)));
  });

  it("modulo follows Go's math.Mod", () => {
    assert.equal(arithmetic("%", -7, 3, LOKI_SEMANTICS), -1);
    assert.equal(arithmetic("%", 7, -3, LOKI_SEMANTICS), 1);
    assert.ok(Number.isNaN(arithmetic("%", 1, 0, PROMETHEUS_SEMANTICS)));
  });

  it("power follows Go's math.Pow for 1 and -1", () => {
    assert.equal(arithmetic("^", 1, NaN, LOKI_SEMANTICS), 1);
    assert.equal(arithmetic("^", -1, Infinity, LOKI_SEMANTICS), 1);
    assert.equal(arithmetic("^", 2, -1, LOKI_SEMANTICS), 0.5);
  });

  it("Prometheus drops the metric name from arithmetic and bool results but not from filters", () => {
    const v = [s({ __name__: "up", job: "a" }, 1)];
    assert.deepEqual(plain(vectorScalar("*", v, 2, false, false, PROMETHEUS_SEMANTICS)[0]!.labels), { job: "a" });
    assert.deepEqual(plain(vectorScalar(">", v, 0, false, true, PROMETHEUS_SEMANTICS)[0]!.labels), { job: "a" });
    assert.deepEqual(plain(vectorScalar(">", v, 0, false, false, PROMETHEUS_SEMANTICS)[0]!.labels), {
      __name__: "up",
      job: "a",
    });
    assert.deepEqual(plain(vectorScalar("*", v, 2, false, false, LOKI_SEMANTICS)[0]!.labels), {
      __name__: "up",
      job: "a",
    });
  });

  it("Prometheus matches across metric names", () => {
    const lhs = [s({ __name__: "a", job: "x" }, 6)];
    const rhs = [s({ __name__: "b", job: "x" }, 3)];
    assert.deepEqual(
      vectorBinary("/", lhs, rhs, false, undefined, PROMETHEUS_SEMANTICS).map((r) => [plain(r.labels), r.value]),
      [[{ job: "x" }, 2]],
    );
    assert.deepEqual(vectorBinary("/", lhs, rhs, false, undefined, LOKI_SEMANTICS), []);
  });

  it("without drops the metric name", () => {
    const v = [s({ __name__: "up", job: "a", i: "1" }, 1), s({ __name__: "up", job: "a", i: "2" }, 2)];
    assert.deepEqual(
      aggregate("sum", v, { without: true, labels: ["i"] }, undefined).map((r) => [plain(r.labels), r.value]),
      [[{ job: "a" }, 3]],
    );
  });

  it("expandTemplate as Go's Regexp.Expand", () => {
    const match = /(?<word>a+)(b)/.exec("aab")!;
    assert.equal(expandReplacement("$1-$2-${word}-$word-$3-$$-$-$}", match), "aa-b-aa-aa--$-$-$}");
  });
});

describe("range functions and labels", () => {
  it("quantile of nothing is NaN and NaN sorts first", () => {
    assert.ok(Number.isNaN(quantile(0.5, [])));
    assert.ok(Number.isNaN(quantile(0, [3, NaN, 1])));
    assert.equal(quantile(1, [3, NaN, 1]), 3);
    assert.equal(quantile(0.25, [10, 20, 30, 40, 50]), 20);
  });

  it("durationSeconds keeps nanosecond precision of long ranges", () => {
    // eslint-disable-next-line no-loss-of-precision -- the literal Go prints; it rounds to the same double
    assert.equal(durationSeconds(sec(86400 * 365) + 5n), 31536000.000000005);
    assert.equal(durationSeconds(1_500_000_000n), 1.5);
  });

  it("compareLabels orders like Prometheus' labels.Compare", () => {
    const sorted = [L({ b: "1" }), L({ a: "2" }), L({ a: "1", c: "1" }), L({ a: "1" }), L({})].sort(compareLabels);
    assert.deepEqual(sorted.map(plain), [{}, { a: "1" }, { a: "1", c: "1" }, { a: "2" }, { b: "1" }]);
  });

  it("compareText orders strings as their UTF-8 bytes, as Go and both engines do", () => {
    const alphabet = ["a", "b", "\u00e9", "\u4e2d", "\ud7ff", "\ue000", "\uffff", "\u{1f600}", "\u{10000}", ""];
    const strings: string[] = [];
    for (const x of alphabet) for (const y of alphabet) for (const z of alphabet) strings.push(x + y + z);
    const sign = (n: number) => Math.sign(n);
    for (const a of strings.slice(0, 400)) {
      for (const b of strings)
        assert.equal(
          sign(compareText(a, b)),
          sign(Buffer.compare(Buffer.from(a), Buffer.from(b))),
          `${escape(a)} vs ${escape(b)}`,
        );
    }
  });

  it("formatLabels quotes as Go does", () => {
    assert.equal(formatLabels(L({ b: 'say "hi"\n', a: "\\x\u0001" })), '{a="\\\\x\\x01", b="say \\"hi\\"\\n"}');
  });

  it("labelsKey ignores property order", () => {
    assert.equal(
      labelsKey(
        sortedLabelsOf([
          ["a", "1"],
          ["b", "2"],
        ]),
      ),
      labelsKey({ b: "2", a: "1" }),
    );
    assert.notEqual(labelsKey(L({ a: "1b" })), labelsKey(L({ a: "1", b: "" })));
  });
});
