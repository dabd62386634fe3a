import { extreme } from "../../../common/vector/arithmetic.js";
import { durationSeconds } from "../../../common/go/duration-format.js";
import { quantile } from "../../vector/aggregate.js";
import type { RangeOp } from "../../../common/logql/syntax/ast.js";

// The value of a range aggregation over the samples of one series inside one window, as Loki's range_vector.go
// computes it. Floating-point steps follow Loki's order of operations so that results agree to the last bit.

export interface Point {
  tsNs: bigint;
  value: number;
}

/** `points` are the window's samples in time order (never empty); `windowEndNs` is the window's inclusive end. */
export type RangeFunction = (points: readonly Point[], windowEndNs: bigint) => number;

function sum(points: readonly Point[]): number {
  let total = 0;
  for (const point of points) total += point.value;
  return total;
}

function averageOverTime(points: readonly Point[]): number {
  let mean = 0;
  let count = 0;
  for (const { value } of points) {
    count++;
    if (!Number.isFinite(mean) && !Number.isNaN(mean)) {
      if (!Number.isFinite(value) && !Number.isNaN(value) && mean > 0 === value > 0) continue;
      if (Number.isFinite(value)) continue;
    }
    mean += value / count - mean / count;
  }
  return mean;
}

function varianceOverTime(points: readonly Point[]): number {
  let aux = 0;
  let count = 0;
  let mean = 0;
  for (const { value } of points) {
    count++;
    const delta = value - mean;
    mean += delta / count;
    aux += delta * (value - mean);
  }
  return aux / count;
}

/**
 * Prometheus' extrapolated counter rate as Loki adapts it: the window's bounds come from the query rather than
 * from the samples, a drop in value counts as a counter reset, and the result is per second of the range.
 */
export function counterRate(points: readonly Point[], rangeNs: bigint, windowEndNs: bigint): number {
  if (points.length < 2) return 0;
  const first = points[0]!;
  const last = points[points.length - 1]!;
  const windowStartNs = windowEndNs - rangeNs;

  let result = last.value - first.value;
  let previous = 0;
  for (const { value } of points) {
    if (value < previous) result += previous;
    previous = value;
  }

  let toStart = Number(first.tsNs - windowStartNs) / 1e9;
  let toEnd = Number(windowEndNs - last.tsNs) / 1e9;
  const sampled = Number(last.tsNs - first.tsNs) / 1e9;
  const averageGap = sampled / (points.length - 1);
  const threshold = averageGap * 1.1;
  if (toStart >= threshold) toStart = averageGap / 2;
  // A counter cannot go below zero: extrapolate no further back than where the slope reaches zero.
  let toZero = toStart;
  if (result > 0 && first.value >= 0) toZero = sampled * (first.value / result);
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
      return (points) => points.length;
    case "rate":
      return unwrapped ? (points) => sum(points) / seconds : (points) => points.length / seconds;
    case "bytes_rate":
      return (points) => sum(points) / seconds;
    case "bytes_over_time":
    case "sum_over_time":
      return sum;
    case "avg_over_time":
      return averageOverTime;
    case "max_over_time":
      return (points) => extreme(points, (candidate, best) => candidate > best);
    case "min_over_time":
      return (points) => extreme(points, (candidate, best) => candidate < best);
    case "stdvar_over_time":
      return varianceOverTime;
    case "stddev_over_time":
      return (points) => Math.sqrt(varianceOverTime(points));
    case "quantile_over_time":
      return (points) =>
        quantile(
          param ?? NaN,
          points.map((point) => point.value),
        );
    case "first_over_time":
      return (points) => points[0]!.value;
    case "last_over_time":
      return (points) => points[points.length - 1]!.value;
    case "rate_counter":
      return (points, windowEndNs) => counterRate(points, rangeNs, windowEndNs);
    case "absent_over_time":
      return () => 1;
  }
}
