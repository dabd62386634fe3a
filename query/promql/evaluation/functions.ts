import { extreme } from "../../../common/vector/arithmetic.js";
import { quantile } from "../../vector/aggregate.js";
import type { Point, Sample } from "./values.js";
import { dropLabels, labelsKey, METRIC_NAME, type Labels } from "../../../proto/labels.js";

// The numeric side of PromQL functions, as Prometheus 3 computes them (promql/functions.go, quantile.go): Kahan
// summation where Prometheus uses it, the same extrapolation and the same histogram bucket interpolation, so that
// results agree to the last bits or close to it.

/** The selection window of a range function at one step (Prometheus' rangeStart and rangeEnd, ms). */
export interface Window {
  startMs: number;
  endMs: number;
  rangeMs: number;
}

export const RANGE_FUNCTIONS = new Set([
  "rate",
  "irate",
  "increase",
  "delta",
  "idelta",
  "avg_over_time",
  "sum_over_time",
  "min_over_time",
  "max_over_time",
  "count_over_time",
  "last_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "present_over_time",
  "quantile_over_time",
]);

/**
 * A range function of one series' points [from, to) in the window, read in place rather than copied out per
 * step; undefined drops the series at this step.
 */
export function rangeFunction(
  name: string,
  points: Point[],
  from: number,
  to: number,
  window: Window,
  param: number,
): number | undefined {
  if (to <= from) return undefined;
  switch (name) {
    case "rate":
      return extrapolatedRate(points, from, to, window, true, true);
    case "increase":
      return extrapolatedRate(points, from, to, window, true, false);
    case "delta":
      return extrapolatedRate(points, from, to, window, false, false);
    case "irate":
      return instantValue(points, from, to, true);
    case "idelta":
      return instantValue(points, from, to, false);
    case "avg_over_time":
      return average(points, from, to);
    case "sum_over_time":
      return sum(points, from, to);
    case "min_over_time":
      return extreme(points, (cur, best) => cur < best, from, to);
    case "max_over_time":
      return extreme(points, (cur, best) => cur > best, from, to);
    case "count_over_time":
      return to - from;
    case "last_over_time":
      return points[to - 1]!.value;
    case "present_over_time":
      return 1;
    case "stddev_over_time":
      return Math.sqrt(variance(points, from, to));
    case "stdvar_over_time":
      return variance(points, from, to);
    case "quantile_over_time": {
      const values: number[] = new Array(to - from);
      for (let i = from; i < to; i++) values[i - from] = points[i]!.value;
      return quantile(param, values);
    }
    default:
      throw new Error(`${name} is not a range function`);
  }
}

function extrapolatedRate(
  points: Point[],
  from: number,
  to: number,
  window: Window,
  isCounter: boolean,
  isRate: boolean,
): number | undefined {
  const count = to - from;
  if (count < 2) return undefined;
  const first = points[from]!;
  const last = points[to - 1]!;
  let result = last.value - first.value;
  if (isCounter) {
    let previous = first.value;
    for (let i = from + 1; i < to; i++) {
      const value = points[i]!.value;
      if (value < previous) result += previous;
      previous = value;
    }
  }
  let durationToStart = (first.timeMs - window.startMs) / 1000;
  let durationToEnd = (window.endMs - last.timeMs) / 1000;
  const sampledInterval = (last.timeMs - first.timeMs) / 1000;
  const averageBetweenSamples = sampledInterval / (count - 1);
  // Extrapolate to a window edge only when a sample is where the regular spacing would put one; otherwise assume
  // the series starts or ends within the window, half an interval beyond its first or last sample.
  const threshold = averageBetweenSamples * 1.1;
  if (durationToStart >= threshold) durationToStart = averageBetweenSamples / 2;
  if (isCounter && result > 0 && first.value >= 0) {
    // A counter does not go below zero: extrapolate at most to where it would have been zero.
    const durationToZero = sampledInterval * (first.value / result);
    if (durationToZero < durationToStart) durationToStart = durationToZero;
  }
  if (durationToEnd >= threshold) durationToEnd = averageBetweenSamples / 2;
  let factor = (sampledInterval + durationToStart + durationToEnd) / sampledInterval;
  if (isRate) factor /= window.rangeMs / 1000;
  return result * factor;
}

function instantValue(points: Point[], from: number, to: number, isRate: boolean): number | undefined {
  if (to - from < 2) return undefined;
  const previous = points[to - 2]!;
  const last = points[to - 1]!;
  const intervalMs = last.timeMs - previous.timeMs;
  if (intervalMs === 0) return undefined;
  // After a counter reset the last value is the increase since the reset.
  const result = isRate && last.value < previous.value ? last.value : last.value - previous.value;
  return isRate ? result / (intervalMs / 1000) : result;
}

/** Kahan-Neumaier summation step (Prometheus kahanSumInc). */
function kahanSumInc(inc: number, sum: number, c: number): [number, number] {
  const t = sum + inc;
  if (!Number.isFinite(t) && !Number.isNaN(t)) return [t, 0];
  if (Math.abs(sum) >= Math.abs(inc)) return [t, c + (sum - t) + inc];
  return [t, c + (inc - t) + sum];
}

function sum(points: Point[], from: number, to: number): number {
  let total = 0;
  let c = 0;
  for (let i = from; i < to; i++) [total, c] = kahanSumInc(points[i]!.value, total, c);
  return Number.isFinite(total) || Number.isNaN(total) ? total + c : total;
}

