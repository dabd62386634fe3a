import type { MetricMetadata, MetricType } from "../proto/batch.js";
import { fingerprint } from "./fingerprint.js";
import { type Labels, labelsOf, persistedLabelsText } from "../proto/labels.js";
import {
  type LogBatch,
  type LogCountSeries,
  type LogVolumeSelect,
  type MetadataBatch,
  type RollupBatch,
  type RollupPartial,
  type RollupPoints,
  type RollupSliceSeries,
  type SampleBatch,
  type SamplePoints,
  type SampleSliceSeries,
  VOLUME_ROLLUP_MS,
} from "./store.js";
import type { IndexedStream } from "./streams-index.js";
import { seriesLabels, sortByLabels, StoreError } from "./values.js";

// Batches flattened into rows, the same for every store: each row knows its stream (fingerprint and labels)
// and its time, so a store can index streams and check which of a batch's rows it holds.

export interface StreamRef {
  tenant: string;
  batchId: string;
  fingerprint: string;
  labels: Labels;
  kind: number;
  timeMs: number;
}

export interface LogRow extends StreamRef {
  timeNs: bigint;
  line: string;
  metadata: Labels;
  /** Arrival order: the batch's creation time and the entry's index in the batch (LogBatch.createdUnixNano). */
  arrival: bigint;
  entry: number;
}

export interface SampleRow extends StreamRef {
  value: number;
}

export interface MetadataRow extends MetricMetadata {
  tenant: string;
  seenMs: number;
}

/** One row per distinct metadata of a tenant's family, with the last time it was seen. */
export function metadataRows(batches: MetadataBatch[]): MetadataRow[] {
  const rows = new Map<string, MetadataRow>();
  for (const batch of batches) {
    for (const m of batch.metadata) {
      const key = JSON.stringify([batch.tenant, m.name, m.type, m.help, m.unit]);
      const known = rows.get(key);
      if (known === undefined || known.seenMs < batch.seenMs)
        rows.set(key, { ...m, tenant: batch.tenant, seenMs: batch.seenMs });
    }
  }
  return [...rows.values()];
}

/** A metadata row as both stores read it back. */
export function storedMetadata(row: {
  metric_family: string;
  type: string;
  help: string;
  unit: string;
}): MetricMetadata {
  return { name: row.metric_family, type: row.type as MetricType, help: row.help, unit: row.unit };
}

export interface RollupRow
  extends
    StreamRef,
    Pick<RollupPartial, "resolution" | "min" | "max" | "sum" | "count" | "last" | "lastTimeMs" | "increase"> {}

export function logRows(batch: LogBatch): LogRow[] {
  const arrival = batch.createdUnixNano ?? 0n;
  let index = 0;
  return batch.streams.flatMap((stream) => {
    const fp = fingerprint(stream.labels);
    return stream.entries.map((entry) => ({
      tenant: batch.tenant,
      batchId: batch.id,
      fingerprint: fp,
      labels: stream.labels,
      kind: 0,
      timeNs: entry.timeUnixNano,
      timeMs: Number(entry.timeUnixNano / 1_000_000n),
      line: entry.line,
      metadata: entry.metadata,
      arrival,
      entry: index++,
    }));
  });
}

export function sampleRows(batch: SampleBatch): SampleRow[] {
  return batch.series.flatMap((series) => {
    const labels = seriesLabels(series.name, series.labels);
    const fp = fingerprint(labels);
    return series.points.map((point) => ({
      tenant: batch.tenant,
      batchId: batch.id,
      fingerprint: fp,
      labels,
      kind: series.kind,
      timeMs: point.timeUnixMs,
      value: point.value,
    }));
  });
}

export function rollupRows(batch: RollupBatch): RollupRow[] {
  // A series' partials share its labels object (also after a worker posts them): its fingerprint, a SHA-256
  // that costs more than the rest of the row, is worked out once per series instead of once per bucket.
  const series = new Map<Labels, { name: string; labels: Labels; fingerprint: string }>();
  return batch.partials.map((p) => {
    let known = series.get(p.labels);
    if (known?.name !== p.name) {
      const labels = seriesLabels(p.name, p.labels);
      known = { name: p.name, labels, fingerprint: fingerprint(labels) };
      series.set(p.labels, known);
    }
    const { labels } = known;
    return {
      tenant: batch.tenant,
      batchId: batch.id,
      fingerprint: known.fingerprint,
      labels,
      kind: p.kind,
      timeMs: p.bucketStartMs,
      resolution: p.resolution,
      min: p.min,
      max: p.max,
      sum: p.sum,
      count: p.count,
      last: p.last,
      lastTimeMs: p.lastTimeMs,
      increase: p.increase,
    };
  });
}

export interface StreamSpan {
  tenant: string;
  fingerprint: string;
  labels: Labels;
  kind: number;
  minMs: number;
  maxMs: number;
}

