import type { LogStream, MetricMetadata, Series } from "../../proto/batch.js";
import type { Batcher } from "../buffer/batcher.js";
import { WalFullError } from "../buffer/wal.js";
import type { Admission } from "../../common/admission.js";
import { ContractError, type IngestContract } from "../../common/ingest-contract.js";
import type { TenantRateLimiter } from "../../common/rate-limit.js";
import { logsToStreams } from "./otlp-convert.js";
import { metricsToSeries, type OtlpMetricsOptions } from "./otlp-metrics.js";
import { decodeRequest, OtlpDecodeError, requestFromJson, type Signal } from "./otlp-proto.js";

// What OTLP/HTTP and OTLP/gRPC share once the bytes are in hand (within the transport's admission ticket):
// decoding, the ingestion contract, rate, and the hand-off to the batcher. The outcome names the OTLP answer;
// each transport spells it in its own status codes.

export interface OtlpReceiverOptions {
  batcher: Pick<Batcher, "add">;
  /** What may be acknowledged: limits, timestamps, sizes after conversion. */
  contract: IngestContract;
  /** The budget of requests in flight, shared with the collector's other receivers. */
  admission: Admission;
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
  | { kind: "invalid" | "too_large"; message: string }
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

/** The request converted and checked against the ingestion contract (ContractError when it is outside). */
function convert(options: OtlpReceiverOptions, signal: Signal, tenant: string, body: OtlpBody): Converted {
  if (signal === "logs") {
    const request = "protobuf" in body ? decodeRequest("logs", body.protobuf) : requestFromJson("logs", body.json);
    const { streams, records } = logsToStreams(request);
    options.contract.admit(tenant, { streams });
    return { streams, series: [], metadata: [], count: records, rejected: 0, reasons: new Map(), undo: () => {} };
  }
  const request = "protobuf" in body ? decodeRequest("metrics", body.protobuf) : requestFromJson("metrics", body.json);
  const converted = metricsToSeries(request, tenant, options.metrics);
  let rejected = converted.rejected;
  const series = converted.series;
  try {
    options.contract.admit(tenant, { series, metadata: converted.metadata });
  } catch (err) {
    converted.undo();
    throw err;
  }
  // target_info carries every resource attribute; one over a limit loses only itself, never the export.
  for (const info of converted.targetInfo) {
    const refused = options.contract
      .screen(tenant, { series: [info] })
      .refused.values()
      .next().value;
    if (refused === undefined) {
      series.push(info);
      continue;
    }
    rejected += info.points.length;
    const reasons = converted.reasons.get("target_info_invalid") ?? new Set();
    reasons.add(`target_info of job ${JSON.stringify(info.labels["job"] ?? "")}: ${refused.message}`);
    converted.reasons.set("target_info_invalid", reasons);
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
    data = convert(options, signal, tenant, body);
  } catch (err) {
    if (err instanceof ContractError) {
      reject(err.reason);
      return { kind: err.status === 413 ? "too_large" : "invalid", message: err.message };
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
      await options.batcher.add(
        tenant,
        { streams: data.streams, series: data.series, metadata: data.metadata },
        { senderWaits: true },
      );
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
