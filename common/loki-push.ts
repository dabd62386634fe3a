import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { LogStream } from "../proto/batch.js";
import { decodePushBody, PushBodyError } from "../proto/loki/push.js";
import { type BatchLimits, validateStreams, ValidationError } from "../proto/validate.js";
import { tenantOf } from "./auth.js";
import type { TenantLimits } from "./limits.js";
import type { TenantRateLimiter } from "./rate-limit.js";

// POST /loki/api/v1/push as Loki serves it, for every listener that takes pushes: the collector's receiver and
// the query service's central push. 204 once the sink has the entries; 400 with the reason for malformed input or
// broken limits, 413 for a body over the limit, 429 over the tenant's rate, 503 with Retry-After while the sink
// is full. The body format is proto/loki/push.ts.

/** Where accepted streams go: the batcher on a collector, the store on the query service. */
export interface PushSink {
  add(tenant: string, data: { streams: LogStream[] }): Promise<void>;
}

export interface LokiPushOptions {
  sink: PushSink;
  /** Defaults; `tenantLimits` replaces the label count and line size per tenant. */
  limits: BatchLimits;
  tenantLimits?: TenantLimits;
  maxBodyBytes: number;
  /** Entries per second per tenant. */
  rate: TenantRateLimiter | undefined;
  /** Whether an error of the sink means it is full for now: answered 503 with Retry-After instead of 500. */
  isFull?: (err: unknown) => boolean;
  onAccepted?: (tenant: string, entries: number) => void;
  onRejected?: (reason: string) => void;
}

export function lokiPushRoute(app: Hono, options: LokiPushOptions): void {
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
        streams = await decodePushBody(
          Buffer.from(await c.req.arrayBuffer()),
          c.req.header("Content-Type") ?? "",
          c.req.header("Content-Encoding") ?? "",
          options.maxBodyBytes * 10,
        );
        validateStreams(streams, options.tenantLimits?.batchLimits(tenant, options.limits) ?? options.limits);
      } catch (err) {
        if (err instanceof ValidationError) {
          reject(err.reason);
          return c.text(`${options.tenantLimits?.explain(tenant, err) ?? err.message}\n`, 400);
        }
        if (err instanceof PushBodyError || (err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
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
        await options.sink.add(tenant, { streams });
      } catch (err) {
        if (options.isFull?.(err)) {
          reject("buffer_full");
          return c.text(`${(err as Error).message}; retry later\n`, 503, { "Retry-After": "10" });
        }
        throw err;
      }
      options.onAccepted?.(tenant, entries);
      return c.body(null, 204);
    },
  );
}
