import { type Series, SampleKind } from "../proto/batch.js";
import { RESOLUTION_MS, type Resolution, type RollupPartial } from "../storage/store.js";

/** The sample a series had before a batch: what its first counter increase is measured from. */
export interface PreviousSample {
  timeMs: number;
  value: number;
}

const COUNTER_KINDS = new Set([SampleKind.Counter, SampleKind.HistogramBucket, SampleKind.HistogramCount, SampleKind.HistogramSum]);

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
      if (counter && prev !== undefined) partial.increase += point.value >= prev.value ? point.value - prev.value : point.value;
      prev = { timeMs: point.timeUnixMs, value: point.value };
    }
  }
  return { partials: [...buckets.values()], last: prev };
}

/** Where a series' samples in one batch begin and end, for joining the batch to the series' earlier batches. */
export interface SeriesEdge {
  /** Stable across batches: the series' label text (with its name) under its tenant. */
  key: string;
  first: PreviousSample;
  last: PreviousSample;
  /** Indexes into the batch's partials of those that hold `first`, one per resolution; empty for gauges. */
  firstPartials: number[];
}

const RESOLUTIONS: Resolution[] = ["1m", "1h"];

/**
 * Every series of a batch rolled up at both resolutions as if the batch stood alone, with each counter's first
 * and last sample: a worker thread can do this without knowing earlier batches, and joinPrevious() then adds
 * the increase between the previous batch's last sample and this batch's first.
 */
export function rollupBatch(series: Series[], keyOf: (s: Series) => string): { partials: RollupPartial[]; edges: SeriesEdge[] } {
  const partials: RollupPartial[] = [];
  const edges: SeriesEdge[] = [];
  for (const s of series) {
    const points = s.points.filter((p) => !Number.isNaN(p.value));
    if (points.length === 0) continue;
    const earliest = points.reduce((a, b) => (b.timeUnixMs < a.timeUnixMs ? b : a));
    const firstPartials: number[] = [];
    let last: PreviousSample | undefined;
    for (const resolution of RESOLUTIONS) {
      const rolled = rollupSeries(s, resolution);
      last = rolled.last;
      const width = RESOLUTION_MS[resolution];
      const bucket = Math.floor(earliest.timeUnixMs / width) * width;
      if (COUNTER_KINDS.has(s.kind)) firstPartials.push(partials.length + rolled.partials.findIndex((p) => p.bucketStartMs === bucket));
      partials.push(...rolled.partials);
    }
    edges.push({ key: keyOf(s), first: { timeMs: earliest.timeUnixMs, value: earliest.value }, last: last!, firstPartials });
  }
  return { partials, edges };
}

/**
 * Adds to a batch's partials the counter increase from each series' previous sample (held in `previous`,
 * from earlier batches) to its first sample here, then records the batch's last samples. Afterwards the
 * partials equal rollupSeries() with the previous sample given, for batches that arrive in time order.
 */
export function joinPrevious(partials: RollupPartial[], edges: SeriesEdge[], previous: Map<string, PreviousSample>): void {
  for (const edge of edges) {
    const prev = previous.get(edge.key);
    if (prev !== undefined && edge.first.timeMs > prev.timeMs) {
      const gap = edge.first.value >= prev.value ? edge.first.value - prev.value : edge.first.value;
      for (const index of edge.firstPartials) partials[index]!.increase += gap;
    }
    if (prev === undefined || edge.last.timeMs > prev.timeMs) {
      previous.delete(edge.key);
      previous.set(edge.key, edge.last);
    }
  }
}
