import type { Context, Hono } from "hono";
import protobuf from "protobufjs";
import { tenantOf } from "../../common/auth.js";
import type { TenantLimits } from "../../common/limits.js";
import { SampleKind, type Series } from "../../proto/batch.js";
import type { Labels } from "../../proto/labels.js";
import { protoFile } from "../../proto/files.js";
import { type BatchLimits, checkLabels, LABEL_NAME, METRIC_NAME, ValidationError } from "../../proto/validate.js";
import { ContractError, type IngestContract } from "../../common/ingest-contract.js";
import { type Admission, OverloadedError, type Ticket } from "../../common/admission.js";
import { declaredLength, plainBodyLimit } from "../../common/http-body.js";
import type { Batcher } from "../buffer/batcher.js";
import { WalFullError } from "../buffer/wal.js";
import type { TenantRateLimiter } from "../../common/rate-limit.js";
import { snappyLength, uncompressSnappy } from "../../proto/snappy-block.js";

// POST /api/v1/write: Prometheus remote write, 1.0 (prometheus.WriteRequest) and 2.0 (io.prometheus.write.v2.Request,
// chosen by the Content-Type's proto parameter), snappy-compressed protobuf. Answers as the specification asks
// of a receiver: 204 once the samples are in the disk buffer; 400 for data that must not be sent again (not
// protobuf, a series with bad labels or over a limit: the other series of the request are kept, the answer names
// what was refused); 413 over the body size; 415 for another content type or encoding; 429 over the tenant's rate
// and 503 while the disk buffer is full or the receivers are busy (common/admission.ts), both with Retry-After. Prometheus retries 5xx always and 429 with
// `retry_on_http_429: true` in its queue_config. 2.0 answers carry the X-Prometheus-Remote-Write-*-Written headers.
//
// Native histograms and exemplars are not stored: histograms are refused (counted, named in the 400), exemplars
// are dropped. Metric types come from the request's metadata (1.0 sends it in requests of its own, remembered per
// tenant; 2.0 inline), else from the name's suffix; they only decide which series rollups treat as counters.

export interface RemoteWriteOptions {
  batcher: Pick<Batcher, "add">;
  /** What every later stage accepts, checked on the series as decoded (ContractError: its 4xx). */
  contract?: Pick<IngestContract, "admit">;
  /** The budget of requests in flight, shared with the listener's other receivers. */
  admission: Admission;
  /** Defaults; `tenantLimits` replaces the label count per tenant. */
  limits: BatchLimits;
  tenantLimits?: TenantLimits;
  rate: TenantRateLimiter | undefined;
  /** The largest body; its decompressed size may be ten times that. */
  maxBodyBytes: number;
  onAccepted?: (tenant: string, samples: number) => void;
  onRejected?: (reason: string, samples: number) => void;
}

const V1 = "prometheus.WriteRequest";
const V2 = "io.prometheus.write.v2.Request";
/** Seconds a sender is asked to wait while the disk buffer is full. */
const FULL_RETRY_S = 10;

const v1Root = protobuf.loadSync(protoFile("prometheus/remote.proto"));
const v2Root = protobuf.loadSync(protoFile("prometheus/write-v2.proto"));
const WriteRequestV1 = v1Root.lookupType("prometheus.WriteRequest");
const RequestV2 = v2Root.lookupType("io.prometheus.write.v2.Request");

type Int64 = number | { toNumber(): number };
interface WireSample {
  value: number;
  timestamp: Int64;
}
interface WireV1 {
  timeseries: { labels: { name: string; value: string }[]; samples: WireSample[]; histograms: Uint8Array[] }[];
  metadata: { type: number; metricFamilyName: string }[];
}
interface WireV2 {
  symbols: string[];
  timeseries: {
    labelsRefs: number[];
    samples: WireSample[];
    histograms: Uint8Array[];
    metadata?: { type: number } | null;
  }[];
}

class BadRequest extends Error {}

/** MetricMetadata.MetricType (the same numbers in both versions) as the kind of a sample of the family. */
const METADATA_TYPES = ["unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset"];

