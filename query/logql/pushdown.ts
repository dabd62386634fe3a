import type { LogCountSeries, Store } from "../../storage/store.js";
import type { RangeAggregationExpr } from "./ast.js";
import { pushableLineFilters } from "./store-source.js";

// Range aggregations that the Store can answer from counts: count_over_time, rate, bytes_over_time and bytes_rate
// over a selector with line filters only. The Store counts entries and bytes per stream in buckets of
// g = gcd(step, range); each step's window (t - offset - range, t - offset] is the sum of range/g buckets.
// The buckets start one nanosecond after a window's open end so that [a, b) buckets tile (a - 1, b - 1] windows.

const PUSHABLE = new Set(["count_over_time", "rate", "bytes_over_time", "bytes_rate"]);

/** More buckets than this per stream are not worth the SQL; the streaming engine does it instead. */
const MAX_BUCKETS = 200_000n;

export interface StepGrid {
  /** The first and last evaluation times; equal for an instant query. */
  firstNs: bigint;
  lastNs: bigint;
  stepNs: bigint;
}

export interface PushedSeries {
  labels: LogCountSeries["labels"];
  /** [evaluation time in ms, value], only for steps whose window holds entries, as Loki emits them. */
  points: [number, number][];
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Whether pushRangeAggregation can answer `expr`. */
export function canPush(expr: RangeAggregationExpr, grid: StepGrid): boolean {
  if (!PUSHABLE.has(expr.op) || expr.range.unwrap !== undefined || expr.grouping !== undefined) return false;
  if (pushableLineFilters(expr.range.log.pipeline).rest.length > 0) return false;
  const bucket = grid.firstNs === grid.lastNs ? expr.range.rangeNs : gcd(grid.stepNs, expr.range.rangeNs);
  return bucket > 0n && (grid.lastNs - grid.firstNs + expr.range.rangeNs) / bucket <= MAX_BUCKETS;
}

export async function pushRangeAggregation(
  store: Store,
  tenant: string,
  expr: RangeAggregationExpr,
  grid: StepGrid,
): Promise<PushedSeries[]> {
  const { rangeNs, offsetNs } = expr.range;
  const instant = grid.firstNs === grid.lastNs;
  const bucketNs = instant ? rangeNs : gcd(grid.stepNs, rangeNs);
  const firstBucketNs = grid.firstNs - offsetNs - rangeNs + 1n;
  const counts = await store.countLogs({
    tenant,
    matchers: expr.range.log.matchers,
    lineFilters: pushableLineFilters(expr.range.log.pipeline).pushed,
    startNs: firstBucketNs,
    endNs: grid.lastNs - offsetNs + 1n,
    stepNs: bucketNs,
    byMetadata: true,
  });
  const bytes = expr.op === "bytes_over_time" || expr.op === "bytes_rate";
  const perSecond = expr.op === "rate" || expr.op === "bytes_rate";
  const rangeSeconds = Number(rangeNs) / 1e9;
  const bucketsPerWindow = rangeNs / bucketNs;
  const stepBuckets = instant ? 0n : grid.stepNs / bucketNs;
  const out: PushedSeries[] = [];
  for (const series of counts) {
    const byBucket = new Map<bigint, number>();
    for (const point of series.points) byBucket.set((point.startNs - firstBucketNs) / bucketNs, bytes ? point.bytes : point.count);
    const points: [number, number][] = [];
    for (let t = grid.firstNs, first = 0n; t <= grid.lastNs; t += instant ? 1n : grid.stepNs, first += stepBuckets) {
      let total = 0;
      let seen = false;
      for (let k = first; k < first + bucketsPerWindow; k++) {
        const value = byBucket.get(k);
        if (value !== undefined) {
          total += value;
          seen = true;
        }
      }
      if (seen) points.push([Number(t / 1_000_000n), perSecond ? total / rangeSeconds : total]);
      if (instant) break;
    }
    if (points.length > 0) out.push({ labels: series.labels, points });
  }
  return out;
}
