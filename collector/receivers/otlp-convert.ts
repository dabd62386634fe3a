import { type LogStream } from "../../proto/batch.js";
import { labelsOf } from "../../proto/labels.js";
import { persistedLabelsText } from "../../proto/labels.js";
import { type AnyValue, type KeyValue, type LogsRequest, OtlpDecodeError } from "./otlp-proto.js";

// OTLP logs -> Bifrost's batch model, as Loki ingests OTLP (pkg/loghttp/push/otlp.go and otlplabels): the resource
// attributes on Loki's default list become stream labels, every other attribute structured metadata. Metrics are
// otlp-metrics.ts's; the attribute helpers here serve both.

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

export function stringAttribute(attributes: KeyValue[] | undefined, key: string): string {
  return valueText(attributes?.find((kv) => kv.key === key)?.value);
}

/** A 64-bit count of nanoseconds; OTLP/JSON may carry any string there. */
export function nanos(text: string | undefined): bigint {
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
