import { type LogStream, SampleKind, type Series } from "../../proto/batch.js";
import { labelsOf, type Labels, persistedLabelsText } from "../../proto/labels.js";
import {
  type AnyValue,
  type HistogramDataPoint,
  type KeyValue,
  type LogsRequest,
  type Metric,
  type MetricsRequest,
  type NumberDataPoint,
  OtlpDecodeError,
  type SummaryDataPoint,
} from "./otlp-proto.js";

// OTLP -> Bifrost's batch model. Logs follow Loki's OTLP ingestion (pkg/loghttp/push/otlp.go and otlplabels):
// the resource attributes on Loki's default list become stream labels, every other attribute structured
// metadata. Metrics follow Prometheus's OTLP receiver with translation strategy UnderscoreEscapingWithoutSuffixes:
// names and label names escaped to Prometheus's alphabet, no unit or `_total` suffixes added, job and instance
// from the service attributes, no other resource attribute promoted.

/** Loki's distributor.otlp.default_resource_attributes_as_index_labels. */
const INDEX_ATTRIBUTES = new Set([
  "service.name",
  "service.namespace",
  "service.instance.id",
  "deployment.environment",
  "deployment.environment.name",
  "cloud.region",
  "cloud.availability_zone",
  "k8s.cluster.name",
  "k8s.namespace.name",
  "k8s.pod.name",
  "k8s.container.name",
  "container.name",
  "k8s.replicaset.name",
  "k8s.deployment.name",
  "k8s.statefulset.name",
  "k8s.daemonset.name",
  "k8s.cronjob.name",
  "k8s.job.name",
]);

const CUMULATIVE = 2;
const NO_RECORDED_VALUE = 1;

/**
 * An attribute key as a Prometheus label name, as otlptranslator's LabelNamer (which Loki uses too) builds it:
 * each run of characters outside [A-Za-z0-9] becomes one `_` (a `__reserved__` name keeps its underscores), a
 * leading digit gets `key_`.
 */
export function labelName(key: string): string {
  const reserved = key.length > 4 && key.startsWith("__") && key.endsWith("__");
  const inner = (reserved ? key.slice(2, -2) : key).replace(/[^A-Za-z0-9]+/g, "_");
  const name = reserved ? `__${inner}__` : inner;
  if (/^_*$/.test(name))
    throw new OtlpDecodeError(`attribute ${JSON.stringify(key.slice(0, 100))} has no valid label name`);
  return /^[0-9]/.test(name) ? `key_${name}` : name;
}

/** A metric name as otlptranslator builds it without suffixes: runs of characters outside [A-Za-z0-9_:] become `_`, a leading digit gets `_`. */
export function metricName(name: string): string {
  const escaped = name
    .split(/[^A-Za-z0-9_:]+/)
    .filter((token) => token !== "")
    .join("_");
  return /^[0-9]/.test(escaped) ? `_${escaped}` : escaped;
}

function raw(value: AnyValue | undefined): unknown {
  if (value === undefined) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined)
    return Number.isSafeInteger(Number(value.intValue)) ? Number(value.intValue) : value.intValue;
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.bytesValue !== undefined) return Buffer.from(value.bytesValue).toString("base64");
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(raw);
  if (value.kvlistValue !== undefined)
    return Object.fromEntries((value.kvlistValue.values ?? []).map((kv) => [kv.key ?? "", raw(kv.value)]));
  return null;
}

/** An attribute value or log body as text, as the Collector's pcommon.Value.AsString writes it (maps and lists as JSON). */
export function valueText(value: AnyValue | undefined): string {
  const plain = raw(value);
  if (plain === null) return "";
  if (typeof plain === "string") return plain;
  if (typeof plain === "object") return JSON.stringify(plain);
  return String(plain);
}

/** Attributes as label pairs; map values flatten into `parent_child` names as Loki does. */
function attributePairs(attributes: KeyValue[] | undefined, prefix = ""): [string, string][] {
  const pairs: [string, string][] = [];
  for (const { key = "", value } of attributes ?? []) {
    const name = labelName(prefix ? `${prefix}_${key}` : key);
    if (value?.kvlistValue !== undefined) pairs.push(...attributePairs(value.kvlistValue.values, name));
    else pairs.push([name, valueText(value)]);
  }
  return pairs;
}

function stringAttribute(attributes: KeyValue[] | undefined, key: string): string {
  return valueText(attributes?.find((kv) => kv.key === key)?.value);
}

/** A 64-bit count of nanoseconds; OTLP/JSON may carry any string there. */
function nanos(text: string | undefined): bigint {
  if (text === undefined) return 0n;
  if (!/^\d{1,20}$/.test(text))
    throw new OtlpDecodeError(`${JSON.stringify(text.slice(0, 40))} is not a count of nanoseconds`);
  return BigInt(text);
}

