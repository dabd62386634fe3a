import {
  type LabelMatcher,
  RESOLUTION_MS,
  type Resolution,
  type RollupSliceSeries,
  type SampleProbeSeries,
  type Store,
} from "../../../storage/store.js";
import { compareLabels, type Labels, labelsKey } from "../../../proto/labels.js";
import { dropName, type Sample } from "../evaluation/values.js";
import { firstAtOrAfter, gcd } from "./slice-math.js";

// Answers `f(selector[range])` from the aggregator's rollups instead of raw samples, for the functions and query
// shapes where the answer is provably the one raw samples give; otherwise the engine reads raw samples.
//
// A window is left-open, (ref - range, ref]; a rollup bucket is [b, b + width). With range and every ref a
// multiple of the width, the window is the buckets [ref - range, ref), minus the samples exactly at ref - range
// (the first bucket's left edge), plus those exactly at ref (the left edge of the bucket after). The store's
// probe returns those edge samples, so:
//
// - count_over_time: the buckets' counts minus the left edge's samples plus the right edge's: exact.
// - sum_over_time, avg_over_time: likewise with sums, exact only when every value is an integer of magnitude
//   below 2^26 (the probe counts the others): such sums are exact in any order, while Prometheus' Kahan sum of
//   other floats in time order can differ in the last bits from a sum of partial sums.
// - min_over_time, max_over_time: the first bucket counts without its left-edge samples when they do not hold
//   its extreme (or are all of it); when they do, the extreme of the rest is unknown and raw samples answer.
// - A NaN sample is left out of rollups (aggregator/rollup.ts) but is a value to Prometheus: raw samples answer.
//
// Not answered from rollups, because buckets lose what they need: rate, increase, delta (extrapolation needs
// the first and last sample's times in the window; a bucket's increase also counts from the sample before the
// window), irate, idelta, last_over_time (a bucket's last value by time is ambiguous between equal timestamps),
// stddev, stdvar and quantile_over_time; selectors inside subqueries (steps of their own); and any shape whose
// range or evaluation times are not multiples of a bucket width.

export const ROLLUP_FUNCTIONS = new Set([
  "count_over_time",
  "sum_over_time",
  "avg_over_time",
  "min_over_time",
  "max_over_time",
]);

const SUM_FUNCTIONS = new Set(["sum_over_time", "avg_over_time"]);

/** Coarsest first: fewer buckets to read. */
const RESOLUTIONS: Resolution[] = ["1h", "1m"];

/** The coarsest rollup resolution whose width divides the range and every evaluation time. */
export function alignedResolution(rangeMs: number, refs: number[]): Resolution | undefined {
  return RESOLUTIONS.find((r) => rangeMs % RESOLUTION_MS[r] === 0 && refs.every((ref) => ref % RESOLUTION_MS[r] === 0));
}

export type RollupAnswer =
  { source: `rollup_${Resolution}`; steps: Map<number, Sample[]>; rows: number } | { source: "raw"; reason: string };

interface Edge {
  count: number;
  sum: number;
  min: number;
  max: number;
}

function edgesOf(probe: SampleProbeSeries | undefined): Map<number, Edge> {
  const edges = new Map<number, Edge>();
  for (const { timeMs, value } of probe?.boundary ?? []) {
    const edge = edges.get(timeMs);
    if (edge === undefined) edges.set(timeMs, { count: 1, sum: value, min: value, max: value });
    else {
      edge.count++;
      edge.sum += value;
      edge.min = Math.min(edge.min, value);
      edge.max = Math.max(edge.max, value);
    }
  }
  return edges;
}

/**
 * `func(selector[rangeMs])` at each evaluation time t of `refs` (the selector's reference time for that step,
 * after `offset` and `@`), from rollups when that is exact, as the engine's vector for each step; or the reason
 * raw samples must answer. The store merges the buckets per slice, the greatest width that divides the range
 * and the distance between any two steps' refs, so that every window's buckets are whole slices.
 */