function int64(value: Int64): number {
  return typeof value === "number" ? value : value.toNumber();
}

/** The kind of a series from its family's type when known, else from its name as Prometheus names things. */
function kindOf(name: string, labels: Labels, type: string | undefined): SampleKind {
  const counterLike = (suffix: string) =>
    suffix === "_bucket"
      ? SampleKind.HistogramBucket
      : suffix === "_sum"
        ? SampleKind.HistogramSum
        : SampleKind.HistogramCount;
  const suffix = /(_bucket|_sum|_count|_total|_created)$/.exec(name)?.[1] ?? "";
  switch (type) {
    case "counter":
      return suffix === "_created" ? SampleKind.Gauge : SampleKind.Counter;
    case "histogram":
      return suffix === "_bucket" || suffix === "_sum" || suffix === "_count" ? counterLike(suffix) : SampleKind.Gauge;
    case "summary":
      return suffix === "_sum" || suffix === "_count" ? SampleKind.Counter : SampleKind.Gauge;
    case undefined:
    case "unknown":
      if (suffix === "_total") return SampleKind.Counter;
      if (suffix === "_bucket" && labels["le"] !== undefined) return SampleKind.HistogramBucket;
      return SampleKind.Gauge;
    default:
      return SampleKind.Gauge;
  }
}

/** The metric types 1.0 senders announce in metadata-only requests, per tenant and family, most recent kept. */
class MetadataCache {
  private readonly types = new Map<string, string>();
  constructor(private readonly max = 100_000) {}

  set(tenant: string, family: string, type: string): void {
    const key = `${tenant}\u0000${family}`;
    this.types.delete(key);
    this.types.set(key, type);
    if (this.types.size > this.max) this.types.delete(this.types.keys().next().value!);
  }

  /** The type of the family a series name belongs to (its own name, or the name without a family suffix). */
  typeOf(tenant: string, name: string): string | undefined {
    const own = this.types.get(`${tenant}\u0000${name}`);
    if (own !== undefined) return own;
    const family = /^(.*)(_bucket|_sum|_count|_total|_created)$/.exec(name)?.[1];
    return family === undefined ? undefined : this.types.get(`${tenant}\u0000${family}`);
  }
}

interface Decoded {
  series: Series[];
  samples: number;
  /** Samples refused, by reason, with the first message of each reason. */
  refused: Map<string, { samples: number; message: string }>;
  histograms: number;
}

/** Turns one series' labels and samples into a Series, or names why it is refused. */
function toSeries(
  pairs: [string, string][],
  samples: WireSample[],
  type: (name: string) => string | undefined,
  limits: BatchLimits,
): Series | { reason: string; message: string } {
  const labels: Labels = Object.create(null);
  let name: string | undefined;
  for (const [label, value] of pairs) {
    if (label === "__name__") {
      if (name !== undefined) return { reason: "duplicate_label", message: "label __name__ appears twice" };
      name = value;
      continue;
    }
    if (!LABEL_NAME.test(label))
      return {
        reason: "invalid_label_name",
        message: `label name ${JSON.stringify(label.slice(0, 100))} is not valid`,
      };
    if (label in labels) return { reason: "duplicate_label", message: `label ${label} appears twice` };
    if (value !== "") labels[label] = value;
  }
  if (name === undefined || name === "") return { reason: "missing_metric_name", message: "a series without __name__" };
  if (!METRIC_NAME.test(name))
    return { reason: "invalid_metric_name", message: `metric name ${JSON.stringify(name.slice(0, 100))} is not valid` };
  try {
    checkLabels(labels, limits, name);
  } catch (err) {
    if (err instanceof ValidationError) return { reason: err.reason, message: err.message };
    throw err;
  }
  const points = samples.map((s) => {
    const timeUnixMs = int64(s.timestamp);
    return { timeUnixMs, value: s.value };
  });
  if (points.some((p) => !Number.isSafeInteger(p.timeUnixMs)))
    return { reason: "invalid_timestamp", message: `series ${name}: a timestamp outside the safe integer range` };
  return { name, labels, kind: kindOf(name, labels, type(name)), points };
}

