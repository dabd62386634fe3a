import type { Hono } from "hono";
import { type LokiPushOptions, lokiPushRoute } from "../../common/loki-push.js";
import type { Batcher } from "../buffer/batcher.js";
import { WalFullError } from "../buffer/wal.js";

// The collector's Loki push receiver: the shared push route (common/loki-push.ts) into the batcher, so that 204
// means the entries are in the disk buffer, written at the next group commit rather than when a batch fills
// (a client that sends one push at a time is not held to one push per batch.max_age_ms); while the buffer is full under policy `block` pushes get 503 with
// Retry-After.

export interface LokiReceiverOptions extends Omit<LokiPushOptions, "sink" | "isFull"> {
  batcher: Pick<Batcher, "add">;
}

export function lokiReceiver(app: Hono, { batcher, ...options }: LokiReceiverOptions): void {
  lokiPushRoute(app, {
    ...options,
    sink: { add: (tenant, data) => batcher.add(tenant, data, { senderWaits: true }) },
    isFull: (err) => err instanceof WalFullError,
  });
}
