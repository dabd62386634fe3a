import { createRequire } from "node:module";
import protobuf from "protobufjs";
import { protoFile } from "../../proto/files.js";

// The OTLP messages come from the protobufjs root that OpenTelemetry generated from opentelemetry-proto and
// published in @opentelemetry/otlp-transformer (0.214.0 is the last release that ships it; installed under the
// alias otlp-transformer-protobufjs). No OpenTelemetry npm release ships a current set of the .proto files.

interface MessageType {
  decode(bytes: Uint8Array): object;
  encode(message: object): { finish(): Uint8Array };
  fromObject(object: object): object;
  toObject(message: object, options: protobuf.IConversionOptions): Record<string, unknown>;
}

interface OtlpRoot {
  opentelemetry: {
    proto: {
      collector: {
        logs: { v1: { ExportLogsServiceRequest: MessageType; ExportLogsServiceResponse: MessageType } };
        metrics: { v1: { ExportMetricsServiceRequest: MessageType; ExportMetricsServiceResponse: MessageType } };
      };
    };
  };
}

const otlp = (createRequire(import.meta.url)("otlp-transformer-protobufjs/build/src/generated/root.js") as OtlpRoot)
  .opentelemetry.proto.collector;
const rpc = protobuf.loadSync(protoFile("rpc-status.proto"));
const Status = rpc.lookupType("google.rpc.Status");
const RetryInfo = rpc.lookupType("google.rpc.RetryInfo");

/** Input the OTLP decoders refuse: truncated or mistyped protobuf, JSON of the wrong shape, bad hex ids. */
export class OtlpDecodeError extends Error {
  override readonly name = "OtlpDecodeError";
}

// The plain form both encodings are read into: 64-bit integers as decimal strings, bytes as Buffers, enums as
// numbers, fields at their default left out (proto3).
const PLAIN: protobuf.IConversionOptions = { longs: String, enums: Number };

export interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
  bytesValue?: Uint8Array;
}

export interface KeyValue {
  key?: string;
  value?: AnyValue;
}

export interface Scope {
  name?: string;
  version?: string;
  attributes?: KeyValue[];
}

export interface LogRecord {
  timeUnixNano?: string;
  observedTimeUnixNano?: string;
  severityNumber?: number;
  severityText?: string;
  body?: AnyValue;
  attributes?: KeyValue[];
  droppedAttributesCount?: number;
  flags?: number;
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  eventName?: string;
}

export interface LogsRequest {
  resourceLogs?: {
    resource?: { attributes?: KeyValue[] };
    scopeLogs?: { scope?: Scope; logRecords?: LogRecord[] }[];
  }[];
}

export interface NumberDataPoint {
  attributes?: KeyValue[];
  startTimeUnixNano?: string;
  timeUnixNano?: string;
  asDouble?: number;
  asInt?: string;
  flags?: number;
}

export interface HistogramDataPoint {
  attributes?: KeyValue[];
  startTimeUnixNano?: string;
  timeUnixNano?: string;
  count?: string;
  sum?: number;
  bucketCounts?: string[];
  explicitBounds?: number[];
  flags?: number;
}

export interface SummaryDataPoint {
  attributes?: KeyValue[];
  timeUnixNano?: string;
  count?: string;
  sum?: number;
  quantileValues?: { quantile?: number; value?: number }[];
  flags?: number;
}

export interface Metric {
  name?: string;
  description?: string;
  unit?: string;
  gauge?: { dataPoints?: NumberDataPoint[] };
  sum?: { dataPoints?: NumberDataPoint[]; aggregationTemporality?: number; isMonotonic?: boolean };
  histogram?: { dataPoints?: HistogramDataPoint[]; aggregationTemporality?: number };
  exponentialHistogram?: { dataPoints?: unknown[] };
  summary?: { dataPoints?: SummaryDataPoint[] };
}

export interface MetricsRequest {
  resourceMetrics?: {
    resource?: { attributes?: KeyValue[] };
    scopeMetrics?: { scope?: Scope; metrics?: Metric[]; schemaUrl?: string }[];
  }[];
}

export type Signal = "logs" | "metrics";

const REQUEST: Record<Signal, MessageType> = {
  logs: otlp.logs.v1.ExportLogsServiceRequest,
  metrics: otlp.metrics.v1.ExportMetricsServiceRequest,
};
const RESPONSE: Record<Signal, MessageType> = {
  logs: otlp.logs.v1.ExportLogsServiceResponse,
  metrics: otlp.metrics.v1.ExportMetricsServiceResponse,
};

export function decodeRequest(signal: "logs", bytes: Uint8Array): LogsRequest;
export function decodeRequest(signal: "metrics", bytes: Uint8Array): MetricsRequest;
export function decodeRequest(signal: Signal, bytes: Uint8Array): LogsRequest | MetricsRequest {
  const type = REQUEST[signal];
  try {
    return type.toObject(type.decode(bytes), PLAIN);
  } catch (err) {
    throw new OtlpDecodeError(`the body is not an OTLP ${signal} request in protobuf: ${(err as Error).message}`);
  }
}

