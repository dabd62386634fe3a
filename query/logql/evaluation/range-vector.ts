import { EvaluationBudget } from "../../evaluation-budget.js";
import type { LabelMatcher } from "../../../storage/store.js";
import { dropLabels, formatLabels, keepLabels, labelsKey, sortedLabelsOf, type Labels } from "../../../proto/labels.js";
import { EvaluationError } from "../../../common/vector/types.js";
import {
  GROUPING_RANGE_OPS,
  type Grouping,
  LINE_RANGE_OPS,
  UNWRAPPABLE_RANGE_OPS,
  type RangeAggregationExpr,
} from "../../../common/logql/syntax/ast.js";
import { ERROR_LABEL } from "../../../common/logql/pipeline/labels-builder.js";
import { requiredLabels } from "../pipeline/hints.js";
import { RowCursor } from "./cursor.js";
import type { EngineSource, Step, Timeline } from "./source.js";
import { rangeFunction, type WindowColumns } from "./range-functions.js";

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

/** A row of a range aggregation: an unwrapped sample (with its value) or a log line (valued 1 or its bytes). */
type Row = { tsNs: bigint; labels: Labels } & ({ value: number } | { line: string });

/** The rows a range aggregation reads, as the source gives them: no object is made per row here. */
function rowsOf(
  expr: RangeAggregationExpr,
  source: EngineSource,
  fromNs: bigint,
  toNs: bigint,
  grouping: Grouping | undefined,
): AsyncIterable<Row[]> {
  const { range } = expr;
  const required =
    expr.op === "absent_over_time" ? undefined : requiredLabels(range.log.pipeline, grouping, range.unwrap);
  if (range.unwrap !== undefined) return source.samples(range, fromNs, toNs, required);
  return source.logs(range.log, fromNs, toNs, "forward", undefined, false, required);
}

function rowValuer(expr: RangeAggregationExpr): (row: Row) => number {
  if (expr.range.unwrap !== undefined) return (row) => (row as { value: number }).value;
  if (expr.op === "bytes_over_time" || expr.op === "bytes_rate")
    return (row) => Buffer.byteLength((row as { line: string }).line, "utf8");
  return () => 1;
}

interface SeriesKey {
  key: string;
  labels: Labels;
}

/** The series a row belongs to: its labels reduced by the aggregation's grouping, except rows with an error. */
function seriesKeyer(expr: RangeAggregationExpr, grouping: Grouping | undefined): (labels: Labels) => SeriesKey {
  const cache = new WeakMap<Labels, SeriesKey>();
  const reduce = (labels: Labels): Labels => {
    // Errors keep all labels so that the refusal can name the series.
    if (hasError(labels)) return labels;
    if (expr.op === "absent_over_time") return sortedLabelsOf([]);
    if (grouping === undefined) return labels;
    return grouping.without ? dropLabels(labels, grouping.labels) : keepLabels(labels, grouping.labels);
  };
  const byLabels = (labels: Labels): SeriesKey => {
    let series = cache.get(labels);
    if (series === undefined) {
      const reduced = reduce(labels);
      series = { key: labelsKey(reduced), labels: reduced };
      cache.set(labels, series);
    }
    return series;
  };
  if (grouping === undefined || grouping.without || expr.op === "absent_over_time") return byLabels;
  // A `by` grouping: a parser makes a new labels record per line, so the group is found from the grouped values
  // alone (length-prefixed, an absent label apart from an empty one) rather than by reducing each record.
  const names = [...new Set(grouping.labels)];
  const groups = new Map<string, SeriesKey>();
  return (labels) => {
    if (hasError(labels)) return byLabels(labels);
    let values = "";
    for (const name of names) {
      const value = labels[name];
      values += value === undefined ? "-" : `${value.length}:${value}`;
    }
    let series = groups.get(values);
    if (series === undefined) {
      series = byLabels(labels);
      groups.set(values, series);
    }
    return series;
  };
}

/**
 * One series' points in the current window, column-wise; the points before `from` have left the window and are
 * dropped from the arrays in batches.
 */
