import { type Batch, INCARNATION, type LogStream, METRIC_TYPES, type MetricMetadata, type Series } from "./batch.js";
import { type Labels, NO_LABELS } from "./labels.js";

/** Limits on what a batch may carry; the collector enforces them at ingest and the aggregator again. */
export interface BatchLimits {
  max_labels: number;
  max_label_name_bytes: number;
  max_label_value_bytes: number;
  max_line_bytes: number;
}

export type ValidationReason =
  | "missing_identity"
  | "invalid_incarnation"
  | "too_many_labels"
  | "invalid_label_name"
  | "label_name_too_long"
  | "label_value_too_long"
  | "invalid_metric_name"
  | "invalid_metadata"
  | "line_too_long"
  | "timestamp_out_of_range";

export class ValidationError extends Error {
  override readonly name = "ValidationError";
  constructor(
    readonly reason: ValidationReason,
    message: string,
  ) {
    super(message);
  }
}

/** The longest help text of a metric family; receivers cut longer ones here. */
export const MAX_HELP_BYTES = 4096;
/** The longest unit of a metric family (Prometheus units are words: `bytes_per_second`). */
export const MAX_UNIT_BYTES = 256;

export const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
export const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * The times both stores can keep, [1970-01-01, 2106-02-07): ClickHouse partitions and buckets by Date and
 * DateTime, whose range ends there, and DuckDB keeps nanoseconds in an Int64. Nothing outside reaches a store.
 */
export const STORABLE_MS = { min: 0, max: 2 ** 32 * 1000 };
export const STORABLE_NS = { min: 0n, max: BigInt(STORABLE_MS.max) * 1_000_000n };

/**
 * Labels Loki's ingestion adds (common/ingest-defaults.ts) do not count against max_labels, as Loki's validator
 * leaves `service_name` out and adds `detected_level` after it: adding them never refuses what was accepted.
 */
const UNCOUNTED_LABELS = ["service_name", "detected_level"];

export function checkLabels(labels: Labels, limits: BatchLimits, where: string): void {
  const names = Object.keys(labels);
  const counted = names.length - UNCOUNTED_LABELS.filter((name) => labels[name] !== undefined).length;
  if (counted > limits.max_labels) {
    throw new ValidationError("too_many_labels", `${where} has ${counted} labels, the limit is ${limits.max_labels}`);
  }
  for (const name of names) {
    if (!LABEL_NAME.test(name))
      throw new ValidationError(
        "invalid_label_name",
        `${where}: label name ${JSON.stringify(name.slice(0, 100))} is not valid`,
      );
    if (Buffer.byteLength(name) > limits.max_label_name_bytes) {
      throw new ValidationError(
        "label_name_too_long",
        `${where}: label name of ${Buffer.byteLength(name)} bytes, the limit is ${limits.max_label_name_bytes}`,
      );
    }
    const bytes = Buffer.byteLength(labels[name]!);
    if (bytes > limits.max_label_value_bytes) {
      throw new ValidationError(
        "label_value_too_long",
        `${where}: value of label ${name} is ${bytes} bytes, the limit is ${limits.max_label_value_bytes}`,
      );
    }
  }
}

export function checkMetricName(name: string, where: string): void {
  if (!METRIC_NAME.test(name))
    throw new ValidationError(
      "invalid_metric_name",
      `${where}: metric name ${JSON.stringify(name.slice(0, 100))} is not valid`,
    );
}

/** A line over the limit; UTF-16 length bounds UTF-8 length from below by a third, so bytes are counted only when it could matter. */
export function checkLine(line: string, limits: BatchLimits, where: string): void {
  if (line.length * 3 > limits.max_line_bytes && Buffer.byteLength(line) > limits.max_line_bytes) {
    throw new ValidationError(
      "line_too_long",
      `${where}: a line of ${Buffer.byteLength(line)} bytes, the limit is ${limits.max_line_bytes}`,
    );
  }
}

function checkEntryTime(ns: bigint, where: string): void {
  if (ns < STORABLE_NS.min || ns >= STORABLE_NS.max)
    throw new ValidationError("timestamp_out_of_range", `${where}: timestamp ${ns} ns is outside what can be stored`);
}

function checkPointTime(ms: number, where: string): void {
  if (!Number.isInteger(ms) || ms < STORABLE_MS.min || ms >= STORABLE_MS.max)
    throw new ValidationError("timestamp_out_of_range", `${where}: timestamp ${ms} ms is outside what can be stored`);
}

/** Throws ValidationError at the first thing in `batch` that breaks a limit or Prometheus's naming rules. */
export function validateBatch(batch: Batch, limits: BatchLimits): void {
  const screened = screenBatch(batch, limits);
  if (screened.refused.length > 0) throw screened.refused[0]!.error;
}

/** Rows of a batch refused for one reason, in a batch of their own with the original's identity. */
export interface RefusedRows {
  error: ValidationError;
  rows: Batch;
}