/** One index entry per (tenant, stream) of the rows, with the time span they cover. */
export function streamSpans(rows: StreamRef[]): StreamSpan[] {
  const spans = new Map<string, StreamSpan>();
  for (const row of rows) {
    const key = `${row.tenant}\u0000${row.fingerprint}`;
    const span = spans.get(key);
    if (span) {
      span.minMs = Math.min(span.minMs, row.timeMs);
      span.maxMs = Math.max(span.maxMs, row.timeMs);
    } else {
      spans.set(key, {
        tenant: row.tenant,
        fingerprint: row.fingerprint,
        labels: row.labels,
        kind: row.kind,
        minMs: row.timeMs,
        maxMs: row.timeMs,
      });
    }
  }
  return [...spans.values()];
}

/** 2^26: integers below it in magnitude sum exactly in any order, up to 2^27 of them (SampleProbeSeries.inexact). */
export const INEXACT_BOUND = 67_108_864;

/**
 * The rows a read returned for some streams, each stream with its rows in the order read: one result per stream
 * that has rows (`build` makes it), sorted by the streams' label text.
 */
export function groupByStream<Row, Out extends { labels: Labels }>(
  streams: IndexedStream[],
  rows: Row[],
  fingerprintOf: (row: Row) => string,
  build: (stream: IndexedStream, rows: Row[]) => Out,
): Out[] {
  const byFingerprint = new Map<string, Row[]>();
  for (const row of rows) {
    const fingerprint = fingerprintOf(row);
    const list = byFingerprint.get(fingerprint);
    if (list) list.push(row);
    else byFingerprint.set(fingerprint, [row]);
  }
  const out: Out[] = [];
  for (const stream of streams) {
    const list = byFingerprint.get(stream.fingerprint);
    if (list) out.push(build(stream, list));
  }
  return sortByLabels(out);
}

/**
 * Count rows (one per stream, metadata and bucket, ordered by stream) as LogCountSeries: one series per stream
 * and distinct structured metadata, labelled with both; a metadata name that a stream label already has gets
 * the `_extracted` suffix, as LogQL's label builder names it.
 */
/** Refuses a read of the log volume rollup that does not fall on its minutes. */
export function checkVolumeSelect(select: LogVolumeSelect): void {
  const whole = (ms: number) => Number.isSafeInteger(ms) && ms % VOLUME_ROLLUP_MS === 0;
  if (!whole(select.startMs) || !whole(select.endMs) || !whole(select.stepMs) || select.stepMs <= 0)
    throw new StoreError("log volume reads whole minutes: start, end and a positive step, multiples of 60000 ms");
}

export function countSeries<Row>(
  streams: IndexedStream[],
  rows: Row[],
  fingerprintOf: (row: Row) => string,
  metadataOf: (row: Row) => Labels,
  pointOf: (row: Row) => LogCountSeries["points"][number],
): LogCountSeries[] {
  const grouped = groupByStream(streams, rows, fingerprintOf, (stream, rows) => ({ labels: stream.labels, rows }));
  const out: LogCountSeries[] = [];
  for (const { labels, rows: streamRows } of grouped) {
    const bySplit = new Map<string, LogCountSeries>();
    for (const row of streamRows) {
      const metadata = metadataOf(row);
      const key = persistedLabelsText(metadata);
      let series = bySplit.get(key);
      if (series === undefined) {
        const merged = labelsOf({ ...labels });
        for (const [name, value] of Object.entries(metadata))
          merged[labels[name] === undefined ? name : `${name}_extracted`] = value;
        series = { labels: merged, points: [] };
        bySplit.set(key, series);
      }
      series.points.push(pointOf(row));
    }
    out.push(...bySplit.values());
  }
  return sortByLabels(out);
}

/**
 * For each of `names`, the streams that have that label and their values, as parallel arrays that a store binds
 * as parameters to label each row by its fingerprint.
 */
export function streamLabelArrays(
  streams: IndexedStream[],
  names: string[],
): { fingerprints: bigint[]; values: string[] }[] {
  return names.map((name) => {
    const fingerprints: bigint[] = [];
    const values: string[] = [];
    for (const stream of streams) {
      const value = stream.labels[name];
      if (value !== undefined && value !== "") {
        fingerprints.push(BigInt(stream.fingerprint));
        values.push(value);
      }
    }
    return { fingerprints, values };
  });
}

/**
 * Count rows grouped by `names` (one per group and bucket, ordered by bucket) as LogCountSeries labelled with
 * the group's non-empty values: Loki drops empty-valued labels, so an empty value is an absent label.
 */
export function groupedCountSeries<Row>(
  names: string[],
  rows: Row[],
  valuesOf: (row: Row) => string[],
  pointOf: (row: Row) => LogCountSeries["points"][number],
): LogCountSeries[] {
  const groups = new Map<string, LogCountSeries>();
  for (const row of rows) {
    const values = valuesOf(row);
    const key = values.join("\u0000");
    let series = groups.get(key);
    if (series === undefined) {
      const labels = names.map((name, i): [string, string] => [name, values[i]!]).filter(([, value]) => value !== "");
      series = { labels: labelsOf(labels), points: [] };
      groups.set(key, series);
    }
    series.points.push(pointOf(row));
  }
  return sortByLabels([...groups.values()]);
}