const HEX_ID = /^(?:[0-9a-fA-F]{2})*$/;
const ID_FIELDS = new Set(["traceId", "spanId"]);
/** The 64-bit integer fields of the logs and metrics requests, which protobufjs would read as 0 when not a number. */
const INT64_FIELDS = new Set([
  "timeUnixNano",
  "observedTimeUnixNano",
  "startTimeUnixNano",
  "intValue",
  "asInt",
  "count",
  "zeroCount",
  "bucketCounts",
]);
const INT64 = /^-?\d{1,20}$/;

/**
 * Checks an OTLP/JSON body where protobuf's JSON mapping, which protobufjs follows, differs from OTLP/JSON or is
 * lenient: trace and span ids are hex (not base64), and a 64-bit integer that is not one is an error, not 0.
 */
function prepareJson(value: unknown, where: string): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => prepareJson(item, `${where}[${i}]`));
    return;
  }
  if (typeof value !== "object" || value === null) return;
  const object = value as Record<string, unknown>;
  for (const [key, field] of Object.entries(object)) {
    const path = `${where}.${key}`;
    if (ID_FIELDS.has(key)) {
      if (field === undefined || field === "") continue;
      if (typeof field !== "string" || !HEX_ID.test(field)) throw new OtlpDecodeError(`${path} must be a hex string`);
      object[key] = Buffer.from(field, "hex").toString("base64");
    } else if (INT64_FIELDS.has(key)) {
      for (const n of Array.isArray(field) ? field : [field]) {
        if (n !== null && !(typeof n === "string" ? INT64.test(n) : Number.isSafeInteger(n)))
          throw new OtlpDecodeError(`${path}: ${JSON.stringify(n)?.slice(0, 40)} is not an integer`);
      }
    } else prepareJson(field, path);
  }
}

/** Reads an already parsed OTLP/JSON body (lowerCamelCase keys, hex ids, 64-bit integers as strings or numbers). */
export function requestFromJson(signal: "logs", body: unknown): LogsRequest;
export function requestFromJson(signal: "metrics", body: unknown): MetricsRequest;
export function requestFromJson(signal: Signal, body: unknown): LogsRequest | MetricsRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new OtlpDecodeError(`the body must be a JSON object (an OTLP ${signal} request)`);
  prepareJson(body, "");
  const type = REQUEST[signal];
  try {
    return type.toObject(type.fromObject(body), PLAIN);
  } catch (err) {
    throw new OtlpDecodeError(`the body is not an OTLP ${signal} request in JSON: ${(err as Error).message}`);
  }
}

/** ExportLogsServiceResponse / ExportMetricsServiceResponse, with partial_success when something was rejected. */
export function exportResponse(signal: Signal, rejected: number, message: string): object {
  const counted = signal === "logs" ? "rejectedLogRecords" : "rejectedDataPoints";
  return RESPONSE[signal].fromObject(
    rejected > 0 || message !== "" ? { partialSuccess: { [counted]: rejected, errorMessage: message } } : {},
  );
}

export function encodeResponse(signal: Signal, response: object): Uint8Array {
  return RESPONSE[signal].encode(response).finish();
}

/** The OTLP/JSON form of a response: 64-bit counts as strings, as protobuf's JSON mapping writes them. */
export function responseJson(signal: Signal, response: object): Record<string, unknown> {
  return RESPONSE[signal].toObject(response, PLAIN);
}

/** google.rpc.Status, optionally with a RetryInfo detail. */
export function encodeStatus(code: number, message: string, retryAfterS?: number): Uint8Array {
  const details =
    retryAfterS === undefined
      ? []
      : [
          {
            type_url: "type.googleapis.com/google.rpc.RetryInfo",
            value: RetryInfo.encode(RetryInfo.fromObject({ retryDelay: { seconds: retryAfterS } })).finish(),
          },
        ];
  return Status.encode(Status.fromObject({ code, message, details })).finish();
}

export function decodeStatus(bytes: Uint8Array): { code: number; message: string; retryAfterS?: number } {
  const status = Status.toObject(Status.decode(bytes), { longs: Number }) as {
    code?: number;
    message?: string;
    details?: { type_url: string; value: Uint8Array }[];
  };
  const retry = status.details?.find((d) => d.type_url.endsWith("/google.rpc.RetryInfo"));
  const delay = retry
    ? (RetryInfo.toObject(RetryInfo.decode(retry.value), { longs: Number }) as { retryDelay?: { seconds?: number } })
        .retryDelay
    : undefined;
  return {
    code: status.code ?? 0,
    message: status.message ?? "",
    ...(delay ? { retryAfterS: delay.seconds ?? 0 } : {}),
  };
}
