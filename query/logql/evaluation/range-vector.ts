import { EvaluationBudget } from "../../evaluation-budget.js";
import type { LabelMatcher } from "../../../storage/store.js";
import { dropLabels, formatLabels, keepLabels, labelsKey, sortedLabelsOf, type Labels } from "../../../proto/labels.js";
import { EvaluationError } from "../../vector/types.js";
import { GROUPING_RANGE_OPS, LINE_RANGE_OPS, UNWRAPPABLE_RANGE_OPS, type RangeAggregationExpr } from "../syntax/ast.js";
import { ERROR_LABEL } from "../pipeline/labels-builder.js";
import { RowCursor } from "./cursor.js";
import type { EngineSource, Step, Timeline } from "./source.js";
import { rangeFunction, type Point } from "./range-functions.js";

// Range aggregations step by step, as Loki's range_vector.go: at step t the window is (t - offset - range,
// t - offset], open at its start and closed at its end, and the result carries t's timestamp. Rows stream in
// ascending time order through one sliding window per series, so memory holds one window, never the whole range.

const PRESERVE_ERROR_LABEL = "__preserve_error__";

/**
 * A metric query whose range windows would hold more than query.limits.max_samples entries (or unwrapped values)
 * at once: a range too long over too many lines, which would take the memory of the process that also ingests.
 */
export class TooManySamplesError extends EvaluationError {
  constructor(readonly maxSamples: number) {
    super(
      `query processing would load too many samples into memory in query execution: its range windows would hold ` +
        `more than ${maxSamples} log entries at once (limit query.limits.max_samples); shorten the range of the ` +
        "range aggregation, or select fewer lines with more specific stream selectors and line filters",
    );
    this.name = "TooManySamplesError";
  }
}

/** A series carrying a pipeline error, which a metric query refuses unless the error is filtered out. */
export class PipelineError extends EvaluationError {
  constructor(labels: Labels) {
    const kind = labels[ERROR_LABEL]!;
    super(
      `pipeline error: '${kind}' for series: '${formatLabels(labels)}'.\n` +
        `Use a label filter to intentionally skip this error. (e.g | __error__!="${kind}").\n` +
        'To skip all potential errors you can match empty errors.(e.g __error__="")\n' +
        'The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__="" )\n',
    );
    this.name = "PipelineError";
  }
}

function hasError(labels: Labels): boolean {
  const error = labels[ERROR_LABEL];
  return error !== undefined && error !== "" && labels[PRESERVE_ERROR_LABEL] !== "true";
}

/** The checks of Loki's RangeAggregationExpr.validate, with its messages. */
export function validateRangeAggregation(expr: RangeAggregationExpr): void {
  if (expr.grouping !== undefined && !GROUPING_RANGE_OPS.has(expr.op)) {
    throw new EvaluationError(`grouping not allowed for ${expr.op} aggregation`);
  }
  const unwrapped = expr.range.unwrap !== undefined;
  if (unwrapped && !UNWRAPPABLE_RANGE_OPS.has(expr.op)) {
    throw new EvaluationError(`invalid aggregation ${expr.op} with unwrap`);
  }
  if (!unwrapped && !LINE_RANGE_OPS.has(expr.op))
    throw new EvaluationError(`invalid aggregation ${expr.op} without unwrap`);
  if (expr.op === "quantile_over_time" && expr.param === undefined) {
    throw new EvaluationError("quantile_over_time needs a quantile parameter");
  }
  if (expr.range.rangeNs <= 0n) throw new EvaluationError("the range of a range aggregation must be positive");
}

/** The labels absent_over_time reports: those of the selector's equality matchers, less any name also matched otherwise. */
export function absentLabels(matchers: readonly LabelMatcher[]): Labels {
  const labels = new Map<string, string>();
  const removed: string[] = [];
  for (const matcher of matchers) {
    if (matcher.name === "__name__") continue;
    if (matcher.op === "=" && !labels.has(matcher.name)) labels.set(matcher.name, matcher.value);
    else removed.push(matcher.name);
  }
  for (const name of removed) labels.delete(name);
  return sortedLabelsOf(labels);
}

interface Row {
  tsNs: bigint;
  value: number;
  labels: Labels;
}

/** The rows a range aggregation reads: unwrapped samples, or one row per line valued 1 or its size in bytes. */
async function* rowsOf(
  expr: RangeAggregationExpr,
  source: EngineSource,
  fromNs: bigint,
  toNs: bigint,
): AsyncIterable<Row[]> {
  const { range } = expr;
  if (range.unwrap !== undefined) {
    yield* source.samples(range, fromNs, toNs);
    return;
  }
  const bytes = expr.op === "bytes_over_time" || expr.op === "bytes_rate";
  for await (const chunk of source.logs(range.log, fromNs, toNs, "forward")) {
    yield chunk.map((row) => ({
      tsNs: row.tsNs,
      value: bytes ? Buffer.byteLength(row.line, "utf8") : 1,
      labels: row.labels,
    }));
  }
}