/**
 * Many samples or rollup buckets as a read returns them compactly: rows ordered by series fingerprint, each
 * row's numbers (times in ms, values, counts: all exact as float64) in one Float64Array per column instead of
 * an object per row. ClickHouse fills it from RowBinary, DuckDB from its column vectors; JSON rows cost several
 * times the engine's own work on large reads, and text round trips of floats are one more place to lose bits.
 */
export class SeriesColumns {
  readonly columns: Float64Array[];
  private readonly fingerprints: string[] = [];
  private readonly starts: number[] = [];

  constructor(
    readonly rows: number,
    width: number,
  ) {
    this.columns = Array.from({ length: width }, () => new Float64Array(rows));
  }

  /** Rows from `row` on belong to the series with this fingerprint, up to the next series' first row. */
  startSeries(fingerprint: string, row: number): void {
    this.fingerprints.push(fingerprint);
    this.starts.push(row);
  }

  /** One result per stream that has rows, built from its rows [from, to), sorted as groupByStream sorts. */
  series<Out extends { labels: Labels }>(
    streams: IndexedStream[],
    build: (stream: IndexedStream, from: number, to: number) => Out,
  ): Out[] {
    const runs = this.fingerprints.map((fingerprint, i) => ({
      fingerprint,
      from: this.starts[i]!,
      to: this.starts[i + 1] ?? this.rows,
    }));
    return groupByStream(
      streams,
      runs,
      (run) => run.fingerprint,
      (stream, [run]) => build(stream, run!.from, run!.to),
    );
  }
}

/** Sample rows as SeriesColumns of (time ms, value): SamplePoints per series. */
export function samplePoints(streams: IndexedStream[], data: SeriesColumns): SamplePoints[] {
  const [times, values] = data.columns as [Float64Array, Float64Array];
  return data.series(streams, (stream, from, to): SamplePoints => {
    const points: SamplePoints["points"] = new Array(to - from);
    for (let i = from; i < to; i++) points[i - from] = { timeMs: times[i]!, value: values[i]! };
    return { labels: stream.labels, kind: stream.kind, points };
  });
}

/** Rollup rows as SeriesColumns of (bucket start ms, min, max, sum, count, last, increase): RollupPoints per series. */
export function rollupPoints(streams: IndexedStream[], data: SeriesColumns): RollupPoints[] {
  const [start, min, max, sum, count, last, increase] = data.columns as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  return data.series(streams, (stream, from, to): RollupPoints => {
    const buckets: RollupPoints["buckets"] = new Array(to - from);
    for (let i = from; i < to; i++) {
      buckets[i - from] = {
        startMs: start[i]!,
        min: min[i]!,
        max: max[i]!,
        sum: sum[i]!,
        count: count[i]!,
        last: last[i]!,
        increase: increase[i]!,
      };
    }
    return { labels: stream.labels, kind: stream.kind, buckets };
  });
}

/**
 * Slice rows as SeriesColumns of (slice, count, sum, min, max, special, inexact): SampleSliceSeries per series,
 * whose columns are views of the read's, not copies.
 */
export function sampleSlices(streams: IndexedStream[], data: SeriesColumns): SampleSliceSeries[] {
  const [slice, count, sum, min, max, special, inexact] = data.columns as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  return data.series(streams, (stream, from, to): SampleSliceSeries => {
    let specials = 0;
    let inexacts = 0;
    for (let i = from; i < to; i++) {
      specials += special[i]!;
      inexacts += inexact[i]!;
    }
    return {
      labels: stream.labels,
      slice: slice.subarray(from, to),
      count: count.subarray(from, to),
      sum: sum.subarray(from, to),
      min: min.subarray(from, to),
      max: max.subarray(from, to),
      special: specials,
      inexact: inexacts,
    };
  });
}

/** Rollup slice rows as SeriesColumns of (slice, count, sum, head count, head min, head max, rest min, rest max). */
export function rollupSlices(streams: IndexedStream[], data: SeriesColumns): RollupSliceSeries[] {
  const [slice, count, sum, headCount, headMin, headMax, restMin, restMax] = data.columns as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  return data.series(streams, (stream, from, to): RollupSliceSeries => ({
    labels: stream.labels,
    slice: slice.subarray(from, to),
    count: count.subarray(from, to),
    sum: sum.subarray(from, to),
    headCount: headCount.subarray(from, to),
    headMin: headMin.subarray(from, to),
    headMax: headMax.subarray(from, to),
    restMin: restMin.subarray(from, to),
    restMax: restMax.subarray(from, to),
  }));
}
