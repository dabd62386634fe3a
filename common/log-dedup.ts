import type { LogEntry } from "../proto/batch.js";

// Loki drops an entry that repeats one of its stream at the same timestamp with the same line (a retried push,
// a doubled log statement); its ingester checks the entries it holds in memory. Bifrost does the same within
// the data one batch holds (the collector's pending batch, or one central push), where the lines are at hand;
// duplicates across batches are dropped when read (storage/log-dedup.ts).

/** The lines of one stream seen so far, per timestamp: one line, or the set once a second one comes. */
export type SeenLines = Map<bigint, string | Set<string>>;

/** The entries not seen before in this stream, in their order; remembers them in `seen`. */
export function dropDuplicateEntries(entries: LogEntry[], seen: SeenLines): LogEntry[] {
  let kept: LogEntry[] | undefined;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const lines = seen.get(entry.timeUnixNano);
    let duplicate = false;
    if (lines === undefined) seen.set(entry.timeUnixNano, entry.line);
    else if (typeof lines === "string") {
      duplicate = lines === entry.line;
      if (!duplicate) seen.set(entry.timeUnixNano, new Set([lines, entry.line]));
    } else if (lines.has(entry.line)) duplicate = true;
    else lines.add(entry.line);
    if (duplicate) kept ??= entries.slice(0, i);
    else kept?.push(entry);
  }
  return kept ?? entries;
}