interface Window extends WindowColumns {
  labels: Labels;
  ts: bigint[];
  values: number[];
}

/** Moves each window's start past the points at or before its open start, and drops the series left empty; returns how many points left. */
function evict(windows: Map<string, Window>, startNs: bigint): number {
  let dropped = 0;
  for (const [key, window] of windows) {
    const from = window.from;
    while (window.from < window.to && window.ts[window.from]! <= startNs) window.from++;
    dropped += window.from - from;
    if (window.from === window.to) windows.delete(key);
    else if (window.from >= 1024 && window.from * 2 >= window.to) {
      window.ts.splice(0, window.from);
      window.values.splice(0, window.from);
      window.to -= window.from;
      window.from = 0;
    }
  }
  return dropped;
}

/**
 * The range operations whose sum over series equals the operation over the series' rows merged, so that an outer
 * `sum <grouping>` can group the rows before the windows (Loki's canInjectVectorGrouping).
 */
const SUMMABLE_RANGE_OPS = new Set(["count_over_time", "rate", "bytes_over_time", "bytes_rate", "sum_over_time"]);

/**
 * The grouping an outer vector aggregation lends to the range aggregation under it, as Loki injects it: with
 * `sum`, over a range aggregation without its own grouping whose values add up across series. Windows then
 * hold one series per group instead of one per distinct label set, which a parser makes per line.
 */
export function injectedGrouping(
  vectorOp: string,
  grouping: Grouping | undefined,
  inner: RangeAggregationExpr,
): Grouping | undefined {
  if (vectorOp !== "sum" || inner.grouping !== undefined || !SUMMABLE_RANGE_OPS.has(inner.op)) return undefined;
  return grouping ?? { without: false, labels: [] };
}

/**
 * The vector of a range aggregation at each step of the timeline; its series grouped by `grouping`, the
 * expression's own unless an outer sum injects one (injectedGrouping); its windows hold at most `maxSamples` points.
 */
export async function* rangeAggregationSteps(
  expr: RangeAggregationExpr,
  timeline: Timeline,
  source: EngineSource,
  signal?: AbortSignal,
  grouping: Grouping | undefined = expr.grouping,
  maxSamples?: number,
): AsyncGenerator<Step> {
  validateRangeAggregation(expr);
  const { rangeNs, offsetNs } = expr.range;
  const fn = rangeFunction(expr.op, rangeNs, expr.range.unwrap !== undefined, expr.param);
  const keyOf = seriesKeyer(expr, grouping);
  const valueOf = rowValuer(expr);
  const absent = expr.op === "absent_over_time" ? absentLabels(expr.range.log.matchers) : undefined;
  // One read covers every window: from the first window's start to just past the last window's end.
  const cursor = new RowCursor(
    rowsOf(expr, source, timeline.startNs - offsetNs - rangeNs, timeline.endNs - offsetNs + 1n, grouping),
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
      for (
        let row = cursor.buffered() ?? (await cursor.peek());
        row !== undefined && row.tsNs <= windowEnd;
        row = cursor.buffered() ?? (await cursor.peek())
      ) {
        cursor.skip();
        if (budget.due()) await budget.turn();
        // Windows only slide forward: a row older than one already read would silently miss its windows.
        if (previousNs !== undefined && row.tsNs < previousNs) {
          throw new Error(`the engine source returned rows out of time order (${row.tsNs} after ${previousNs})`);
        }
        previousNs = row.tsNs;
        if (row.tsNs <= windowStart) continue;
        const { key, labels } = keyOf(row.labels);
        const window = windows.get(key);
        if (window === undefined) windows.set(key, { labels, ts: [row.tsNs], values: [valueOf(row)], from: 0, to: 1 });
        else {
          window.ts.push(row.tsNs);
          window.values.push(valueOf(row));
          window.to++;
        }
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
        const window = windows.get(key)!;
        return { labels: window.labels, value: fn(window, windowEnd) };
      });
      yield { tsMs, vector };
    }
  } finally {
    await cursor.close();
  }
}
