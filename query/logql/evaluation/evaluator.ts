import { formatFloatFixed } from "../../../common/go/float-format.js";
import type { Direction } from "../../../storage/store.js";
import { compareText } from "../../../common/go/string-order.js";
import { compareLabels, formatLabels, labelsKey, sortedLabelsOf, type Labels } from "../../../proto/labels.js";
import { aggregate } from "../../vector/aggregate.js";
import { labelReplace } from "../../vector/label-replace.js";
import { vectorBinary, vectorScalar, vectorSetOp } from "../../vector/binary.js";
import { isSetOp, scalarBinary } from "../../../common/vector/arithmetic.js";
import { EvaluationError, LOKI_SEMANTICS, type Sample } from "../../../common/vector/types.js";
import type {
  BinaryExpr,
  Expr,
  Grouping,
  LogExpr,
  MetricExpr,
  RangeAggregationExpr,
  VectorAggregationExpr,
} from "../../../common/logql/syntax/ast.js";
import { RowCursor } from "./cursor.js";
import { RegexSyntaxError, compileRe2 } from "../../../common/regex.js";
import { EvaluationBudget } from "../../evaluation-budget.js";
import { injectedGrouping, rangeAggregationSteps, validateRangeAggregation } from "./range-vector.js";
import type { EngineSource, Step, Timeline } from "./source.js";

// The reference LogQL evaluator, with the semantics of Loki's engine.go and evaluator.go. A metric query is a
// tree of step evaluators, each an async generator of one vector per step; leaves are range aggregations reading
// from an EngineSource, which applies selectors and pipelines. Log queries read entries up to the limit.

export { EvaluationError } from "../../../common/vector/types.js";
export { PipelineError } from "./range-vector.js";

export interface QueryParams {
  startNs: bigint;
  endNs: bigint;
  stepNs: bigint;
  /** Log queries: return at most one entry per interval (Loki's `interval`). */
  intervalNs?: bigint;
  direction: Direction;
  limit: number;
  /** An instant query is evaluated at startNs alone. */
  instant: boolean;
  /**
   * Log queries: streams keyed by their stream labels alone, each entry with its structured metadata and parsed
   * labels apart (Loki's categorize-labels encoding flag).
   */
  categorizeLabels?: boolean;
}

export interface EngineLimits {
  maxSeries: number;
  /** Most points the range aggregations' windows hold at once (query.limits.max_samples); unbounded without it. */
  maxSamples?: number;
  signal?: AbortSignal;
}

export type QueryResult =
  | { type: "streams"; streams: { labels: Labels; entries: StreamEntry[] }[] }
  | { type: "matrix"; series: { labels: Labels; points: [tsMs: number, value: number][] }[] }
  | { type: "vector"; samples: { labels: Labels; tsMs: number; value: number }[] }
  | { type: "scalar"; tsMs: number; value: number };

/** One entry of a log query's result; its labels by category when the query asked for categorize-labels. */
export type StreamEntry = [tsNs: bigint, line: string, categories?: { metadata: Labels; parsed: Labels }];

/** A result with more series than the tenant's max_query_series. */
export class QueryLimitError extends Error {
  constructor(readonly maxSeries: number) {
    super(
      `maximum number of series (${maxSeries}) reached for a single query; consider reducing query cardinality by ` +
        "adding more specific stream selectors, reducing the time range, or aggregating results with functions like " +
        "sum(), count() or topk()",
    );
    this.name = "QueryLimitError";
  }
}

export const INSTANT_LOG_QUERY_ERROR =
  "log queries are not supported as an instant query type, please change your query to a range query type";

