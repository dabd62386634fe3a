import { randomUUID } from "node:crypto";
import type { IngestDefaults } from "../../common/ingest-defaults.js";
import type { PushSink } from "../../common/loki-push.js";
import type { Store } from "../../storage/store.js";
import { arrivalNowNs } from "../../common/arrival-clock.js";
import { dropDuplicateEntries, RecentEntries, type SeenLines } from "../../common/log-dedup.js";
import { persistedLabelsText } from "../../proto/labels.js";

/**
 * The query service's central push: each push straight into the store as one batch of its own (a fresh id, so it
 * is never taken for a replay), for sources that send to the center without a collector, with Loki 3's ingestion
 * defaults (service_name, detected_level) as a collector adds them.
 */
export function storePushSink(store: Store, ingestDefaults: IngestDefaults): PushSink {
  // Entries written lately, to drop a push sent again (as Loki's ingester does); see common/log-dedup.ts.
  const recent = new RecentEntries();
  return {
    add: async (tenant, data) => {
      const seen = new Map<string, SeenLines>();
      const keys: string[] = [];
      const streams = data.streams.map((received) => {
        const stream = ingestDefaults.apply(received);
        const key = `${tenant}\u0000${persistedLabelsText(stream.labels)}`;
        if (!seen.has(key)) seen.set(key, new Map());
        keys.push(key);
        const entries = dropDuplicateEntries(stream.entries, seen.get(key)!, (entry) => recent.has(key, entry));
        return { labels: stream.labels, entries };
      });
      const createdUnixNano = arrivalNowNs();
      await store.appendLogs([{ id: `${tenant}/push:${randomUUID()}`, tenant, streams, createdUnixNano }]);
      // Remembered once stored: a push that failed must be accepted when sent again.
      streams.forEach((stream, i) => recent.remember(keys[i]!, stream.entries));
    },
  };
}
