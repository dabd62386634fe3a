import type { Hono } from "hono";
import type { LogStream } from "../proto/batch.js";
import { decodePushJson, decodePushProtobuf, isJsonPush, PushBodyError, pushBodyLength } from "../proto/loki/push.js";
import { type Admission, OverloadedError, type Ticket } from "./admission.js";
import { tenantOf } from "./auth.js";
import { BodyError, declaredLength, decompressBody, plainBodyLimit } from "./http-body.js";
import { ContractError, type IngestContract } from "./ingest-contract.js";
import type { TenantRateLimiter } from "./rate-limit.js";

// POST /loki/api/v1/push as Loki serves it, for every listener that takes pushes: the collector's receiver and
// the query service's central push. 204 once the sink has the entries; 400 with the reason for malformed input or
// data outside the ingestion contract (common/ingest-contract.ts), 413 for a body over the limit (as sent,
// decompressed, or decoded), 415 for an unknown Content-Encoding, 429 over the tenant's rate, 503 with
// Retry-After while the sink is full or the receivers are busy (common/admission.ts). The body format is
// proto/loki/push.ts.

/** Where accepted streams go: the batcher on a collector, the store on the query service. */
export interface PushSink {
  add(tenant: string, data: { streams: LogStream[] }): Promise<void>;
}

export interface LokiPushOptions {
  sink: PushSink;
  /** What may be acknowledged: limits, timestamps, sizes. */
  contract: IngestContract;
  /** The budget of requests in flight, shared with the listener's other receivers. */
  admission: Admission;
  maxBodyBytes: number;
  /** Entries per second per tenant. */
  rate: TenantRateLimiter | undefined;
  /** Whether an error of the sink means it is full for now: answered 503 with Retry-After instead of 500. */
  isFull?: (err: unknown) => boolean;
  onAccepted?: (tenant: string, entries: number) => void;
  onRejected?: (reason: string) => void;
}

/** Seconds a sender is asked to wait while the sink is full. */
const FULL_RETRY_AFTER_S = 10;

export function lokiPushRoute(app: Hono, options: LokiPushOptions): void {
  const reject = (reason: string) => options.onRejected?.(reason);
  const { contract, admission } = options;
  app.post("/loki/api/v1/push", plainBodyLimit(options.maxBodyBytes, reject), async (c) => {
    const tenant = tenantOf(c);
    let ticket: Ticket | undefined;
    try {
      ticket = await admission.enter(declaredLength(c, options.maxBodyBytes));
      const raw = Buffer.from(await c.req.arrayBuffer());
      await ticket.resize(raw.length);
      let streams: LogStream[];
      if (isJsonPush(c.req.header("Content-Type") ?? "")) {
        const body = await decompressBody(raw, c.req.header("Content-Encoding") ?? "", {
          maxBytes: contract.maxDecompressedBytes,
          ticket,
          encodings: ["gzip", "deflate"],
        });
        streams = decodePushJson(body);
      } else {
        await ticket.resize(Math.min(pushBodyLength(raw), contract.maxDecompressedBytes));
        streams = await decodePushProtobuf(raw, contract.maxDecompressedBytes);
      }
      const { entries } = contract.admit(tenant, { streams });
      const wait = options.rate?.take(tenant, entries) ?? 0;
      if (wait > 0) {
        reject("rate_limited");
        return c.text(`${options.rate!.error(tenant, entries).message}\n`, 429, { "Retry-After": String(wait) });
      }
      await options.sink.add(tenant, { streams });
      options.onAccepted?.(tenant, entries);
      return c.body(null, 204);
    } catch (err) {
      if (err instanceof ContractError || err instanceof BodyError) {
        reject(err.reason);
        return c.text(`${err.message}\n`, err.status);
      }
      if (err instanceof PushBodyError) {
        reject(err.status === 413 ? "body_too_large" : "bad_request");
        return c.text(`${err.message}\n`, err.status);
      }
      if (err instanceof OverloadedError) {
        reject("overloaded");
        return c.text(`${err.message}\n`, 503, { "Retry-After": String(err.retryAfterS) });
      }
      if (options.isFull?.(err)) {
        reject("buffer_full");
        return c.text(`${(err as Error).message}; retry later\n`, 503, { "Retry-After": String(FULL_RETRY_AFTER_S) });
      }
      throw err;
    } finally {
      ticket?.release();
    }
  });
}