export async function evaluate(
  expr: Expr,
  params: QueryParams,
  source: EngineSource,
  limits: EngineLimits,
): Promise<QueryResult> {
  if (expr.kind === "log") {
    if (params.instant) throw new EvaluationError(INSTANT_LOG_QUERY_ERROR);
    return readStreams(expr, params, source, limits.signal);
  }
  const timeline = timelineOf(params);
  const literal = literalValue(expr);
  if (literal !== undefined) {
    if (params.instant) return { type: "scalar", tsMs: nsToMs(params.startNs), value: literal };
    return {
      type: "matrix",
      series: [{ labels: sortedLabelsOf([]), points: stepTimes(timeline).map((tsMs) => [tsMs, literal]) }],
    };
  }
  const evaluator = new Evaluator(timeline, params.instant, source, limits.signal, limits.maxSamples);
  const steps = evaluator.steps(expr);
  try {
    return params.instant
      ? await instantResult(expr, steps, limits.maxSeries)
      : await matrixResult(steps, limits.maxSeries, new EvaluationBudget({ signal: limits.signal }));
  } finally {
    await steps.return(undefined);
  }
}

function nsToMs(ns: bigint): number {
  return Number(ns / 1_000_000n);
}

function timelineOf(params: QueryParams): Timeline {
  if (params.instant) return { startNs: params.startNs, endNs: params.startNs, stepNs: 1n };
  if (params.stepNs <= 0n) {
    throw new EvaluationError("zero or negative query resolution step widths are not accepted. Try a positive integer");
  }
  if (params.endNs < params.startNs) throw new EvaluationError("end timestamp must not be before start time");
  return { startNs: params.startNs, endNs: params.endNs, stepNs: params.stepNs };
}

function stepTimes(timeline: Timeline): number[] {
  const times: number[] = [];
  for (let t = timeline.startNs; t <= timeline.endNs; t += timeline.stepNs) times.push(nsToMs(t));
  return times;
}

/**
 * The value of an expression made only of numbers, which Loki folds while parsing (`2 * 3` is the literal 6);
 * a comparison between numbers folds to 1 or 0.
 */