function decode(
  version: typeof V1 | typeof V2,
  bytes: Buffer,
  tenant: string,
  limits: BatchLimits,
  metadata: MetadataCache,
): Decoded {
  const out: Decoded = { series: [], samples: 0, refused: new Map(), histograms: 0 };
  const refuse = (reason: string, samples: number, message: string) => {
    const known = out.refused.get(reason);
    if (known) known.samples += samples;
    else out.refused.set(reason, { samples, message });
  };
  const add = (result: ReturnType<typeof toSeries>, samples: number) => {
    if ("reason" in result) refuse(result.reason, samples, result.message);
    else if (result.points.length > 0) {
      out.series.push(result);
      out.samples += result.points.length;
    }
  };
  let wire;
  try {
    wire = (version === V1 ? WriteRequestV1 : RequestV2).decode(bytes) as unknown as WireV1 | WireV2;
  } catch (err) {
    throw new BadRequest(`the body is not a snappy-compressed ${version}: ${(err as Error).message}`);
  }
  if (version === V1) {
    const request = wire as WireV1;
    for (const m of request.metadata) metadata.set(tenant, m.metricFamilyName, METADATA_TYPES[m.type] ?? "unknown");
    for (const ts of request.timeseries) {
      out.histograms += ts.histograms.length;
      add(
        toSeries(
          ts.labels.map((l) => [l.name, l.value]),
          ts.samples,
          (name) => metadata.typeOf(tenant, name),
          limits,
        ),
        ts.samples.length,
      );
    }
  } else {
    const { symbols, timeseries } = wire as WireV2;
    if (symbols.length > 0 && symbols[0] !== "") throw new BadRequest("symbols[0] must be the empty string");
    const symbol = (ref: number) => {
      const text = symbols[ref];
      if (text === undefined) throw new BadRequest(`symbol reference ${ref} beyond the ${symbols.length} symbols`);
      return text;
    };
    for (const ts of timeseries) {
      if (ts.labelsRefs.length % 2 !== 0) throw new BadRequest("labels_refs must hold name and value pairs");
      const pairs: [string, string][] = [];
      for (let i = 0; i < ts.labelsRefs.length; i += 2)
        pairs.push([symbol(ts.labelsRefs[i]!), symbol(ts.labelsRefs[i + 1]!)]);
      out.histograms += ts.histograms.length;
      const type = METADATA_TYPES[ts.metadata?.type ?? 0];
      add(
        toSeries(pairs, ts.samples, () => (type === "unknown" ? undefined : type), limits),
        ts.samples.length,
      );
    }
  }
  if (out.histograms > 0)
    refuse(
      "native_histogram",
      out.histograms,
      "native histograms are not stored; send classic histograms (_bucket, _sum, _count series)",
    );
  return out;
}

/** Remote write's media type and protobuf message, or the 415 answer's reason. */
function messageOf(c: Context): typeof V1 | typeof V2 | { unsupported: string } {
  const [media = "", ...params] = (c.req.header("Content-Type") ?? "application/x-protobuf").split(";");
  if (media.trim().toLowerCase() !== "application/x-protobuf")
    return {
      unsupported: `unsupported Content-Type ${JSON.stringify(media.trim())}; remote write sends application/x-protobuf`,
    };
  const proto = params.map((p) => p.trim().split("=")).find(([key]) => key?.toLowerCase() === "proto")?.[1] ?? V1;
  if (proto === V1 || proto === V2) return proto;
  return { unsupported: `unsupported proto ${JSON.stringify(proto)}; this receiver reads ${V1} and ${V2}` };
}

