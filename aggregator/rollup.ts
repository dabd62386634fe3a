import { type Series, SampleKind } from "../proto/batch.js";
import { RESOLUTION_MS, type Resolution, type RollupPartial } from "../storage/store.js";

/** The sample a series had before a batch: what its first counter increase is measured from. */
export interface PreviousSample {
  timeMs: number;
  value: number;
}

const COUNTER_KINDS = new Set([
  SampleKind.Counter,
  SampleKind.HistogramBucket,
  SampleKind.HistogramCount,
  SampleKind.HistogramSum,
]);

/**
 * One series' samples of one batch, rolled up into partial aggregates per bucket. Partials of the same
 * bucket from other batches merge in the store by min, max, sum and argMax(last); `increase` sums, because
 * each sample's increase is measured against the sample before it, here or (for the first) `previous`, the
 * series' last sample of an earlier batch. A counter that goes down was reset and counts from zero, as in
 * Prometheus. A sample no newer than the one before it (late or repeated) joins min, max, sum and count but
 * adds no increase. NaN samples (Prometheus staleness markers) are left out. Also returns the series' newest
 * sample, the `previous` of its next batch.
 */
export function rollupSeries(
  series: Series,
  resolution: Resolution,
  previous?: PreviousSample,
): { partials: RollupPartial[]; last: PreviousSample | undefined } {
  const width = RESOLUTION_MS[resolution];
  const counter = COUNTER_KINDS.has(series.kind);
  const points = series.points.filter((p) => !Number.isNaN(p.value)).sort((a, b) => a.timeUnixMs - b.timeUnixMs);
  const buckets = new Map<number, RollupPartial>();
  let prev = previous;
  for (const point of points) {
    const bucketStartMs = Math.floor(point.timeUnixMs / width) * width;
    let partial = buckets.get(bucketStartMs);
    if (partial === undefined) {
      partial = {
        name: series.name,
        labels: series.labels,
        kind: series.kind,
        resolution,
        bucketStartMs,
        min: point.value,
        max: point.value,
        sum: 0,
        count: 0,
        last: point.value,
        lastTimeMs: point.timeUnixMs,
        increase: 0,
      };
      buckets.set(bucketStartMs, partial);
    }
    partial.min = Math.min(partial.min, point.value);
    partial.max = Math.max(partial.max, point.value);
    partial.sum += point.value;
    partial.count += 1;
    if (point.timeUnixMs >= partial.lastTimeMs) {
      partial.last = point.value;
      partial.lastTimeMs = point.timeUnixMs;
    }
    if (prev === undefined || point.timeUnixMs > prev.timeMs) {
      if (counter && prev !== undefined)
        partial.increase += point.value >= prev.value ? point.value - prev.value : point.value;
      prev = { timeMs: point.timeUnixMs, value: point.value };
    }
  }
  return { partials: [...buckets.values()], last: prev };
}

const RESOLUTIONS: Resolution[] = ["1m", "1h"];

/**
 * Every series of a batch rolled up at both resolutions, each counter's first increase measured from the
 * sample the node sent before the batch (Series.previous): a pure function of the batch, so a worker thread
 * computes it without state and a replay or another aggregator computes the same partials.
 */
export function rollupBatch(series: Series[]): RollupPartial[] {
  return series.flatMap((s) => {
    const previous = s.previous ? { timeMs: s.previous.timeUnixMs, value: s.previous.value } : undefined;
    return RESOLUTIONS.flatMap((resolution) => rollupSeries(s, resolution, previous).partials);
  });
}