function literalValue(expr: MetricExpr): number | undefined {
  if (expr.kind === "literal") return expr.value;
  if (expr.kind !== "binary" || isSetOp(expr.op)) return undefined;
  const left = literalValue(expr.lhs);
  const right = literalValue(expr.rhs);
  if (left === undefined || right === undefined) return undefined;
  return scalarBinary(expr.op, left, right, LOKI_SEMANTICS);
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The regex of label_replace, anchored at both ends as Loki compiles it; a bad one is the query's fault. */
function compileLabelReplaceRegex(pattern: string): RegExp {
  try {
    return compileRe2(pattern, true);
  } catch (err) {
    if (err instanceof RegexSyntaxError)
      throw new EvaluationError(`invalid regular expression in label_replace(): ${err.message}`);
    throw err;
  }
}

class Evaluator {
  constructor(
    private readonly timeline: Timeline,
    private readonly instant: boolean,
    private readonly source: EngineSource,
    private readonly signal: AbortSignal | undefined,
    private readonly maxSamples: number | undefined,
  ) {}

  steps(expr: MetricExpr): AsyncGenerator<Step> {
    switch (expr.kind) {
      case "range_aggregation":
        return this.rangeSteps(expr);
      case "vector_aggregation":
        return this.aggregationSteps(expr);
      case "label_replace": {
        if (!LABEL_NAME.test(expr.dst))
          throw new EvaluationError(`invalid destination label name in label_replace(): ${expr.dst}`);
        const regex = compileLabelReplaceRegex(expr.regex);
        return this.mapSteps(expr.expr, (vector) => labelReplace(vector, expr.dst, expr.replacement, expr.src, regex));
      }
      case "vector":
        return this.vectorSteps(expr.value);
      case "binary":
        return this.binarySteps(expr);
      case "literal":
        throw new EvaluationError(`unexpected literal ${formatFloatFixed(expr.value)} where a vector is expected`);
    }
  }

  /** `grouping`: one injected by an outer sum (injectedGrouping), which the streaming engine groups rows by. */
  private async *rangeSteps(expr: RangeAggregationExpr, grouping?: Grouping): AsyncGenerator<Step> {
    validateRangeAggregation(expr);
    const pushed = await this.source.rangeAggregation?.(expr, this.timeline);
    if (pushed !== undefined) yield* pushed;
    else
      yield* rangeAggregationSteps(
        expr,
        this.timeline,
        this.source,
        this.signal,
        grouping ?? expr.grouping,
        this.maxSamples,
      );
  }

  private async *aggregationSteps(expr: VectorAggregationExpr): AsyncGenerator<Step> {
    const inner = expr.expr;
    // Loki estimates approx_topk from count-min sketches, which it builds for instant queries alone. The exact topk
    // is what the sketches estimate, and what they give when the series do not collide.
    if (expr.op === "approx_topk" && !this.instant)
      throw new EvaluationError("count min sketches are only supported on instant queries");
    const op = expr.op === "approx_topk" ? "topk" : expr.op;
    if (
      expr.op === "sum" &&
      expr.grouping?.without !== true &&
      inner.kind === "range_aggregation" &&
      this.source.groupedRangeAggregation
    ) {
      validateRangeAggregation(inner);
      const pushed = await this.source.groupedRangeAggregation(inner, expr.grouping, this.timeline);
      if (pushed !== undefined) return yield* pushed;
    }
    const injected = inner.kind === "range_aggregation" ? injectedGrouping(op, expr.grouping, inner) : undefined;
    const aggregated = (vector: Sample[]) => aggregate(op, vector, expr.grouping, expr.param);
    if (injected !== undefined && inner.kind === "range_aggregation") {
      for await (const step of this.rangeSteps(inner, injected))
        yield { tsMs: step.tsMs, vector: aggregated(step.vector) };
      return;
    }
    yield* this.mapSteps(inner, aggregated);
  }

  private async *mapSteps(inner: MetricExpr, fn: (vector: Sample[]) => Sample[]): AsyncGenerator<Step> {
    for await (const step of this.steps(inner)) yield { tsMs: step.tsMs, vector: fn(step.vector) };
  }

  private async *vectorSteps(value: number): AsyncGenerator<Step> {
    for (const tsMs of stepTimes(this.timeline)) yield { tsMs, vector: [{ labels: sortedLabelsOf([]), value }] };
  }

  private binarySteps(expr: BinaryExpr): AsyncGenerator<Step> {
    const { op } = expr;
    const left = literalValue(expr.lhs);
    const right = literalValue(expr.rhs);
    if (isSetOp(op)) {
      if (left !== undefined) {
        throw new EvaluationError(
          `unexpected literal for left leg of logical/set binary operation (${op}): ${formatFloatFixed(left)}`,
        );
      }
      if (right !== undefined) {
        throw new EvaluationError(
          `unexpected literal for right leg of logical/set binary operation (${op}): ${formatFloatFixed(right)}`,
        );
      }
      return this.zipSteps(expr.lhs, expr.rhs, (lhs, rhs) => vectorSetOp(op, lhs, rhs, expr.matching, LOKI_SEMANTICS));
    }
    if (left !== undefined) {
      return this.mapSteps(expr.rhs, (vector) => vectorScalar(op, vector, left, true, expr.returnBool, LOKI_SEMANTICS));
    }
    if (right !== undefined) {
      return this.mapSteps(expr.lhs, (vector) =>
        vectorScalar(op, vector, right, false, expr.returnBool, LOKI_SEMANTICS),
      );
    }
    return this.zipSteps(expr.lhs, expr.rhs, (lhs, rhs) =>
      vectorBinary(op, lhs, rhs, expr.returnBool, expr.matching, LOKI_SEMANTICS),
    );
  }

  /** Both sides step through the same timeline, so their n-th steps belong together. */
  private async *zipSteps(
    lhsExpr: MetricExpr,
    rhsExpr: MetricExpr,
    fn: (lhs: Sample[], rhs: Sample[]) => Sample[],
  ): AsyncGenerator<Step> {
    const lhs = this.steps(lhsExpr);
    const rhs = this.steps(rhsExpr);
    try {
      for (;;) {
        const [l, r] = [await lhs.next(), await rhs.next()];
        if (l.done === true || r.done === true) return;
        yield { tsMs: l.value.tsMs, vector: fn(l.value.vector, r.value.vector) };
      }
    } finally {
      await Promise.all([lhs.return(undefined), rhs.return(undefined)]);
    }
  }
}

/** Whether the query orders its result itself (sort, sort_desc), which an instant query then keeps. */
function sortsByValue(expr: MetricExpr): boolean {
  switch (expr.kind) {
    case "vector_aggregation":
      return expr.op === "sort" || expr.op === "sort_desc" || sortsByValue(expr.expr);
    case "label_replace":
      return sortsByValue(expr.expr);
    case "binary":
      return sortsByValue(expr.lhs) || sortsByValue(expr.rhs);
    default:
      return false;
  }
}

async function instantResult(expr: MetricExpr, steps: AsyncGenerator<Step>, maxSeries: number): Promise<QueryResult> {
  const first = await steps.next();
  if (first.done === true) return { type: "vector", samples: [] };
  const { tsMs, vector } = first.value;
  if (vector.length > maxSeries) throw new QueryLimitError(maxSeries);
  const ordered = sortsByValue(expr) ? vector : [...vector].sort((a, b) => compareLabels(a.labels, b.labels));
  return { type: "vector", samples: ordered.map(({ labels, value }) => ({ labels, tsMs, value })) };
}

async function matrixResult(
  steps: AsyncGenerator<Step>,
  maxSeries: number,
  budget: EvaluationBudget,
): Promise<QueryResult> {
  const series = new Map<string, { labels: Labels; points: [number, number][] }>();
  for await (const { tsMs, vector } of steps) {
    await budget.pause();
    for (const { labels, value } of vector) {
      const key = labelsKey(labels);
      let entry = series.get(key);
      if (entry === undefined) {
        if (series.size >= maxSeries) throw new QueryLimitError(maxSeries);
        entry = { labels, points: [] };
        series.set(key, entry);
      }
      entry.points.push([tsMs, value]);
    }
  }
  return { type: "matrix", series: [...series.values()].sort((a, b) => compareLabels(a.labels, b.labels)) };
}

/**
 * A log query: entries in the requested direction until `limit`, at most one per `intervalNs` when set, grouped
 * into streams by their final labels; streams come ordered by their label text as Loki orders them.
 */
async function readStreams(
  expr: LogExpr,
  params: QueryParams,
  source: EngineSource,
  signal: AbortSignal | undefined,
): Promise<QueryResult> {
  const streams = new Map<string, { labels: Labels; entries: StreamEntry[] }>();
  const interval = params.intervalNs ?? 0n;
  const categorize = params.categorizeLabels === true;
  // With an interval, entries are skipped, so more than `limit` of them may be read.
  const cursor = new RowCursor(
    source.logs(
      expr,
      params.startNs,
      params.endNs,
      params.direction,
      interval > 0n ? undefined : params.limit,
      categorize,
    ),
    signal,
  );
  const forward = params.direction === "forward";
  let taken = 0;
  let last: bigint | undefined;
  try {
    while (taken < params.limit) {
      const row = await cursor.peek();
      if (row === undefined) break;
      cursor.skip();
      if (interval > 0n && last !== undefined && (forward ? row.tsNs < last + interval : row.tsNs > last - interval)) {
        continue;
      }
      const categories = categorize ? row.categories : undefined;
      const labels = categories?.stream ?? row.labels;
      const key = labelsKey(labels);
      let stream = streams.get(key);
      if (stream === undefined) {
        stream = { labels, entries: [] };
        streams.set(key, stream);
      }
      stream.entries.push(
        categories === undefined
          ? [row.tsNs, row.line]
          : [row.tsNs, row.line, { metadata: categories.metadata, parsed: categories.parsed }],
      );
      last = row.tsNs;
      taken++;
    }
  } finally {
    await cursor.close();
  }
  const ordered = [...streams.values()]
    .map((stream) => ({ text: formatLabels(stream.labels), stream }))
    .sort((a, b) => compareText(a.text, b.text))
    .map(({ stream }) => stream);
  return { type: "streams", streams: ordered };
}