export async function answerFromRollups(
  store: Store,
  tenant: string,
  query: { func: string; matchers: LabelMatcher[]; rangeMs: number; steps: { t: number; ref: number }[] },
): Promise<RollupAnswer> {
  if (store.probeSamples === undefined || store.selectRollupSlices === undefined)
    return { source: "raw", reason: "store without rollup probe" };
  const refs = query.steps.map((s) => s.ref);
  const resolution = alignedResolution(query.rangeMs, refs);
  if (resolution === undefined)
    return { source: "raw", reason: "range or evaluation times not multiples of a rollup bucket" };
  const firstRef = Math.min(...refs);
  const lastRef = Math.max(...refs);
  const baseMs = firstRef - query.rangeMs;
  let widthMs = query.rangeMs;
  for (const ref of refs) widthMs = gcd(widthMs, ref - firstRef);
  const [probes, rollups] = await Promise.all([
    store.probeSamples({
      tenant,
      matchers: query.matchers,
      startMs: baseMs,
      endMs: lastRef + 1,
      alignMs: RESOLUTION_MS[resolution],
      sums: SUM_FUNCTIONS.has(query.func),
    }),
    store.selectRollupSlices({
      tenant,
      matchers: query.matchers,
      resolution,
      baseMs,
      widthMs,
      slices: (lastRef - baseMs) / widthMs,
    }),
  ]);
  if (probes.some((p) => p.nan > 0)) return { source: "raw", reason: "NaN samples" };
  if (SUM_FUNCTIONS.has(query.func) && probes.some((p) => p.inexact > 0))
    return { source: "raw", reason: "sums of non-integer samples" };

  const probeByKey = new Map(probes.map((p) => [labelsKey(p.labels), p]));
  const series = new Map<string, { labels: Labels; slices: RollupSliceSeries | undefined; edges: Map<number, Edge> }>();
  for (const r of rollups) {
    const key = labelsKey(r.labels);
    series.set(key, { labels: r.labels, slices: r, edges: edgesOf(probeByKey.get(key)) });
  }
  // A sample exactly at the newest ref lies in a bucket not read; its series may have no bucket read at all.
  for (const p of probes) {
    const key = labelsKey(p.labels);
    if (!series.has(key) && p.boundary.length > 0)
      series.set(key, { labels: p.labels, slices: undefined, edges: edgesOf(p) });
  }
  const ordered = [...series.values()]
    .sort((a, b) => compareLabels(a.labels, b.labels))
    .map((one) => ({ ...one, nameless: dropName(one.labels) }));

  const steps = new Map<number, Sample[]>();
  let rows = probes.reduce((n, p) => n + p.boundary.length, 0);
  for (const one of ordered) rows += one.slices?.slice.length ?? 0;
  for (const { t, ref } of query.steps) {
    const vector: Sample[] = [];
    const from = ref - query.rangeMs;
    const slices = { from: (from - baseMs) / widthMs, to: (ref - baseMs) / widthMs };
    for (const one of ordered) {
      const value = windowValue(query.func, one.slices, slices, one.edges.get(from), one.edges.get(ref));
      if (value === "unknown") return { source: "raw", reason: "extreme on a bucket edge" };
      if (value !== undefined) vector.push({ labels: one.nameless, value });
    }
    steps.set(t, vector);
  }
  return { source: `rollup_${resolution}`, steps, rows };
}

/**
 * The function over the window (from, to], whose buckets are the slices numbered [from, to) and whose edge
 * samples are left and right; undefined when it holds no sample.
 */
function windowValue(
  func: string,
  one: RollupSliceSeries | undefined,
  slices: { from: number; to: number },
  left: Edge | undefined,
  right: Edge | undefined,
): number | undefined | "unknown" {
  let count = (right?.count ?? 0) - (left?.count ?? 0);
  let sum = (right?.sum ?? 0) - (left?.sum ?? 0);
  const isMax = func === "max_over_time";
  let extreme: number | undefined = right === undefined ? undefined : isMax ? right.max : right.min;
  const consider = (value: number) => {
    if (extreme === undefined || (isMax ? value > extreme : value < extreme)) extreme = value;
  };
  const length = one?.slice.length ?? 0;
  for (let i = one === undefined ? 0 : firstAtOrAfter(one.slice, slices.from); i < length; i++) {
    const k = one!.slice[i]!;
    if (k >= slices.to) break;
    count += one!.count[i]!;
    sum += one!.sum[i]!;
    const headCount = one!.headCount[i]!;
    const headExtreme = isMax ? one!.headMax[i]! : one!.headMin[i]!;
    if (headCount > 0) {
      // The head bucket of the window's first slice starts at its left edge: without the edge's samples it is
      // all of the bucket, or not its extreme, or not knowable.
      if (k === slices.from && left !== undefined && (isMax || func === "min_over_time")) {
        if (headCount !== left.count) {
          if (headExtreme === (isMax ? left.max : left.min)) return "unknown";
          consider(headExtreme);
        }
      } else consider(headExtreme);
    }
    if (one!.count[i]! > headCount) consider(isMax ? one!.restMax[i]! : one!.restMin[i]!);
  }
  if (count === 0) return undefined;
  switch (func) {
    case "count_over_time":
      return count;
    case "sum_over_time":
      return sum;
    case "avg_over_time":
      return sum / count;
    default:
      return extreme;
  }
}