export function remoteWriteRoute(app: Hono, options: RemoteWriteOptions): void {
  const reject = (reason: string, samples = 0) => options.onRejected?.(reason, samples);
  const metadata = new MetadataCache();
  const maxDecompressed = options.maxBodyBytes * 10;
  app.post("/api/v1/write", plainBodyLimit(options.maxBodyBytes, reject), async (c) => {
    const tenant = tenantOf(c);
    const version = messageOf(c);
    if (typeof version === "object") {
      reject("unsupported_media_type");
      return c.text(`${version.unsupported}\n`, 415);
    }
    const encoding = (c.req.header("Content-Encoding") ?? "").trim().toLowerCase();
    if (encoding !== "snappy") {
      reject("unsupported_encoding");
      return c.text(`unsupported Content-Encoding ${JSON.stringify(encoding)}; remote write bodies are snappy\n`, 415);
    }
    let ticket: Ticket | undefined;
    try {
      ticket = await options.admission.enter(declaredLength(c, options.maxBodyBytes));
      return await receive(c, tenant, version, ticket);
    } catch (err) {
      if (!(err instanceof OverloadedError)) throw err;
      reject("overloaded");
      return c.text(`${err.message}\n`, 503, { "Retry-After": String(err.retryAfterS) });
    } finally {
      ticket?.release();
    }
  });

  /** The request's samples to the batcher, within `ticket`, which holds the body and then its decompressed size. */
  async function receive(c: Context, tenant: string, version: typeof V1 | typeof V2, ticket: Ticket) {
    let decoded: Decoded;
    try {
      const raw = Buffer.from(await c.req.arrayBuffer());
      await ticket.resize(raw.length);
      const length = snappyLength(raw);
      if (length === undefined) throw new BadRequest("the body is not snappy-compressed");
      if (length > maxDecompressed)
        throw new BadRequest(`the decompressed body would be ${length} bytes, more than ${maxDecompressed}`);
      await ticket.resize(length);
      let bytes: Buffer;
      try {
        bytes = await uncompressSnappy(raw);
      } catch (err) {
        throw new BadRequest(`the body is not valid snappy: ${(err as Error).message}`);
      }
      const limits = options.tenantLimits?.batchLimits(tenant, options.limits) ?? options.limits;
      decoded = decode(version, bytes, tenant, limits, metadata);
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      reject("bad_request");
      return c.text(`${err.message}\n`, 400);
    }
    if (decoded.samples > 0 && options.contract) {
      try {
        options.contract.admit(tenant, { series: decoded.series });
      } catch (err) {
        if (!(err instanceof ContractError)) throw err;
        reject(err.reason, decoded.samples);
        return c.text(`${err.message}\n`, err.status);
      }
    }
    if (decoded.samples > 0) {
      const wait = options.rate?.take(tenant, decoded.samples) ?? 0;
      if (wait > 0) {
        reject("rate_limited", decoded.samples);
        return c.text(`${options.rate!.error(tenant, decoded.samples).message}\n`, 429, {
          "Retry-After": String(wait),
        });
      }
      try {
        await options.batcher.add(tenant, { series: decoded.series }, { senderWaits: true });
      } catch (err) {
        if (err instanceof WalFullError) {
          reject("buffer_full", decoded.samples);
          return c.text(`${err.message}; retry later\n`, 503, { "Retry-After": String(FULL_RETRY_S) });
        }
        throw err;
      }
      options.onAccepted?.(tenant, decoded.samples);
    }
    const written: Record<string, string> =
      version === V2
        ? {
            "X-Prometheus-Remote-Write-Samples-Written": String(decoded.samples),
            "X-Prometheus-Remote-Write-Histograms-Written": "0",
            "X-Prometheus-Remote-Write-Exemplars-Written": "0",
          }
        : {};
    if (decoded.refused.size === 0) return c.body(null, 204, written);
    for (const [reason, { samples }] of decoded.refused) reject(reason, samples);
    const summary = [...decoded.refused].map(
      ([reason, { samples, message }]) =>
        `${samples} ${reason === "native_histogram" ? "histograms" : "samples"} refused (${reason}): ${message}`,
    );
    return c.text(`${decoded.samples} samples written; ${summary.join("; ")}\n`, 400, written);
  }
}
