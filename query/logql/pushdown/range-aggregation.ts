import type { Store } from "../../../storage/store.js";
import { labelsKey } from "../../../proto/labels.js";
import type { Grouping, RangeAggregationExpr } from "../../../common/logql/syntax/ast.js";
import type { Step, Timeline } from "../evaluation/source.js";
import { pushableLineFilters } from "./line-filters.js";

// Range aggregations that the Store can answer from counts: count_over_time, rate, bytes_over_time and bytes_rate
// over a selector with line filters only. The Store counts entries and bytes per stream in buckets of
// g = gcd(step, range); each step's window (t - offset - range, t - offset] is the sum of range/g buckets.
// The buckets start one nanosecond after a window's open end so that [a, b) buckets tile (a - 1, b - 1] windows.
// `sum by (labels)` over such an aggregation is counted per group by the Store, so that one row per group and
// bucket leaves it instead of one per stream and bucket.
//
// These counts are not read from the per-minute log volume rollup (log_volume_1m): a window (t - range, t] cuts
// the minute buckets at entries exactly on a minute edge, and the rollup has no structured metadata, by which
// count_over_time splits a stream's series; proving neither occurs needs a scan of the logs table over the range,
// the same scan this pushdown's SQL does to count, so the rollup would save nothing while adding a way to differ.

/** What a query read from the Store, for the `stats` of its answer. */
export interface ProcessedStats {
  lines: number;
  /** Bytes of the lines and of their structured metadata (names and values), as Loki counts totalBytesProcessed. */
  bytes: number;
  structuredMetadataBytes: number;
}

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

/**
 * Whether pushRangeAggregation can answer `sum <grouping> (expr)`: `by` or no grouping (a `without` group's
 * labels depend on every series' labels), and no `_extracted` label, which only a name clash creates.
 */
export function canPushSum(expr: RangeAggregationExpr, grouping: Grouping | undefined, timeline: Timeline): boolean {
  if (grouping !== undefined && (grouping.without || grouping.labels.some((name) => name.endsWith("_extracted"))))
    return false;
  return canPush(expr, timeline);
}

function bucketOf(expr: RangeAggregationExpr, timeline: Timeline): bigint {
  return timeline.startNs === timeline.endNs ? expr.range.rangeNs : gcd(timeline.stepNs, expr.range.rangeNs);
}

/**
 * The steps of a pushable range aggregation (see canPush), as the streaming engine would produce them; with
 * `sum`, those of its sum by `sum.grouping` (see canPushSum). A summed rate is the group's count over the range,
 * which may differ in the last bits from the sum of its series' rates.
 */
export async function pushRangeAggregation(
  store: Store,
  tenant: string,
  expr: RangeAggregationExpr,
  timeline: Timeline,
  sum?: { grouping: Grouping | undefined },
  processed?: ProcessedStats,
): Promise<Step[]> {
  const { rangeNs, offsetNs } = expr.range;
  const bucketNs = bucketOf(expr, timeline);
  const firstBucketNs = timeline.startNs - offsetNs - rangeNs + 1n;
  const bytes = expr.op === "bytes_over_time" || expr.op === "bytes_rate";
  const counts = await store.countLogs({
    tenant,
    matchers: expr.range.log.matchers,
    lineFilters: pushableLineFilters(expr.range.log.pipeline).pushed,
    startNs: firstBucketNs,
    endNs: timeline.endNs - offsetNs + 1n,
    stepNs: bucketNs,
    bytes,
    ...(sum === undefined ? { byMetadata: true } : { groupBy: [...new Set(sum.grouping?.labels ?? [])] }),
  });
  if (processed !== undefined) {
    // The Store counted these entries without returning them; their bytes are known when it summed them.
    for (const s of counts)
      for (const point of s.points) {
        processed.lines += point.count;
        processed.bytes += point.bytes;
      }
  }
  const perSecond = expr.op === "rate" || expr.op === "bytes_rate";
  const rangeSeconds = Number(rangeNs) / 1e9;
  const bucketsPerWindow = rangeNs / bucketNs;
  const series = counts
    .map((s) => {
      const byBucket = new Map<bigint, number>();
      for (const point of s.points)
        byBucket.set((point.startNs - firstBucketNs) / bucketNs, bytes ? point.bytes : point.count);
      return { key: labelsKey(s.labels), labels: s.labels, byBucket };
    })
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const steps: Step[] = [];
  for (
    let t = timeline.startNs, first = 0n;
    t <= timeline.endNs;
    t += timeline.stepNs, first += timeline.stepNs / bucketNs
  ) {
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
