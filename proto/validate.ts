import { type Batch, INCARNATION, METRIC_TYPES, type MetricMetadata } from "./batch.js";
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
  | "line_too_long";

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

/** Throws ValidationError at the first thing in `batch` that breaks a limit or Prometheus's naming rules. */
export function validateBatch(batch: Batch, limits: BatchLimits): void {
  if (batch.tenant === "" || batch.nodeId === "")
    throw new ValidationError("missing_identity", "batch has no tenant or no node id");
  if (batch.incarnation !== "" && !INCARNATION.test(batch.incarnation))
    throw new ValidationError("invalid_incarnation", "batch incarnation is not up to 64 letters, digits, - and _");
  validateStreams(batch.streams, limits);
  validateSeries(batch.series, limits);
  validateMetadata(batch.metadata ?? []);
}

/** Metric family metadata: Prometheus names, known types, help and unit within their bounds. */
export function validateMetadata(metadata: MetricMetadata[]): void {
  for (const m of metadata) {
    const where = `metadata of ${JSON.stringify(m.name.slice(0, 100))}`;
    if (!METRIC_NAME.test(m.name)) throw new ValidationError("invalid_metadata", `${where}: not a valid metric name`);
    if (!METRIC_TYPES.has(m.type)) throw new ValidationError("invalid_metadata", `${where}: unknown type ${m.type}`);
    if (Buffer.byteLength(m.help) > MAX_HELP_BYTES)
      throw new ValidationError("invalid_metadata", `${where}: help longer than ${MAX_HELP_BYTES} bytes`);
    if (Buffer.byteLength(m.unit) > MAX_UNIT_BYTES)
      throw new ValidationError("invalid_metadata", `${where}: unit longer than ${MAX_UNIT_BYTES} bytes`);
  }
}

/** The series' part of validateBatch, for receivers that check before they accept. */
export function validateSeries(series: Batch["series"], limits: BatchLimits): void {
  series.forEach((s, i) => {
    if (!METRIC_NAME.test(s.name))
      throw new ValidationError(
        "invalid_metric_name",
        `series ${i}: metric name ${JSON.stringify(s.name.slice(0, 100))} is not valid`,
      );
    checkLabels(s.labels, limits, `series ${i} (${s.name})`);
  });
}

/** The log streams' part of validateBatch, for receivers that check before they accept. */
export function validateStreams(streams: Batch["streams"], limits: BatchLimits): void {
  streams.forEach((stream, s) => {
    checkLabels(stream.labels, limits, `stream ${s}`);
    for (const entry of stream.entries) {
      // UTF-16 length bounds UTF-8 length from below by half; count bytes only when it could matter.
      if (entry.line.length * 3 > limits.max_line_bytes && Buffer.byteLength(entry.line) > limits.max_line_bytes) {
        throw new ValidationError(
          "line_too_long",
          `stream ${s}: a line of ${Buffer.byteLength(entry.line)} bytes, the limit is ${limits.max_line_bytes}`,
        );
      }
      if (entry.metadata !== NO_LABELS) checkLabels(entry.metadata, limits, `stream ${s} structured metadata`);
    }
  });
}