interface SeriesKey {
  key: string;
  labels: Labels;
}

/** The series a row belongs to: its labels reduced by the aggregation's grouping, except rows with an error. */
function seriesKeyer(expr: RangeAggregationExpr): (labels: Labels) => SeriesKey {
  const cache = new WeakMap<Labels, SeriesKey>();
  const { grouping } = expr;
  const reduce = (labels: Labels): Labels => {
    // Errors keep all labels so that the refusal can name the series.
    if (hasError(labels)) return labels;
    if (expr.op === "absent_over_time") return sortedLabelsOf([]);
    if (grouping === undefined) return labels;
    return grouping.without ? dropLabels(labels, grouping.labels) : keepLabels(labels, grouping.labels);
  };
  return (labels) => {
    let series = cache.get(labels);
    if (series === undefined) {
      const reduced = reduce(labels);
      series = { key: labelsKey(reduced), labels: reduced };
      cache.set(labels, series);
    }
    return series;
  };
}

interface Window {
  labels: Labels;
  points: Point[];
}

/** Drops the points at or before the window's open start, and the series left empty; returns how many it dropped. */
function evict(windows: Map<string, Window>, startNs: bigint): number {
  let dropped = 0;
  for (const [key, window] of windows) {
    let stale = 0;
    while (stale < window.points.length && window.points[stale]!.tsNs <= startNs) stale++;
    dropped += stale;
    if (stale === window.points.length) windows.delete(key);
    else if (stale > 0) window.points.splice(0, stale);
  }
  return dropped;
}

/** The vector of a range aggregation at each step of the timeline; its windows hold at most `maxSamples` points. */
export async function* rangeAggregationSteps(
  expr: RangeAggregationExpr,
  timeline: Timeline,
  source: EngineSource,
  signal?: AbortSignal,
  maxSamples?: number,
): AsyncGenerator<Step> {
  validateRangeAggregation(expr);
  const { rangeNs, offsetNs } = expr.range;
  const fn = rangeFunction(expr.op, rangeNs, expr.range.unwrap !== undefined, expr.param);
  const keyOf = seriesKeyer(expr);
  const absent = expr.op === "absent_over_time" ? absentLabels(expr.range.log.matchers) : undefined;
  // One read covers every window: from the first window's start to just past the last window's end.
  const cursor = new RowCursor(
    rowsOf(expr, source, timeline.startNs - offsetNs - rangeNs, timeline.endNs - offsetNs + 1n),
    signal,
  );
  const windows = new Map<string, Window>();
  let previousNs: bigint | undefined;
  // Rows already in memory are read without a turn of the event loop; the budget gives it one every few ms.
  const budget = new EvaluationBudget({
    signal,
    ...(maxSamples === undefined ? {} : { maxSamples, tooManySamples: () => new TooManySamplesError(maxSamples) }),
  });
  let held = 0;
  try {
    for (let t = timeline.startNs; t <= timeline.endNs; t += timeline.stepNs) {
      signal?.throwIfAborted();
      const windowEnd = t - offsetNs;
      const windowStart = windowEnd - rangeNs;
      held -= evict(windows, windowStart);
      for (let row = await cursor.peek(); row !== undefined && row.tsNs <= windowEnd; row = await cursor.peek()) {
        cursor.skip();
        await budget.pause();
        // Windows only slide forward: a row older than one already read would silently miss its windows.
        if (previousNs !== undefined && row.tsNs < previousNs) {
          throw new Error(`the engine source returned rows out of time order (${row.tsNs} after ${previousNs})`);
        }
        previousNs = row.tsNs;
        if (row.tsNs <= windowStart) continue;
        const { key, labels } = keyOf(row.labels);
        const window = windows.get(key);
        const point = { tsNs: row.tsNs, value: row.value };
        if (window === undefined) windows.set(key, { labels, points: [point] });
        else window.points.push(point);
        budget.hold(++held);
      }
      // Loki truncates the shifted time and the offset to milliseconds separately.
      const tsMs = Number(windowEnd / 1_000_000n) + Number(offsetNs / 1_000_000n);
      const keys = [...windows.keys()].sort();
      for (const key of keys) {
        const { labels } = windows.get(key)!;
        if (hasError(labels)) throw new PipelineError(labels);
      }
      if (absent !== undefined) {
        yield { tsMs, vector: windows.size === 0 ? [{ labels: absent, value: 1 }] : [] };
        continue;
      }
      const vector = keys.map((key) => {
        const { labels, points } = windows.get(key)!;
        return { labels, value: fn(points, windowEnd) };
      });
      yield { tsMs, vector };
    }
  } finally {
    await cursor.close();
  }
}
