import { protoFile } from "../../proto/files.js";
import { promisify } from "node:util";
import { gunzip, inflate } from "node:zlib";
import type { Hono } from "hono";
import { tenantOf } from "../../common/auth.js";
import type { TenantLimitError, TenantLimits } from "../../common/limits.js";
import { bodyLimit } from "hono/body-limit";
import protobuf from "protobufjs";
import { labelsOf, type Labels, type LogStream, NO_LABELS } from "../../proto/batch.js";
import { type BatchLimits, validateStreams, ValidationError } from "../../proto/validate.js";
import type { Batcher } from "../batcher.js";
import { WalFullError } from "../wal.js";
import { LabelSetError, parseLabelSet } from "./labelset.js";
import { snappyLength, uncompressSnappy } from "./snappy-block.js";

// POST /loki/api/v1/push as Loki serves it: JSON (optionally gzip/deflate), or snappy-compressed protobuf
// (Promtail, Grafana Alloy, Fluent Bit). 204 once the entries are in the disk buffer; 400 with the reason for
// malformed input or broken limits, 413 for a body over the limit, 429 over the tenant's rate, 503 with
// Retry-After while the disk buffer is full under policy `block`.

export interface LokiReceiverOptions {
  /** Where accepted streams go: the batcher on a collector, the store on the query service. */
  batcher: Pick<Batcher, "add">;
  /** Defaults; `tenantLimits` replaces the label count and line size per tenant. */
  limits: BatchLimits;
  tenantLimits?: TenantLimits;
  maxBodyBytes: number;
  /** Entries per second per tenant. */
  rate: TenantRateLimiter | undefined;
  onAccepted?: (tenant: string, entries: number) => void;
  onRejected?: (reason: string) => void;
}

class BadRequest extends Error {}

const pushRoot = protobuf.loadSync(protoFile("loki/push.proto"));
const PushRequest = pushRoot.lookupType("logproto.PushRequest");

interface WirePush {
  streams: {
    labels: string;
    entries: {
      timestamp?: { seconds?: number | { low: number; high: number }; nanos?: number };
      line: string;
      structuredMetadata: { name: string; value: string }[];
    }[];
  }[];
}

/** A token bucket per tenant: `rate` entries per second, bursts up to `burst`. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  /** Takes `count` tokens, or returns the seconds until they would be there. */
  take(tenant: string, count: number): number {
    const now = Date.now();
    const bucket = this.buckets.get(tenant) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.rate);
    bucket.at = now;
    this.buckets.set(tenant, bucket);
    if (count <= bucket.tokens) {
      bucket.tokens -= count;
      return 0;
    }
    return Math.ceil((count - bucket.tokens) / this.rate);
  }
}

/**
 * RateLimiter with each tenant's own rate and burst (overrides.<tenant>.rate_entries_per_s and burst_entries);
 * a tenant whose rate is 0 is not limited.
 */
export class TenantRateLimiter {
  private readonly limiters = new Map<string, RateLimiter | null>();

  constructor(private readonly limits: TenantLimits) {}

  /** Takes `count` tokens of the tenant's bucket, or returns the seconds until they would be there. */
  take(tenant: string, count: number): number {
    let limiter = this.limiters.get(tenant);
    if (limiter === undefined) {
      const rate = this.limits.get(tenant, "rate_entries_per_s");
      limiter = rate > 0 ? new RateLimiter(rate, this.limits.get(tenant, "burst_entries") || rate * 10) : null;
      this.limiters.set(tenant, limiter);
    }
    return limiter?.take(tenant, count) ?? 0;
  }

  /** The 429 error for a tenant over its rate with `count` entries. */
  error(tenant: string, count: number): TenantLimitError {
    return this.limits.error(
      tenant,
      "rate_entries_per_s",
      `ingestion rate limit exceeded while attempting to ingest ${count} entries (burst ${this.limits.get(tenant, "burst_entries") || "ten seconds of the rate"}); retry later`,
      429,
    );
  }
}

function nsFromString(text: unknown, where: string): bigint {
  if (typeof text !== "string" || !/^\d{1,19}$/.test(text))
    throw new BadRequest(`${where}: the timestamp must be a string of Unix nanoseconds`);
  return BigInt(text);
}

function fromJson(body: unknown): LogStream[] {
  const streams = (body as { streams?: unknown })?.streams;
  if (!Array.isArray(streams)) throw new BadRequest('the body must be {"streams": [...]}');
  return streams.map((stream: { stream?: unknown; values?: unknown }, s) => {
    if (typeof stream?.stream !== "object" || stream.stream === null || Array.isArray(stream.stream))
      throw new BadRequest(`streams[${s}].stream must be an object of labels`);
    if (!Array.isArray(stream.values)) throw new BadRequest(`streams[${s}].values must be an array`);
    const labels = labelsOf(
      Object.entries(stream.stream).map(([name, value]) => {
        if (typeof value !== "string") throw new BadRequest(`streams[${s}].stream.${name} must be a string`);
        return [name, value];
      }),
    );
    return {
      labels,
      entries: stream.values.map((value: unknown, e) => {
        const where = `streams[${s}].values[${e}]`;
        if (!Array.isArray(value) || value.length < 2 || value.length > 3)
          throw new BadRequest(`${where} must be [timestamp, line] or [timestamp, line, metadata]`);
        if (typeof value[1] !== "string") throw new BadRequest(`${where}: the line must be a string`);
        const metadata = value[2];
        if (metadata === undefined || metadata === null)
          return { timeUnixNano: nsFromString(value[0], where), line: value[1], metadata: NO_LABELS };
        if (
          typeof metadata !== "object" ||
          Array.isArray(metadata) ||
          Object.values(metadata).some((v) => typeof v !== "string")
        ) {
          throw new BadRequest(`${where}: structured metadata must be an object of strings`);
        }
        return {
          timeUnixNano: nsFromString(value[0], where),
          line: value[1],
          metadata: labelsOf(Object.entries(metadata as Record<string, string>)),
        };
      }),
    };
  });
}

