import type { Store } from "../../storage/store.js";
import { labelsKey } from "../engine/labels.js";
import type { RangeAggregationExpr } from "./ast.js";
import type { Step, Timeline } from "./range-vector.js";
import { pushableLineFilters } from "./store-source.js";

// Range aggregations that the Store can answer from counts: count_over_time, rate, bytes_over_time and bytes_rate
// over a selector with line filters only. The Store counts entries and bytes per stream in buckets of
// g = gcd(step, range); each step's window (t - offset - range, t - offset] is the sum of range/g buckets.
// The buckets start one nanosecond after a window's open end so that [a, b) buckets tile (a - 1, b - 1] windows.

const PUSHABLE = new Set(["count_over_time", "rate", "bytes_over_time", "bytes_rate"]);

/** More buckets than this per stream are not worth the SQL; the streaming engine does it instead. */
const MAX_BUCKETS = 200_000n;

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Whether pushRangeAggregation can answer `expr`. */
export function canPush(expr: RangeAggregationExpr, timeline: Timeline): boolean {
  if (!PUSHABLE.has(expr.op) || expr.range.unwrap !== undefined || expr.grouping !== undefined) return false;
  if (pushableLineFilters(expr.range.log.pipeline).rest.length > 0) return false;
  const bucket = bucketOf(expr, timeline);
  return bucket > 0n && (timeline.endNs - timeline.startNs + expr.range.rangeNs) / bucket <= MAX_BUCKETS;
}

function bucketOf(expr: RangeAggregationExpr, timeline: Timeline): bigint {
  return timeline.startNs === timeline.endNs ? expr.range.rangeNs : gcd(timeline.stepNs, expr.range.rangeNs);
}

/** The steps of a pushable range aggregation (see canPush), as the streaming engine would produce them. */
export async function pushRangeAggregation(
  store: Store,
  tenant: string,
  expr: RangeAggregationExpr,
  timeline: Timeline,
): Promise<Step[]> {
  const { rangeNs, offsetNs } = expr.range;
  const bucketNs = bucketOf(expr, timeline);
  const firstBucketNs = timeline.startNs - offsetNs - rangeNs + 1n;
  const counts = await store.countLogs({
    tenant,
    matchers: expr.range.log.matchers,
    lineFilters: pushableLineFilters(expr.range.log.pipeline).pushed,
    startNs: firstBucketNs,
    endNs: timeline.endNs - offsetNs + 1n,
    stepNs: bucketNs,
    byMetadata: true,
  });
  const bytes = expr.op === "bytes_over_time" || expr.op === "bytes_rate";
  const perSecond = expr.op === "rate" || expr.op === "bytes_rate";
  const rangeSeconds = Number(rangeNs) / 1e9;
  const bucketsPerWindow = rangeNs / bucketNs;
  const series = counts
    .map((s) => {
      const byBucket = new Map<bigint, number>();
      for (const point of s.points) byBucket.set((point.startNs - firstBucketNs) / bucketNs, bytes ? point.bytes : point.count);
      return { key: labelsKey(s.labels), labels: s.labels, byBucket };
    })
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const steps: Step[] = [];
  for (let t = timeline.startNs, first = 0n; t <= timeline.endNs; t += timeline.stepNs, first += timeline.stepNs / bucketNs) {
    const windowEnd = t - offsetNs;
    // The same millisecond truncation as the streaming engine (range-vector.ts).
    const tsMs = Number(windowEnd / 1_000_000n) + Number(offsetNs / 1_000_000n);
    const vector: Step["vector"] = [];
    for (const { labels, byBucket } of series) {
      let total = 0;
      let seen = false;
      for (let k = first; k < first + bucketsPerWindow; k++) {
        const value = byBucket.get(k);
        if (value !== undefined) {
          total += value;
          seen = true;
        }
      }
      if (seen) vector.push({ labels, value: perSecond ? total / rangeSeconds : total });
    }
    steps.push({ tsMs, vector });
  }
  return steps;
}
