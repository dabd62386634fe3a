import type { LabelMatcher, SampleSliceSeries, Store } from "../../../storage/store.js";
import { compareLabels } from "../../../proto/labels.js";
import { dropName, type Sample } from "../evaluation/values.js";
import { firstAtOrAfter, gcd } from "./slice-math.js";

// Answers `f(selector[range])` at every step from sums the store makes of raw samples, instead of reading each
// sample: one row per series and slice rather than per sample, and no point objects.
//
// Every step's window (ref - range, ref] is a union of whole slices (base + k * width, base + (k + 1) * width]
// when width divides the range and the distance between any two steps' refs: width is their greatest common
// divisor, base the first window's left edge. The store counts, sums and takes the minimum and maximum of each
// slice; a window's figure is then that of its slices:
//
// - count_over_time, present_over_time, min_over_time, max_over_time: exact, as long as no sample is NaN
//   (Prometheus's min and max skip NaN unless all are; staleness markers are NaN and left out of range vectors)
//   or negative zero (whose sign a minimum or a sum may keep or lose): the store counts those, and raw samples
//   answer when there are any.
// - sum_over_time, avg_over_time: exact when every value is also an integer of magnitude below 2^26, whose sums
//   are exact in any order, as Prometheus' Kahan sum in time order is (rollups.ts reasons the same way).

export const SLICE_FUNCTIONS = new Set([
  "count_over_time",
  "present_over_time",
  "sum_over_time",
  "avg_over_time",
  "min_over_time",
  "max_over_time",
]);

const SUM_FUNCTIONS = new Set(["sum_over_time", "avg_over_time"]);

/** What the store must figure per slice for each function, beside the count: no more. */
function figuresOf(func: string): ("sum" | "min" | "max")[] {
  if (SUM_FUNCTIONS.has(func)) return ["sum"];
  if (func === "min_over_time") return ["min"];
  if (func === "max_over_time") return ["max"];
  return [];
}

export type SliceAnswer = { steps: Map<number, Sample[]>; samples: number } | { reason: string };

/**
 * `func(selector[rangeMs])` at each step t of `steps` (with `ref`, the selector's reference time for that step
 * after `offset` and `@`) from the store's slices when that is exact, as the engine's vector for each step; or
 * the reason raw samples must answer.
 */
export async function answerFromSlices(
  store: Store,
  tenant: string,
  query: { func: string; matchers: LabelMatcher[]; rangeMs: number; steps: { t: number; ref: number }[] },
): Promise<SliceAnswer> {
  if (store.selectSampleSlices === undefined) return { reason: "store without sample slices" };
  if (query.steps.length === 0 || !(query.rangeMs > 0)) return { reason: "no window" };
  if (!Number.isInteger(query.rangeMs) || query.steps.some((s) => !Number.isInteger(s.ref)))
    return { reason: "times not whole milliseconds" };
  const firstRef = Math.min(...query.steps.map((s) => s.ref));
  const lastRef = Math.max(...query.steps.map((s) => s.ref));
  let widthMs = query.rangeMs;
  for (const { ref } of query.steps) widthMs = gcd(widthMs, ref - firstRef);
  const baseMs = firstRef - query.rangeMs;
  const found = await store.selectSampleSlices({
    tenant,
    matchers: query.matchers,
    baseMs,
    widthMs,
    slices: (lastRef - baseMs) / widthMs,
    figures: figuresOf(query.func),
  });
  if (found.some((s) => s.special > 0)) return { reason: "NaN or negative zero samples" };
  if (SUM_FUNCTIONS.has(query.func) && found.some((s) => s.inexact > 0))
    return { reason: "sums of non-integer samples" };
  const ordered = found
    .sort((a, b) => compareLabels(a.labels, b.labels))
    .map((one) => ({ one, nameless: dropName(one.labels) }));
  let samples = 0;
  for (const { one } of ordered) for (const count of one.count) samples += count;
  const steps = new Map<number, Sample[]>();
  for (const { t, ref } of query.steps) {
    const from = (ref - query.rangeMs - baseMs) / widthMs;
    const to = (ref - baseMs) / widthMs;
    const vector: Sample[] = [];
    for (const { one, nameless } of ordered) {
      const value = windowValue(query.func, one, from, to);
      if (value !== undefined) vector.push({ labels: nameless, value });
    }
    steps.set(t, vector);
  }
  return { steps, samples };
}

/** The function over the slices numbered [from, to); undefined when they hold no sample. */
function windowValue(func: string, one: SampleSliceSeries, from: number, to: number): number | undefined {
  let i = firstAtOrAfter(one.slice, from);
  if (i >= one.slice.length || one.slice[i]! >= to) return undefined;
  let count = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (; i < one.slice.length && one.slice[i]! < to; i++) {
    count += one.count[i]!;
    sum += one.sum[i]!;
    if (one.min[i]! < min) min = one.min[i]!;
    if (one.max[i]! > max) max = one.max[i]!;
  }
  switch (func) {
    case "count_over_time":
      return count;
    case "present_over_time":
      return 1;
    case "sum_over_time":
      return sum;
    case "avg_over_time":
      return sum / count;
    case "min_over_time":
      return min;
    default:
      return max;
  }
}