function hex(id: Uint8Array | undefined): string {
  return id && id.length > 0 ? Buffer.from(id).toString("hex") : "";
}

export function logsToStreams(
  request: LogsRequest,
  now: () => bigint = () => BigInt(Date.now()) * 1_000_000n,
): { streams: LogStream[]; records: number } {
  const streams = new Map<string, LogStream>();
  let records = 0;
  for (const resourceLogs of request.resourceLogs ?? []) {
    const resourceAttributes = resourceLogs.resource?.attributes;
    const streamPairs: [string, string][] = [];
    const resourceMetadata: [string, string][] = [];
    for (const attribute of resourceAttributes ?? []) {
      (INDEX_ATTRIBUTES.has(attribute.key ?? "") ? streamPairs : resourceMetadata).push(...attributePairs([attribute]));
    }
    if (stringAttribute(resourceAttributes, "service.name") === "")
      streamPairs.push(["service_name", "unknown_service"]);
    const labels = labelsOf(streamPairs);
    const key = persistedLabelsText(labels);
    let stream = streams.get(key);
    if (!stream) {
      stream = { labels, entries: [] };
      streams.set(key, stream);
    }
    for (const scopeLogs of resourceLogs.scopeLogs ?? []) {
      const scope = scopeLogs.scope;
      const scopeMetadata = attributePairs(scope?.attributes);
      if (scope?.name) scopeMetadata.push(["scope_name", scope.name]);
      if (scope?.version) scopeMetadata.push(["scope_version", scope.version]);
      for (const record of scopeLogs.logRecords ?? []) {
        records++;
        const metadata = attributePairs(record.attributes);
        const time = nanos(record.timeUnixNano);
        const observed = nanos(record.observedTimeUnixNano);
        if (time !== 0n && observed !== 0n) metadata.push(["observed_timestamp", observed.toString()]);
        if (record.severityNumber) metadata.push(["severity_number", String(record.severityNumber)]);
        if (record.severityText) metadata.push(["severity_text", record.severityText]);
        if (record.droppedAttributesCount)
          metadata.push(["dropped_attributes_count", String(record.droppedAttributesCount)]);
        if (record.flags) metadata.push(["flags", String(record.flags)]);
        if (hex(record.traceId)) metadata.push(["trace_id", hex(record.traceId)]);
        if (hex(record.spanId)) metadata.push(["span_id", hex(record.spanId)]);
        if (record.eventName) metadata.push(["event_name", record.eventName]);
        stream.entries.push({
          timeUnixNano: time || observed || now(),
          line: valueText(record.body),
          metadata: labelsOf([...metadata, ...resourceMetadata, ...scopeMetadata]),
        });
      }
    }
  }
  return { streams: [...streams.values()].filter((s) => s.entries.length > 0), records };
}

export interface ConvertedMetrics {
  series: Series[];
  /** Data points that have no Prometheus form here, with the reasons, for the response's partial_success. */
  rejected: number;
  reasons: string[];
}

/** Attributes as Prometheus labels; names that escape to the same label get their values joined with `;`, as Prometheus does. */
function pointLabels(base: Labels, attributes: KeyValue[] | undefined): Labels {
  const labels = labelsOf(Object.entries(base));
  const sorted = [...(attributes ?? [])].sort((a, b) => ((a.key ?? "") < (b.key ?? "") ? -1 : 1));
  const seen = new Set<string>();
  for (const { key = "", value } of sorted) {
    const name = labelName(key);
    labels[name] = seen.has(name) ? `${labels[name]};${valueText(value)}` : valueText(value);
    seen.add(name);
  }
  return labels;
}

function formatBound(bound: number): string {
  if (bound === Infinity) return "+Inf";
  if (bound === -Infinity) return "-Inf";
  return String(bound);
}

export function metricsToSeries(request: MetricsRequest, nowMs: () => number = Date.now): ConvertedMetrics {
  const series = new Map<string, Series>();
  const reasons = new Set<string>();
  let rejected = 0;
  const add = (name: string, labels: Labels, kind: SampleKind, timeUnixNano: string | undefined, value: number) => {
    const key = `${name}${persistedLabelsText(labels)}`;
    let entry = series.get(key);
    if (!entry) {
      entry = { name, labels, kind, points: [] };
      series.set(key, entry);
    }
    const ns = nanos(timeUnixNano);
    entry.points.push({ timeUnixMs: ns === 0n ? nowMs() : Number(ns / 1_000_000n), value });
  };
  const reject = (count: number, reason: string) => {
    rejected += count;
    reasons.add(reason);
  };
  for (const resourceMetrics of request.resourceMetrics ?? []) {
    const attributes = resourceMetrics.resource?.attributes;
    const service = stringAttribute(attributes, "service.name");
    const namespace = stringAttribute(attributes, "service.namespace");
    const base: [string, string][] = [];
    if (service) base.push(["job", namespace ? `${namespace}/${service}` : service]);
    const instance = stringAttribute(attributes, "service.instance.id");
    if (instance) base.push(["instance", instance]);
    const baseLabels = labelsOf(base);
    for (const scopeMetrics of resourceMetrics.scopeMetrics ?? []) {
      for (const metric of scopeMetrics.metrics ?? []) convertMetric(metric, baseLabels, add, reject);
    }
  }
  return { series: [...series.values()], rejected, reasons: [...reasons] };
}

