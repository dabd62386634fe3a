import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { tenantOf } from "../common/auth.js";
import type { Logger } from "../common/log.js";
import { certifiesNode, clientIdentity } from "../common/service.js";
import { nodeOfPart } from "../proto/batch.js";
import { CodecError } from "../proto/codec.js";
import { BATCHES_PATH, FRAMES_CONTENT_TYPE, splitFrames } from "../proto/frames.js";
import type { BatchLimits } from "../proto/validate.js";
import type { Store } from "../storage/store.js";
import { StoreError } from "../storage/values.js";
import { type DeadLetter, type DeadLetters, sendDeadLetters } from "./dead-letters.js";
import type { Decoder } from "./decoder.js";
import { appendIsolating } from "./isolate.js";
import type { AggregatorMetrics } from "./metrics.js";
import { writePartOf, type WriteSource } from "./write-part.js";
import type { DecodedBatch } from "./worker.js";

export interface HttpIngestOptions {
  decoder: Decoder;
  store: Store;
  /** null once the store's schema exists, otherwise why not. */
  storeReadiness: () => string | null;
  /** With auth, every batch's tenant must be the token's. */
  authEnabled: boolean;
  maxBodyBytes: number;
  /** Where undecodable frames and refused rows go: the dead-letter topic, or a file without Kafka. */
  deadLetters: DeadLetters;
  /** The decoder's, for taking apart a batch whose rows the store refuses. */
  maxBatchBytes: number;
  limits: BatchLimits;
  metrics: AggregatorMetrics;
  log: Logger;
}

/** Seconds a collector is asked to wait while the store is away. */
const STORE_RETRY_AFTER_S = 5;

/**
 * POST /bifrost/v1/batches: collectors that cannot reach Kafka send their disk buffer's frames here
 * (proto/frames.ts). Each frame goes through the Kafka consumer's decoding (worker pool, limits, rollups), and
 * the request is answered 204 only once all of its batches are in the store or in the dead letters: a frame
 * that does not decode, rows outside the limits and rows the store refuses for good (aggregator/isolate.ts) go
 * there with their reason, and the rest is stored. A batch id the store holds already is not written again, so
 * a collector's replay changes no count. Nothing of a refused request is stored: 400 for a body that does not
 * split into frames, 403 a batch of another tenant than the token's or of another node than the client
 * certificate's, 503 with Retry-After a store (or dead-letter destination) that is unavailable.
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
      const origin = `http ${clientIdentity(c)?.commonName ?? c.req.header("X-Forwarded-For") ?? "collector"}`;
      const dead: DeadLetter[] = [];
      const decoded: { result: DecodedBatch; source: WriteSource }[] = [];
      results.forEach((result, index) => {
        const source = { frame: frames[index]!, origin: `${origin} frame ${index}` };
        if (!result.ok) dead.push({ ...source, source: source.origin, reason: result.reason, error: result.message });
        else {
          for (const r of result.refused)
            dead.push({ ...source, source: source.origin, reason: r.reason, error: r.message, frame: r.frame });
          decoded.push({ result, source });
        }
      });
      if (options.authEnabled) {
        const tenant = tenantOf(c);
        const foreign = decoded.find((d) => d.result.tenant !== tenant)?.result;
        if (foreign !== undefined) {
          refuse("tenant_mismatch");
          return c.json({ error: `batch ${foreign.id} is of tenant ${foreign.tenant}; the token is ${tenant}'s` }, 403);
        }
      }
      const identity = clientIdentity(c);
      const impostor =
        identity === undefined
          ? undefined
          : decoded.find((d) => !certifiesNode(identity, nodeOfPart(d.result.nodeId)))?.result;
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
        const isolated = await appendIsolating(
          {
            store,
            maxBatchBytes: options.maxBatchBytes,
            limits: options.limits,
            onRollupsLeftOut: (partials, error) => {
              metrics.deadLetters.inc({ reason: "store_rejected_rollup" }, partials);
              log.error(
                { partials, err: error },
                "the store refuses rollup partials; left out (their samples are stored)",
              );
            },
          },
          writePartOf(decoded),
          decoded.map((d) => d.source),
        );
        written = isolated.written;
        dead.push(...isolated.dead);
      } catch (err) {
        if (!(err instanceof StoreError) || !err.transient) throw err;
        refuse("store_unavailable");
        log.warn({ err: err.message, frames: frames.length }, "store unavailable; the collector is asked to retry");
        return c.json({ error: `store unavailable: ${err.message}` }, 503, {
          "Retry-After": String(STORE_RETRY_AFTER_S),
        });
      }
      try {
        await sendDeadLetters(options.deadLetters, dead, metrics.deadLetters, log);
      } catch (err) {
        // The stored rows are found stored again when the collector retries; the dead letters are written then.
        refuse("dead_letters_unavailable");
        log.warn({ err: (err as Error).message }, "dead letters cannot be written; the collector is asked to retry");
        return c.json({ error: `dead letters unavailable: ${(err as Error).message}` }, 503, {
          "Retry-After": String(STORE_RETRY_AFTER_S),
        });
      }
      metrics.writeSeconds.observe((performance.now() - started) / 1000);
      for (const { result } of decoded) metrics.decodeSeconds.observe(result.decodeMs / 1000);
      metrics.batches.inc({ result: "stored" }, decoded.length);
      metrics.batches.inc({ result: "dead_letter" }, results.length - decoded.length);
      metrics.rows.inc({ signal: "logs" }, written.logs.rows);
      metrics.rows.inc({ signal: "samples" }, written.samples.rows);
      metrics.rows.inc({ signal: "rollups" }, written.rollups.rows);
      metrics.duplicates.inc(Math.max(written.logs.duplicates, written.samples.duplicates));
      return c.body(null, 204);
    },
  );
}
