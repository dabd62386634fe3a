import type { LogStream, MetricMetadata, SampleKind, Series } from "../proto/batch.js";
import type { Labels } from "../proto/labels.js";
import type { FleetRecords } from "./fleet-records.js";

// The storage contract that the aggregator writes through and the query service reads through. Two
// implementations pass one contract suite (test/store-contract.ts): ClickHouse for production, and an embedded
// store for `bifrost all`.
//
// Time ranges are half-open, [start, end), in nanoseconds for logs and milliseconds for samples and rollups.
// Every append is idempotent per batch id: appending a batch that is already stored changes nothing.

export type MatchOp = "=" | "!=" | "=~" | "!~";

/** A Prometheus/Loki label matcher; regular expressions are RE2 and anchored at both ends. */
export interface LabelMatcher {
  name: string;
  op: MatchOp;
  value: string;
}

/**
 * A Loki line filter. `|=` and `|~` keep a line that contains any of `values` (Loki's `or`); `!=` and `!~`
 * drop a line that contains any of them. Regular expressions are RE2 and unanchored.
 */
export interface LineFilter {
  op: "|=" | "!=" | "|~" | "!~";
  values: string[];
}

export type Direction = "forward" | "backward";

export type Resolution = "1m" | "1h";

export const RESOLUTION_MS: Record<Resolution, number> = { "1m": 60_000, "1h": 3_600_000 };

export interface LogBatch {
  /** The unit of idempotency, unique across tenants: proto/batch.ts batchId(). */
  id: string;
  tenant: string;
  streams: LogStream[];
  /**
   * When the batch was cut (proto/batch.ts Batch.createdUnixNano, increasing per collector): with each entry's
   * place in the batch, the arrival order that reads keep for entries sharing a timestamp. 0 when unknown.
   */
  createdUnixNano?: bigint;
}

export interface SampleBatch {
  id: string;
  tenant: string;
  series: Series[];
}

/** One series' aggregate over one bucket, as computed from one batch (aggregator/rollup.ts). */
export interface RollupPartial {
  name: string;
  labels: Labels;
  kind: SampleKind;
  resolution: Resolution;
  bucketStartMs: number;
  min: number;
  max: number;
  sum: number;
  count: number;
  last: number;
  lastTimeMs: number;
  /**
   * Counter increase of the samples in this bucket, each against the sample before it (which may lie in an
   * earlier bucket or batch), a reset counting from zero. Sums across partials and buckets.
   */
  increase: number;
}

export interface RollupBatch {
  id: string;
  tenant: string;
  partials: RollupPartial[];
}

/** Metric family metadata as one batch carried it, and when that batch was made. */
export interface MetadataBatch {
  tenant: string;
  seenMs: number;
  metadata: MetricMetadata[];
}

export interface MetadataSelect {
  tenant: string;
  /** Metadata last seen in [startMs, endMs). */
  startMs: number;
  endMs: number;
  /** One family only; every family when absent. */
  metric?: string;
}

export interface AppendResult {
  /** Batches written now. */
  written: number;
  /** Batches skipped because they were already stored. */
  duplicates: number;
  /** Rows written now. */
  rows: number;
}

export interface LogSelect {
  tenant: string;
  matchers: LabelMatcher[];
  startNs: bigint;
  endNs: bigint;
  lineFilters?: LineFilter[];
  /** Most entries returned over all streams, newest first for `backward`, oldest first for `forward`. */
  limit: number;
  direction: Direction;
}

/**
 * selectLogs' entries column-wise, in the order a reader merging streams by time takes them: by timestamp (in the
 * select's direction), entries sharing one by their streams' label text, a stream's own in arrival order.
 */
export interface LogColumns {
  /** The streams read, sorted by label text; `stream[i]` is entry i's place here. */
  streams: Labels[];
  stream: number[];
  ts: bigint[];
  lines: string[];
  /** Each entry's structured metadata: NO_LABELS (shared, frozen) when it has none. */
  metadata: Labels[];
}

export interface LogCountSelect {
  tenant: string;
  matchers: LabelMatcher[];
  startNs: bigint;
  endNs: bigint;
  lineFilters?: LineFilter[];
  /** Bucket width; buckets start at startNs + k * stepNs. */
  stepNs: bigint;
  /** `false` leaves every point's bytes 0: summing bytes reads every line, which counting alone does not. */
  bytes?: boolean;
  /**
   * Split each stream's counts by the entries' structured metadata, whose labels are added to the stream's: LogQL
   * metric queries group by stream labels and structured metadata together.
   */
  byMetadata?: boolean;
  /**
   * Sum the counts over all streams into one series per group (`sum by (...)` pushed down), labelled with just
   * these labels: each label's value is the stream's label when the stream has it, else the entry's structured
   * metadata of that name, as LogQL's label builder gives it; empty values are absent labels. `[]` is one group
   * over everything. Overrides byMetadata.
   */
  groupBy?: string[];
}