function average(points: Point[], from: number, to: number): number {
  // A direct mean while the running sum stays finite, then an incremental one, as Prometheus does.
  let total = points[from]!.value;
  let count = 1;
  let mean = 0;
  let c = 0;
  let incremental = false;
  for (let i = from + 1; i < to; i++) {
    const value = points[i]!.value;
    count = i - from + 1;
    if (!incremental) {
      const [newSum, newC] = kahanSumInc(value, total, c);
      if (Number.isFinite(newSum) || Number.isNaN(newSum)) {
        total = newSum;
        c = newC;
        continue;
      }
      incremental = true;
      mean = total / (count - 1);
      c /= count - 1;
    }
    const q = (count - 1) / count;
    [mean, c] = kahanSumInc(value / count, q * mean, q * c);
  }
  return incremental ? mean + c : total / count + c / count;
}

function variance(points: Point[], from: number, to: number): number {
  let count = 0;
  let mean = 0;
  let cMean = 0;
  let aux = 0;
  let cAux = 0;
  for (let i = from; i < to; i++) {
    const value = points[i]!.value;
    count++;
    const delta = value - (mean + cMean);
    [mean, cMean] = kahanSumInc(delta / count, mean, cMean);
    [aux, cAux] = kahanSumInc(delta * (value - (mean + cMean)), aux, cAux);
  }
  return (aux + cAux) / count;
}

/** The instant functions of one value each; all drop the metric name. */
export const MATH_FUNCTIONS: Record<string, (value: number, args: number[]) => number> = {
  abs: Math.abs,
  ceil: Math.ceil,
  floor: Math.floor,
  sqrt: Math.sqrt,
  exp: Math.exp,
  ln: Math.log,
  log2: Math.log2,
  log10: Math.log10,
  // Ties round up; the inverse is multiplied as it has fewer floating point surprises (Prometheus funcRound).
  round: (value, [toNearest = 1]) => Math.floor(value * (1 / toNearest) + 0.5) / (1 / toNearest),
  clamp: (value, [min, max]) => Math.max(min!, Math.min(max!, value)),
  clamp_min: (value, [min]) => Math.max(min!, value),
  clamp_max: (value, [max]) => Math.min(max!, value),
};

const MIN_NORMAL = 2.2250738585072014e-308;

/** Prometheus util/almost.Equal. */
function almostEqual(a: number, b: number, epsilon: number): boolean {
  if (a === b) return true;
  const absSum = Math.abs(a) + Math.abs(b);
  const diff = Math.abs(a - b);
  if (a === 0 || b === 0 || absSum < MIN_NORMAL) return diff < epsilon * MIN_NORMAL;
  return diff / Math.min(absSum, Number.MAX_VALUE) < epsilon;
}

interface Bucket {
  upperBound: number;
  count: number;
}

/** Go's strconv.ParseFloat for an `le` label. */
function parseBound(text: string): number {
  const lower = text.toLowerCase().replace(/^\+/, "");
  if (lower === "inf" || lower === "infinity") return Infinity;
  if (lower === "-inf" || lower === "-infinity") return -Infinity;
  if (lower === "nan") return NaN;
  return /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text) || /^[-+]?0x[0-9a-f]+$/i.test(text) ? Number(text) : NaN;
}

/** The quantile of a classic histogram's cumulative buckets (Prometheus BucketQuantile). */
function bucketQuantile(q: number, input: Bucket[]): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = [...input].sort((a, b) => a.upperBound - b.upperBound);
  if (sorted[sorted.length - 1]!.upperBound !== Infinity) return NaN;
  const buckets: Bucket[] = [];
  for (const bucket of sorted) {
    const last = buckets[buckets.length - 1];
    if (last !== undefined && last.upperBound === bucket.upperBound) last.count += bucket.count;
    else buckets.push({ ...bucket });
  }
  // Ignore float noise between neighbours, then remove decreases: the counts must be cumulative.
  let previous = buckets[0]!.count;
  for (let i = 1; i < buckets.length; i++) {
    const current = buckets[i]!.count;
    if (current === previous) continue;
    if (almostEqual(previous, current, 1e-12) || current < previous) {
      buckets[i]!.count = previous;
      continue;
    }
    previous = current;
  }
  if (buckets.length < 2) return NaN;
  const observations = buckets[buckets.length - 1]!.count;
  if (observations === 0) return NaN;
  let rank = q * observations;
  let b = buckets.length - 1;
  for (let i = 0; i < buckets.length - 1; i++) {
    if (buckets[i]!.count >= rank) {
      b = i;
      break;
    }
  }
  if (b === buckets.length - 1) return buckets[buckets.length - 2]!.upperBound;
  if (b === 0 && buckets[0]!.upperBound <= 0) return buckets[0]!.upperBound;
  let bucketStart = 0;
  const bucketEnd = buckets[b]!.upperBound;
  let count = buckets[b]!.count;
  if (b > 0) {
    bucketStart = buckets[b - 1]!.upperBound;
    count -= buckets[b - 1]!.count;
    rank -= buckets[b - 1]!.count;
  }
  return bucketStart + (bucketEnd - bucketStart) * (rank / count);
}

/** histogram_quantile over classic `le` buckets: one result per label set without `le` and the name. */
export function histogramQuantile(q: number, samples: Sample[]): Sample[] {
  const groups = new Map<string, { labels: Labels; buckets: Bucket[] }>();
  for (const sample of samples) {
    const le = sample.labels["le"];
    if (le === undefined) continue;
    const upperBound = parseBound(le);
    if (Number.isNaN(upperBound)) continue;
    const labels = dropLabels(sample.labels, [METRIC_NAME, "le"]);
    const key = labelsKey(labels);
    let group = groups.get(key);
    if (group === undefined) groups.set(key, (group = { labels, buckets: [] }));
    group.buckets.push({ upperBound, count: sample.value });
  }
  return [...groups.values()].map(({ labels, buckets }) => ({ labels, value: bucketQuantile(q, buckets) }));
}
