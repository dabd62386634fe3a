import type { LogStream, Series } from "../../proto/batch.js";
import { type BatchLimits, validateSeries, validateStreams, ValidationError } from "../../proto/validate.js";
import type { Batcher } from "../buffer/batcher.js";
import { WalFullError } from "../buffer/wal.js";
import type { TenantLimits } from "../../common/limits.js";
import type { TenantRateLimiter } from "../../common/rate-limit.js";
import { logsToStreams, metricsToSeries } from "./otlp-convert.js";
import { decodeRequest, OtlpDecodeError, requestFromJson, type Signal } from "./otlp-proto.js";

// What OTLP/HTTP and OTLP/gRPC share once the bytes are in hand: tenant, decoding, limits, rate, and the hand-off
// to the batcher. The outcome names the OTLP answer; each transport spells it in its own status codes.

export interface OtlpReceiverOptions {
  batcher: Batcher;
  /** Defaults; `tenantLimits` replaces the label count and line size per tenant. */
  limits: BatchLimits;
  tenantLimits?: TenantLimits;
  rate: TenantRateLimiter | undefined;
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

function convert(
  signal: Signal,
  body: OtlpBody,
): { streams: LogStream[]; series: Series[]; count: number; rejected: number; message: string } {
  if (signal === "logs") {
    const request = "protobuf" in body ? decodeRequest("logs", body.protobuf) : requestFromJson("logs", body.json);
    const { streams, records } = logsToStreams(request);
    return { streams, series: [], count: records, rejected: 0, message: "" };
  }
  const request = "protobuf" in body ? decodeRequest("metrics", body.protobuf) : requestFromJson("metrics", body.json);
  const { series, rejected, reasons } = metricsToSeries(request);
  return {
    streams: [],
    series,
    count: series.reduce((n, s) => n + s.points.length, 0),
    rejected,
    message: reasons.join("; "),
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
  let data;
  try {
    data = convert(signal, body);
    const limits = options.tenantLimits?.batchLimits(tenant, options.limits) ?? options.limits;
    validateStreams(data.streams, limits);
    validateSeries(data.series, limits);
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
      reject("rate_limited");
      return { kind: "rate_limited", message: options.rate!.error(tenant, data.count).message, retryAfterS: wait };
    }
    try {
      await options.batcher.add(tenant, { streams: data.streams, series: data.series });
    } catch (err) {
      if (err instanceof WalFullError) {
        reject("buffer_full");
        return { kind: "unavailable", message: `${err.message}; retry later`, retryAfterS: FULL_RETRY_S };
      }
      throw err;
    }
    options.onAccepted?.(signal, tenant, data.count);
  }
  if (data.rejected > 0) reject("unsupported_metric");
  return { kind: "accepted", rejected: data.rejected, message: data.message };
}