/**
 * A read of the per-minute log volume rollup (log_volume_1m): entries and bytes per stream in buckets of whole
 * minutes, as exact as counting the lines of those minutes, without reading them.
 */
export interface LogVolumeSelect {
  tenant: string;
  matchers: LabelMatcher[];
  /** Multiples of a minute; the minutes in [startMs, endMs) are read. */
  startMs: number;
  endMs: number;
  /** Bucket width, a multiple of a minute; buckets start at startMs + k * stepMs. */
  stepMs: number;
}

export const VOLUME_ROLLUP_MS = 60_000;

/** Entries and bytes of one stream per step bucket (count_over_time and bytes_over_time pushed down). */
export interface LogCountSeries {
  labels: Labels;
  points: { startNs: bigint; count: number; bytes: number }[];
}

export interface SampleSelect {
  tenant: string;
  matchers: LabelMatcher[];
  startMs: number;
  endMs: number;
}

export interface SamplePoints {
  labels: Labels;
  kind: SampleKind;
  points: { timeMs: number; value: number }[];
}

export interface RollupSelect extends SampleSelect {
  resolution: Resolution;
}

export interface RollupPoints {
  labels: Labels;
  kind: SampleKind;
  buckets: { startMs: number; min: number; max: number; sum: number; count: number; last: number; increase: number }[];
}

export interface SampleProbe extends SampleSelect {
  /** A bucket width (RESOLUTION_MS): the samples at its multiples are returned. */
  alignMs: number;
  /** Whether to count the inexact samples (only sums need them); they read 0 otherwise. */
  sums: boolean;
}

/**
 * What rollup buckets of one width cannot tell about a series' raw samples in a range (query/promql/pushdown/rollups.ts):
 * the samples exactly on bucket boundaries, where a left-open window cuts a bucket, and how many samples are NaN
 * (left out of rollups) or not integers of magnitude below 2^26 (whose sums depend on the order of addition).
 */
export interface SampleProbeSeries {
  labels: Labels;
  boundary: { timeMs: number; value: number }[];
  nan: number;
  inexact: number;
}

/** Raw samples summed up in the store per slice: slice k holds those in (baseMs + k * widthMs, baseMs + (k + 1) * widthMs]. */
export interface SampleSliceSelect extends SliceSpan {
  /** The figures wanted beside each slice's count (`sum` brings the inexact count too); the others read 0. */
  figures: readonly ("sum" | "min" | "max")[];
}

/**
 * One series' slices that hold samples, in slice order, as columns (query/promql/pushdown/slices.ts): each
 * slice's index, sample count, sum, minimum and maximum. `special` counts the samples that a slice's figures do
 * not stand for exactly (NaN, staleness markers included, and negative zero), `inexact` those that are not
 * integers of magnitude below 2^26 (whose sums depend on the order of addition).
 */
export interface SampleSliceSeries {
  labels: Labels;
  slice: Float64Array;
  count: Float64Array;
  sum: Float64Array;
  min: Float64Array;
  max: Float64Array;
  special: number;
  inexact: number;
}

/** Rollup buckets merged per slice by the store: slice k holds the buckets starting in [baseMs + k * widthMs, baseMs + (k + 1) * widthMs). */
export interface RollupSliceSelect extends SliceSpan {
  resolution: Resolution;
}

/** The series and slices a slice read covers. */
export interface SliceSpan {
  tenant: string;
  matchers: LabelMatcher[];
  baseMs: number;
  widthMs: number;
  slices: number;
}

/**
 * One series' slices that hold buckets, in slice order, as columns (query/promql/pushdown/rollups.ts): each
 * slice's index, sample count and sum, and apart from the rest its head, the bucket that starts at the slice's
 * left edge (where a left-open window cuts it): its count (0 when it holds none), minimum and maximum; then
 * the minimum and maximum of the other buckets (meaningless when the head holds all the slice's samples).
 */
export interface RollupSliceSeries {
  labels: Labels;
  slice: Float64Array;
  count: Float64Array;
  sum: Float64Array;
  headCount: Float64Array;
  headMin: Float64Array;
  headMax: Float64Array;
  restMin: Float64Array;
  restMax: Float64Array;
}

export type SignalKind = "logs" | "metrics";

