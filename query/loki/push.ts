import { randomUUID } from "node:crypto";
import type { PushSink } from "../../common/loki-push.js";
import type { Store } from "../../storage/store.js";

/**
 * The query service's central push: each push straight into the store as one batch of its own (a fresh id, so it
 * is never taken for a replay), for sources that send to the center without a collector.
 */
export function storePushSink(store: Store): PushSink {
  return {
    add: async (tenant, data) => {
      await store.appendLogs([{ id: `${tenant}/push:${randomUUID()}`, tenant, streams: data.streams }]);
    },
  };
}
