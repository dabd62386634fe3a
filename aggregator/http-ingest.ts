import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { tenantOf } from "../common/auth.js";
import type { Logger } from "../common/log.js";
import { certifiesNode, clientIdentity } from "../common/service.js";
import { CodecError } from "../proto/codec.js";
import { BATCHES_PATH, FRAMES_CONTENT_TYPE, splitFrames } from "../proto/frames.js";
import type { Store } from "../storage/store.js";
import { StoreError } from "../storage/values.js";
import type { Decoder } from "./decoder.js";
import type { AggregatorMetrics } from "./metrics.js";
import { appendPart, writePartOf } from "./write-buffer.js";
import type { DecodedBatch } from "./worker.js";

export interface HttpIngestOptions {
  decoder: Decoder;
  store: Store;
  /** null once the store's schema exists, otherwise why not. */
  storeReadiness: () => string | null;
  /** With auth, every batch's tenant must be the token's. */
  authEnabled: boolean;
  maxBodyBytes: number;
  metrics: AggregatorMetrics;
  log: Logger;
}

/** Seconds a collector is asked to wait while the store is away. */
const STORE_RETRY_AFTER_S = 5;

/**
 * POST /bifrost/v1/batches: collectors that cannot reach Kafka send their disk buffer's frames here
 * (proto/frames.ts). Each frame goes through the Kafka consumer's decoding (worker pool, limits, rollups), and
 * the request is answered 204 only once all of its batches are in the store; a batch id the store holds already
 * is not written again, so a collector's replay changes no count. Nothing of a refused request is stored: 400
 * names each bad frame by index (the collector drops those and sends the rest again), 403 a batch of another
 * tenant than the token's or of another node than the client certificate's, 503 with Retry-After a store that
 * is unavailable.
 */
export function batchesRoute(app: Hono, options: HttpIngestOptions): void {
  const { decoder, store, metrics, log } = options;
  const refuse = (reason: string, count = 1) => metrics.httpRefused.inc({ reason }, count);
  app.post(
    BATCHES_PATH,
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: (c) => {
        refuse("too_large");
        return c.json({ error: `request body over ${options.maxBodyBytes} bytes` }, 413);
      },
    }),
    async (c) => {
      if ((c.req.header("Content-Type") ?? "").split(";")[0]!.trim() !== FRAMES_CONTENT_TYPE) {
        refuse("content_type");
        return c.json({ error: `expected Content-Type ${FRAMES_CONTENT_TYPE}` }, 415);
      }
      const unready = options.storeReadiness();
      if (unready !== null) {
        refuse("store_unavailable");
        return c.json({ error: `store not ready: ${unready}` }, 503, { "Retry-After": String(STORE_RETRY_AFTER_S) });
      }
      let frames: Uint8Array[];
      try {
        frames = splitFrames(new Uint8Array(await c.req.arrayBuffer()));
      } catch (err) {
        if (!(err instanceof CodecError)) throw err;
        refuse(err.kind);
        return c.json({ error: err.message }, 400);
      }
      const results = await Promise.all(frames.map((frame) => decoder.decode(frame)));
      const rejected = results.flatMap((r, index) => (r.ok ? [] : [{ index, reason: r.reason, message: r.message }]));
      if (rejected.length > 0) {
        for (const r of rejected) refuse(r.reason);
        metrics.batches.inc({ result: "rejected" }, rejected.length);
        log.warn({ rejected: rejected.slice(0, 10), frames: frames.length }, "refused undecodable or invalid batches");
        return c.json({ error: `${rejected.length} of ${frames.length} frames refused`, rejected }, 400);
      }
      const decoded = results as DecodedBatch[];
      if (options.authEnabled) {
        const tenant = tenantOf(c);
        const foreign = decoded.find((d) => d.tenant !== tenant);
        if (foreign !== undefined) {
          refuse("tenant_mismatch");
          return c.json({ error: `batch ${foreign.id} is of tenant ${foreign.tenant}; the token is ${tenant}'s` }, 403);
        }
      }
      const identity = clientIdentity(c);
      const impostor = identity === undefined ? undefined : decoded.find((d) => !certifiesNode(identity, d.nodeId));
      if (impostor !== undefined) {
        refuse("node_mismatch");
        return c.json(
          { error: `batch ${impostor.id} is of node ${impostor.nodeId}, not the client certificate's` },
          403,
        );
      }
      const started = performance.now();
      let written;
      try {
        written = await appendPart(store, writePartOf(decoded));
      } catch (err) {
        if (!(err instanceof StoreError) || !err.transient) throw err;
        refuse("store_unavailable");
        log.warn({ err: err.message, frames: frames.length }, "store unavailable; the collector is asked to retry");
        return c.json({ error: `store unavailable: ${err.message}` }, 503, {
          "Retry-After": String(STORE_RETRY_AFTER_S),
        });
      }
      metrics.writeSeconds.observe((performance.now() - started) / 1000);
      for (const result of decoded) metrics.decodeSeconds.observe(result.decodeMs / 1000);
      metrics.batches.inc({ result: "stored" }, decoded.length);
      metrics.rows.inc({ signal: "logs" }, written.logs.rows);
      metrics.rows.inc({ signal: "samples" }, written.samples.rows);
      metrics.rows.inc({ signal: "rollups" }, written.rollups.rows);
      metrics.duplicates.inc(Math.max(written.logs.duplicates, written.samples.duplicates));
      return c.body(null, 204);
    },
  );
}