export interface SeriesSelect {
  tenant: string;
  signal: SignalKind;
  /** Label sets matching any one of these selectors (Prometheus `match[]`); empty means all. */
  selectors: LabelMatcher[][];
  startMs: number;
  endMs: number;
}

/**
 * A read of what the streams index and the per-minute log volume gained since a watermark, for a catalog that keeps
 * them in memory (query/catalog/). Entries and cells come whole (merged over all their rows), not as the deltas
 * written.
 */
export interface IndexChangesSelect {
  tenant: string;
  signal: SignalKind;
  /** Entries and cells with a row written at or after this watermark (IndexChanges.watermarkMs); all when absent. */
  sinceMs?: number;
  /** Volume cells of this minute (a multiple of a minute) and later; logs only. */
  volumeFromMs: number;
  /** Most entries and most cells returned: a store returns at most one more, which tells that there are more. */
  limit: number;
}

/** A streams index entry with its time span: the stream had entries from firstSeenMs to lastSeenMs. */
export interface StreamSpanEntry {
  fingerprint: string;
  labels: Labels;
  kind: number;
  firstSeenMs: number;
  lastSeenMs: number;
}

/** One stream's entries and bytes in one minute, as log_volume_1m sums them. */
export interface VolumeCell {
  fingerprint: string;
  minuteMs: number;
  entries: number;
  bytes: number;
}

export interface IndexChanges {
  /** The sinceMs of the next read: every index or volume row this read did not see is stamped at or after it. */
  watermarkMs: number;
  streams: StreamSpanEntry[];
  volume: VolumeCell[];
}

/** How many log appends and retention runs one store object has completed (a catalog in its process follows them). */
export interface WriteEpochs {
  logAppends: number;
  retentionRuns: number;
}

/** The fleet server's records (storage/fleet-records.ts) are kept by both stores; a derived store may lack them. */
export interface Store extends Partial<FleetRecords> {
  /** Creates or upgrades the schema; safe to call at every start. */
  migrate(): Promise<void>;
  appendLogs(batches: LogBatch[]): Promise<AppendResult>;
  appendSamples(batches: SampleBatch[]): Promise<AppendResult>;
  appendRollups(batches: RollupBatch[]): Promise<AppendResult>;
  /** Records metric family metadata; the same metadata written again only moves its last-seen time. */
  appendMetadata(batches: MetadataBatch[]): Promise<void>;

  /** Label sets (streams or series) seen in the range, sorted by their label text. */
  series(select: SeriesSelect): Promise<Labels[]>;
  labelNames(select: SeriesSelect): Promise<string[]>;
  labelValues(select: SeriesSelect, name: string): Promise<string[]>;

  /**
   * The distinct metadata (type, help, unit) of metric families last seen in the range, by family name, each
   * family's most recently seen first.
   */
  metricMetadata(select: MetadataSelect): Promise<MetricMetadata[]>;

  selectLogs(select: LogSelect): Promise<LogStream[]>;
  /** selectLogs' entries column-wise, without an object per entry (the LogQL engine's reads). */
  selectLogColumns?(select: LogSelect): Promise<LogColumns>;
  countLogs(select: LogCountSelect): Promise<LogCountSeries[]>;
  /** countLogs over whole minutes, read from the per-minute log volume rollup. */
  logVolume(select: LogVolumeSelect): Promise<LogCountSeries[]>;
  selectSamples(select: SampleSelect): Promise<SamplePoints[]>;
  selectRollups(select: RollupSelect): Promise<RollupPoints[]>;
  /**
   * Present on stores whose rollups hold every raw sample they store; a store that answers with samples of its
   * own (the ruler's TickStore) leaves it out, so that queries read raw samples from it.
   */
  probeSamples?(select: SampleProbe): Promise<SampleProbeSeries[]>;
  /** Present with probeSamples: rollup buckets merged per slice, for the PromQL pushdown. */
  selectRollupSlices?(select: RollupSliceSelect): Promise<RollupSliceSeries[]>;
  /** Present on stores that sum samples up themselves; the ruler's TickStore leaves it out, as probeSamples. */
  selectSampleSlices?(select: SampleSliceSelect): Promise<SampleSliceSeries[]>;

  /** Present on stores that stamp index and volume rows with their write time. */
  indexChanges?(select: IndexChangesSelect): Promise<IndexChanges>;
  writeEpochs?(): WriteEpochs;

  /** Deletes what is older than the retention now (ClickHouse's TTL does this in the background too). */
  enforceRetention(nowMs: number): Promise<void>;
  close(): Promise<void>;
}
