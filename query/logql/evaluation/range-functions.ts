import { durationSeconds } from "../../../common/go/duration-format.js";
import { quantile } from "../../vector/aggregate.js";
import type { RangeOp } from "../../../common/logql/syntax/ast.js";

// The value of a range aggregation over the samples of one series inside one window, as Loki's range_vector.go
// computes it. Floating-point steps follow Loki's order of operations so that results agree to the last bit.

/**
 * One series' samples in a window, column-wise: `ts[i]` and `values[i]` for i in [from, to), in time order and
 * never empty. Windows slide over the same arrays, so that no object is made per sample.
 */
export interface WindowColumns {
  ts: readonly bigint[];
  values: readonly number[];
  from: number;
  to: number;
}

/** `windowEndNs` is the window's inclusive end. */
export type RangeFunction = (window: WindowColumns, windowEndNs: bigint) => number;

function sum({ values, from, to }: WindowColumns): number {
  let total = 0;
  for (let i = from; i < to; i++) total += values[i]!;
  return total;
}

function averageOverTime({ values, from, to }: WindowColumns): number {
  let mean = 0;
  let count = 0;
  for (let i = from; i < to; i++) {
    const value = values[i]!;
    count++;
    if (!Number.isFinite(mean) && !Number.isNaN(mean)) {
      if (!Number.isFinite(value) && !Number.isNaN(value) && mean > 0 === value > 0) continue;
      if (Number.isFinite(value)) continue;
    }
    mean += value / count - mean / count;
  }
  return mean;
}

function varianceOverTime({ values, from, to }: WindowColumns): number {
  let aux = 0;
  let count = 0;
  let mean = 0;
  for (let i = from; i < to; i++) {
    const value = values[i]!;
    count++;
    const delta = value - mean;
    mean += delta / count;
    aux += delta * (value - mean);
  }
  return aux / count;
}

/** The largest (or smallest) value; NaN only when every value is NaN, as Prometheus' max_over_time. */
function extremeOverTime({ values, from, to }: WindowColumns, better: (candidate: number, best: number) => boolean) {
  let best = values[from]!;
  for (let i = from; i < to; i++) if (better(values[i]!, best) || Number.isNaN(best)) best = values[i]!;
  return best;
}

/**
 * Prometheus' extrapolated counter rate as Loki adapts it: the window's bounds come from the query rather than
 * from the samples, a drop in value counts as a counter reset, and the result is per second of the range.
 */
export function counterRate(window: WindowColumns, rangeNs: bigint, windowEndNs: bigint): number {
  const { ts, values, from, to } = window;
  const count = to - from;
  if (count < 2) return 0;
  const firstValue = values[from]!;
  const windowStartNs = windowEndNs - rangeNs;

  let result = values[to - 1]! - firstValue;
  let previous = 0;
  for (let i = from; i < to; i++) {
    const value = values[i]!;
    if (value < previous) result += previous;
    previous = value;
  }

  let toStart = Number(ts[from]! - windowStartNs) / 1e9;
  let toEnd = Number(windowEndNs - ts[to - 1]!) / 1e9;
  const sampled = Number(ts[to - 1]! - ts[from]!) / 1e9;
  const averageGap = sampled / (count - 1);
  const threshold = averageGap * 1.1;
  if (toStart >= threshold) toStart = averageGap / 2;
  // A counter cannot go below zero: extrapolate no further back than where the slope reaches zero.
  let toZero = toStart;
  if (result > 0 && firstValue >= 0) toZero = sampled * (firstValue / result);
  if (toZero < toStart) toStart = toZero;
  if (toEnd >= threshold) toEnd = averageGap / 2;

  const extrapolated = sampled + toStart + toEnd;
  return (result * (extrapolated / sampled)) / durationSeconds(rangeNs);
}

/**
 * The function of a range aggregation. Without unwrap the sample values are 1 per line (count, rate, absent) or
 * the line's size in bytes (bytes_over_time, bytes_rate).
 */
export function rangeFunction(op: RangeOp, rangeNs: bigint, unwrapped: boolean, param?: number): RangeFunction {
  const seconds = durationSeconds(rangeNs);
  switch (op) {
    case "count_over_time":
      return (window) => window.to - window.from;
    case "rate":
      return unwrapped ? (window) => sum(window) / seconds : (window) => (window.to - window.from) / seconds;
    case "bytes_rate":
      return (window) => sum(window) / seconds;
    case "bytes_over_time":
    case "sum_over_time":
      return sum;
    case "avg_over_time":
      return averageOverTime;
    case "max_over_time":
      return (window) => extremeOverTime(window, (candidate, best) => candidate > best);
    case "min_over_time":
      return (window) => extremeOverTime(window, (candidate, best) => candidate < best);
    case "stdvar_over_time":
      return varianceOverTime;
    case "stddev_over_time":
      return (window) => Math.sqrt(varianceOverTime(window));
    case "quantile_over_time":
      return (window) => quantile(param ?? NaN, window.values.slice(window.from, window.to));
    case "first_over_time":
      return (window) => window.values[window.from]!;
    case "last_over_time":
      return (window) => window.values[window.to - 1]!;
    case "rate_counter":
      return (window, windowEndNs) => counterRate(window, rangeNs, windowEndNs);
    case "absent_over_time":
      return () => 1;
  }
}