type Add = (name: string, labels: Labels, kind: SampleKind, timeUnixNano: string | undefined, value: number) => void;
type Reject = (count: number, reason: string) => void;

function recorded<T extends { flags?: number }>(points: T[] | undefined): T[] {
  return (points ?? []).filter((p) => ((p.flags ?? 0) & NO_RECORDED_VALUE) === 0);
}

function numberValue(point: NumberDataPoint): number {
  return point.asDouble ?? Number(point.asInt ?? 0);
}

function convertMetric(metric: Metric, base: Labels, add: Add, reject: Reject): void {
  const name = metricName(metric.name ?? "");
  if (/^_*$/.test(name)) {
    reject(countPoints(metric), `metric ${JSON.stringify(metric.name ?? "")}: no valid Prometheus name`);
    return;
  }
  if (metric.gauge) {
    for (const point of recorded(metric.gauge.dataPoints))
      add(name, pointLabels(base, point.attributes), SampleKind.Gauge, point.timeUnixNano, numberValue(point));
  } else if (metric.sum) {
    if (metric.sum.aggregationTemporality !== CUMULATIVE) {
      reject(
        metric.sum.dataPoints?.length ?? 0,
        `sum ${metric.name}: only cumulative temporality is accepted (set the exporter's temporality preference to cumulative)`,
      );
      return;
    }
    const kind = metric.sum.isMonotonic ? SampleKind.Counter : SampleKind.Gauge;
    for (const point of recorded(metric.sum.dataPoints))
      add(name, pointLabels(base, point.attributes), kind, point.timeUnixNano, numberValue(point));
  } else if (metric.histogram) {
    if (metric.histogram.aggregationTemporality !== CUMULATIVE) {
      reject(
        metric.histogram.dataPoints?.length ?? 0,
        `histogram ${metric.name}: only cumulative temporality is accepted (set the exporter's temporality preference to cumulative)`,
      );
      return;
    }
    for (const point of recorded(metric.histogram.dataPoints))
      addHistogram(name, pointLabels(base, point.attributes), point, add);
  } else if (metric.summary) {
    for (const point of recorded(metric.summary.dataPoints))
      addSummary(name, pointLabels(base, point.attributes), point, add);
  } else if (metric.exponentialHistogram) {
    reject(
      metric.exponentialHistogram.dataPoints?.length ?? 0,
      `exponential histogram ${metric.name}: not supported; use explicit bucket histograms`,
    );
  }
}

function countPoints(metric: Metric): number {
  const data = metric.gauge ?? metric.sum ?? metric.histogram ?? metric.exponentialHistogram ?? metric.summary;
  return data?.dataPoints?.length ?? 0;
}

function addHistogram(name: string, labels: Labels, point: HistogramDataPoint, add: Add): void {
  const bounds = point.explicitBounds ?? [];
  const counts = point.bucketCounts ?? [];
  let cumulative = 0;
  bounds.forEach((bound, i) => {
    cumulative += Number(counts[i] ?? 0);
    add(
      `${name}_bucket`,
      labelsOf([...Object.entries(labels), ["le", formatBound(bound)]]),
      SampleKind.HistogramBucket,
      point.timeUnixNano,
      cumulative,
    );
  });
  const count = Number(point.count ?? 0);
  add(
    `${name}_bucket`,
    labelsOf([...Object.entries(labels), ["le", "+Inf"]]),
    SampleKind.HistogramBucket,
    point.timeUnixNano,
    count,
  );
  if (point.sum !== undefined) add(`${name}_sum`, labels, SampleKind.HistogramSum, point.timeUnixNano, point.sum);
  add(`${name}_count`, labels, SampleKind.HistogramCount, point.timeUnixNano, count);
}

function addSummary(name: string, labels: Labels, point: SummaryDataPoint, add: Add): void {
  for (const { quantile = 0, value = 0 } of point.quantileValues ?? []) {
    add(
      name,
      labelsOf([...Object.entries(labels), ["quantile", String(quantile)]]),
      SampleKind.Gauge,
      point.timeUnixNano,
      value,
    );
  }
  add(`${name}_sum`, labels, SampleKind.Counter, point.timeUnixNano, point.sum ?? 0);
  add(`${name}_count`, labels, SampleKind.Counter, point.timeUnixNano, Number(point.count ?? 0));
}
