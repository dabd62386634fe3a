import type { LogStream, MetricMetadata, Series } from "../../proto/batch.js";
import {
  type BatchLimits,
  validateMetadata,
  validateSeries,
  validateStreams,
  ValidationError,
} from "../../proto/validate.js";
import type { Batcher } from "../buffer/batcher.js";
import { WalFullError } from "../buffer/wal.js";
import type { TenantLimits } from "../../common/limits.js";
import type { TenantRateLimiter } from "../../common/rate-limit.js";
import { logsToStreams } from "./otlp-convert.js";
import { metricsToSeries, type OtlpMetricsOptions } from "./otlp-metrics.js";
import { decodeRequest, OtlpDecodeError, requestFromJson, type Signal } from "./otlp-proto.js";

// What OTLP/HTTP and OTLP/gRPC share once the bytes are in hand: tenant, decoding, limits, rate, and the hand-off
// to the batcher. The outcome names the OTLP answer; each transport spells it in its own status codes.

export interface OtlpReceiverOptions {
  batcher: Batcher;
  /** Defaults; `tenantLimits` replaces the label count and line size per tenant. */
  limits: BatchLimits;
  tenantLimits?: TenantLimits;
  rate: TenantRateLimiter | undefined;
  /** How metrics become Prometheus series, and the collector's delta-to-cumulative state. */
  metrics: OtlpMetricsOptions;
  onAccepted?: (signal: Signal, tenant: string, count: number) => void;
  onRejected?: (reason: string) => void;
}

/** The request body as it arrived: protobuf bytes, or JSON already parsed. */
export type OtlpBody = { protobuf: Uint8Array } | { json: unknown };

export type Outcome =
  | { kind: "accepted"; rejected: number; message: string }
  | { kind: "invalid"; message: string }
  | { kind: "rate_limited" | "unavailable"; message: string; retryAfterS: number };

/** Seconds a sender is asked to wait while the disk buffer is full. */
const FULL_RETRY_S = 10;

interface Converted {
  streams: LogStream[];
  series: Series[];
  metadata: MetricMetadata[];
  count: number;
  rejected: number;
  /** Reasons of the rejected points by the label they are counted under, and the message for partial_success. */
  reasons: Map<string, Set<string>>;
  undo(): void;
}

function convert(
  options: OtlpReceiverOptions,
  signal: Signal,
  tenant: string,
  body: OtlpBody,
  limits: BatchLimits,
): Converted {
  if (signal === "logs") {
    const request = "protobuf" in body ? decodeRequest("logs", body.protobuf) : requestFromJson("logs", body.json);
    const { streams, records } = logsToStreams(request);
    return { streams, series: [], metadata: [], count: records, rejected: 0, reasons: new Map(), undo: () => {} };
  }
  const request = "protobuf" in body ? decodeRequest("metrics", body.protobuf) : requestFromJson("metrics", body.json);
  const converted = metricsToSeries(request, tenant, options.metrics);
  let rejected = converted.rejected;
  const series = converted.series;
  try {
    validateSeries(series, limits);
    validateMetadata(converted.metadata);
  } catch (err) {
    converted.undo();
    throw err;
  }
  // target_info carries every resource attribute; one over a limit loses only itself, never the export.
  for (const info of converted.targetInfo) {
    try {
      validateSeries([info], limits);
      series.push(info);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      rejected += info.points.length;
      const reasons = converted.reasons.get("target_info_invalid") ?? new Set();
      reasons.add(`target_info of job ${JSON.stringify(info.labels["job"] ?? "")}: ${err.message}`);
      converted.reasons.set("target_info_invalid", reasons);
    }
  }
  return {
    streams: [],
    series,
    metadata: converted.metadata,
    count: series.reduce((n, s) => n + s.points.length, 0),
    rejected,
    reasons: converted.reasons,
    undo: converted.undo,
  };
}

/** Ingests one export for `tenant`, which the transport has authenticated. */
export async function ingestOtlp(
  options: OtlpReceiverOptions,
  signal: Signal,
  tenant: string,
  body: OtlpBody,
): Promise<Outcome> {
  const reject = (reason: string) => options.onRejected?.(reason);
  let data: Converted;
  try {
    const limits = options.tenantLimits?.batchLimits(tenant, options.limits) ?? options.limits;
    data = convert(options, signal, tenant, body, limits);
    validateStreams(data.streams, limits);
  } catch (err) {
    if (err instanceof ValidationError) {
      reject(err.reason);
      return { kind: "invalid", message: options.tenantLimits?.explain(tenant, err) ?? err.message };
    }
    if (err instanceof OtlpDecodeError) {
      reject("bad_request");
      return { kind: "invalid", message: err.message };
    }
    // Values nest (lists and maps of values) without a bound in OTLP; reading one nested deeper than the stack allows is the sender's fault.
    if (err instanceof RangeError) {
      reject("bad_request");
      return { kind: "invalid", message: `the request nests values too deeply: ${err.message}` };
    }
    throw err;
  }
  if (data.count > 0) {
    const wait = options.rate?.take(tenant, data.count) ?? 0;
    if (wait > 0) {
      data.undo();
      reject("rate_limited");
      return { kind: "rate_limited", message: options.rate!.error(tenant, data.count).message, retryAfterS: wait };
    }
    try {
      await options.batcher.add(tenant, { streams: data.streams, series: data.series, metadata: data.metadata });
    } catch (err) {
      data.undo();
      if (err instanceof WalFullError) {
        reject("buffer_full");
        return { kind: "unavailable", message: `${err.message}; retry later`, retryAfterS: FULL_RETRY_S };
      }
      throw err;
    }
    options.onAccepted?.(signal, tenant, data.count);
  }
  for (const kind of data.reasons.keys()) reject(kind);
  const message = [...data.reasons.values()].flatMap((reasons) => [...reasons]).join("; ");
  return { kind: "accepted", rejected: data.rejected, message };
}