/**
 * Splits a batch into the rows that pass the limits and the rows that do not, row by row (a stream or series
 * whose labels or name break a limit goes whole, an entry or point alone otherwise), so that one bad row never
 * takes the rest of its batch with it. Refused rows are grouped by reason, each group with its first message.
 * A batch without tenant or node, or with an invalid incarnation, is refused whole.
 */
export function screenBatch(batch: Batch, limits: BatchLimits): { valid: Batch; refused: RefusedRows[] } {
  const empty = (): Batch => {
    const rows: Batch = { ...batch, streams: [], series: [] };
    delete rows.metadata;
    return rows;
  };
  if (batch.tenant === "" || batch.nodeId === "")
    return {
      valid: empty(),
      refused: [{ error: new ValidationError("missing_identity", "batch has no tenant or no node id"), rows: batch }],
    };
  if (batch.incarnation !== "" && !INCARNATION.test(batch.incarnation))
    return {
      valid: empty(),
      refused: [
        {
          error: new ValidationError(
            "invalid_incarnation",
            "batch incarnation is not up to 64 letters, digits, - and _",
          ),
          rows: batch,
        },
      ],
    };
  const refused = new Map<string, RefusedRows>();
  const refuse = (err: unknown): Batch => {
    if (!(err instanceof ValidationError)) throw err;
    let group = refused.get(err.reason);
    if (!group) refused.set(err.reason, (group = { error: err, rows: empty() }));
    return group.rows;
  };
  const valid = empty();
  batch.streams.forEach((stream, s) => {
    try {
      checkLabels(stream.labels, limits, `stream ${s}`);
    } catch (err) {
      refuse(err).streams.push(stream);
      return;
    }
    const kept: LogStream = { labels: stream.labels, entries: [] };
    for (const entry of stream.entries) {
      try {
        checkEntryTime(entry.timeUnixNano, `stream ${s}`);
        checkLine(entry.line, limits, `stream ${s}`);
        if (entry.metadata !== NO_LABELS) checkLabels(entry.metadata, limits, `stream ${s} structured metadata`);
        kept.entries.push(entry);
      } catch (err) {
        appendEntry(refuse(err), stream.labels, entry);
      }
    }
    // A stream without entries stays as it came, as the direct encoding (aggregator/log-wire.ts) keeps it.
    if (kept.entries.length === stream.entries.length) valid.streams.push(stream);
    else if (kept.entries.length > 0) valid.streams.push(kept);
  });
  batch.series.forEach((series, i) => {
    const where = `series ${i} (${series.name})`;
    try {
      checkMetricName(series.name, `series ${i}`);
      checkLabels(series.labels, limits, where);
    } catch (err) {
      refuse(err).series.push(series);
      return;
    }
    const kept: Series = { ...series, points: [] };
    for (const point of series.points) {
      try {
        checkPointTime(point.timeUnixMs, where);
        kept.points.push(point);
      } catch (err) {
        const rows = refuse(err);
        const last = rows.series[rows.series.length - 1];
        if (last?.labels === series.labels && last.name === series.name) last.points.push(point);
        else rows.series.push({ name: series.name, labels: series.labels, kind: series.kind, points: [point] });
      }
    }
    if (kept.points.length === series.points.length) valid.series.push(series);
    else if (kept.points.length > 0) valid.series.push(kept);
  });
  for (const metadata of batch.metadata ?? []) {
    try {
      checkMetadata(metadata);
      (valid.metadata ??= []).push(metadata);
    } catch (err) {
      (refuse(err).metadata ??= []).push(metadata);
    }
  }
  return { valid, refused: [...refused.values()] };
}

/** A metric family's metadata: a Prometheus name, a known type, help and unit within their bounds. */
export function checkMetadata(m: MetricMetadata): void {
  const where = `metadata of ${JSON.stringify(m.name.slice(0, 100))}`;
  if (!METRIC_NAME.test(m.name)) throw new ValidationError("invalid_metadata", `${where}: not a valid metric name`);
  if (!METRIC_TYPES.has(m.type)) throw new ValidationError("invalid_metadata", `${where}: unknown type ${m.type}`);
  if (Buffer.byteLength(m.help) > MAX_HELP_BYTES)
    throw new ValidationError("invalid_metadata", `${where}: help longer than ${MAX_HELP_BYTES} bytes`);
  if (Buffer.byteLength(m.unit) > MAX_UNIT_BYTES)
    throw new ValidationError("invalid_metadata", `${where}: unit longer than ${MAX_UNIT_BYTES} bytes`);
}

function appendEntry(rows: Batch, labels: Labels, entry: LogStream["entries"][number]): void {
  const last = rows.streams[rows.streams.length - 1];
  if (last?.labels === labels) last.entries.push(entry);
  else rows.streams.push({ labels, entries: [entry] });
}