async function fromProtobuf(body: Buffer, maxBytes: number): Promise<LogStream[]> {
  const length = snappyLength(body);
  if (length === undefined) throw new BadRequest("the body is not snappy-compressed protobuf");
  if (length > maxBytes) throw new BadRequest(`the decompressed body would exceed ${maxBytes} bytes`);
  let wire: WirePush;
  try {
    wire = PushRequest.decode(await uncompressSnappy(body)) as unknown as WirePush;
  } catch (err) {
    throw new BadRequest(`the body is not a snappy-compressed Loki PushRequest: ${(err as Error).message}`);
  }
  return wire.streams.map((stream, s) => {
    let labels: Labels;
    try {
      labels = parseLabelSet(stream.labels);
    } catch (err) {
      if (err instanceof LabelSetError)
        throw new BadRequest(`streams[${s}].labels ${JSON.stringify(stream.labels.slice(0, 200))}: ${err.message}`);
      throw err;
    }
    return {
      labels,
      entries: stream.entries.map((entry) => {
        const seconds = entry.timestamp?.seconds ?? 0;
        const secs =
          typeof seconds === "number"
            ? BigInt(seconds)
            : (BigInt(seconds.high >>> 0) << 32n) | BigInt(seconds.low >>> 0);
        return {
          timeUnixNano: secs * 1_000_000_000n + BigInt(entry.timestamp?.nanos ?? 0),
          line: entry.line,
          metadata:
            entry.structuredMetadata.length === 0
              ? NO_LABELS
              : labelsOf(entry.structuredMetadata.map((m) => [m.name, m.value])),
        };
      }),
    };
  });
}

async function decodeJsonBody(raw: Buffer, encoding: string, maxBytes: number): Promise<unknown> {
  let text = raw;
  if (encoding !== "" && encoding !== "identity" && encoding !== "gzip" && encoding !== "deflate")
    throw new BadRequest(`unsupported Content-Encoding ${encoding}`);
  try {
    if (encoding === "gzip") text = await promisify(gunzip)(raw, { maxOutputLength: maxBytes });
    else if (encoding === "deflate") text = await promisify(inflate)(raw, { maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw err;
    // A corrupt stream is the sender's fault (400), not the collector's (500).
    throw new BadRequest(`the body is not valid ${encoding}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text.toString("utf8"));
  } catch (err) {
    throw new BadRequest(`the body is not JSON: ${(err as Error).message}`);
  }
}

export function lokiPushRoute(app: Hono, options: LokiReceiverOptions): void {
  const reject = (reason: string) => options.onRejected?.(reason);
  app.post(
    "/loki/api/v1/push",
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: (c) => {
        reject("body_too_large");
        return c.text(`request body larger than ${options.maxBodyBytes} bytes\n`, 413);
      },
    }),
    async (c) => {
      const tenant = tenantOf(c);
      let streams: LogStream[];
      try {
        const raw = Buffer.from(await c.req.arrayBuffer());
        const type = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
        const encoding = (c.req.header("Content-Encoding") ?? "").trim().toLowerCase();
        // Loki's rule: JSON only when the content type says so; anything else is snappy protobuf.
        streams =
          type === "application/json"
            ? fromJson(await decodeJsonBody(raw, encoding, options.maxBodyBytes * 10))
            : await fromProtobuf(raw, options.maxBodyBytes * 10);
        validateStreams(streams, options.tenantLimits?.batchLimits(tenant, options.limits) ?? options.limits);
      } catch (err) {
        if (err instanceof ValidationError) {
          reject(err.reason);
          return c.text(`${options.tenantLimits?.explain(tenant, err) ?? err.message}\n`, 400);
        }
        if (err instanceof BadRequest || (err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
          reject("bad_request");
          return c.text(`${(err as Error).message}\n`, 400);
        }
        throw err;
      }
      const entries = streams.reduce((n, s) => n + s.entries.length, 0);
      const wait = options.rate?.take(tenant, entries) ?? 0;
      if (wait > 0) {
        reject("rate_limited");
        return c.text(`${options.rate!.error(tenant, entries).message}\n`, 429, { "Retry-After": String(wait) });
      }
      try {
        await options.batcher.add(tenant, { streams });
      } catch (err) {
        if (err instanceof WalFullError) {
          reject("buffer_full");
          return c.text(`${err.message}; retry later\n`, 503, { "Retry-After": "10" });
        }
        throw err;
      }
      options.onAccepted?.(tenant, entries);
      return c.body(null, 204);
    },
  );
}
