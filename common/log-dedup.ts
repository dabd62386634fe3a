import { hash } from "node:crypto";
import type { LogEntry } from "../proto/batch.js";

// Loki drops an entry that repeats one of its stream at the same timestamp with the same line (a retried push,
// a doubled log statement): its ingester checks the entries it holds in memory. Bifrost checks the data of the
// batch being filled (the collector's pending batch, or one central push) and, in a bounded memory, the newest
// entries already written, so that a retried push is dropped before it is stored and counted by the log volume
// rollup. Duplicates older than that memory, or sent through two collectors, are dropped when read
// (storage/log-dedup.ts); only index/volume, read from the rollup, still counts those.

/** The lines of one stream seen so far, per timestamp: one line, or the set once a second one comes. */
export type SeenLines = Map<bigint, string | Set<string>>;

function add(lines: string | Set<string> | undefined, line: string): string | Set<string> {
  if (lines === undefined) return line;
  if (typeof lines === "string") return new Set([lines, line]);
  return lines.add(line);
}

function holds(lines: string | Set<string> | undefined, line: string): boolean {
  return lines !== undefined && (typeof lines === "string" ? lines === line : lines.has(line));
}

/** The entries not in `seen` nor known before, in their order; remembers them in `seen`. */
export function dropDuplicateEntries(
  entries: LogEntry[],
  seen: SeenLines,
  known?: (entry: LogEntry) => boolean,
): LogEntry[] {
  let kept: LogEntry[] | undefined;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const lines = seen.get(entry.timeUnixNano);
    if (holds(lines, entry.line) || known?.(entry) === true) kept ??= entries.slice(0, i);
    else {
      seen.set(entry.timeUnixNano, add(lines, entry.line));
      kept?.push(entry);
    }
  }
  return kept ?? entries;
}

/**
 * The newest entries written, per stream (by a key of the caller's: tenant and labels) and timestamp: at least
 * `maxTimestamps` (stream, timestamp) pairs, at most twice as many. A line is kept as its SHA-1 (20 bytes), not
 * itself: at the default 50,000 pairs, 200-byte lines held 25 MiB of an edge collector's memory, and a false match
 * needs two lines of one stream at the same nanosecond with the same SHA-1. Two generations rather than one map
 * trimmed from its oldest end: deleting a Map's first entries leaves holes that V8 scans over to find the next
 * oldest, which made every write of a large push quadratic in the memory's size.
 */
export class RecentEntries {
  private lines = new Map<string, SeenLines>();
  private older = new Map<string, SeenLines>();
  /** (stream, timestamp) pairs in `lines`. */
  private size = 0;

  constructor(private readonly maxTimestamps = 50_000) {}

  has(stream: string, entry: LogEntry): boolean {
    const newer = this.lines.get(stream)?.get(entry.timeUnixNano);
    const older = this.older.get(stream)?.get(entry.timeUnixNano);
    // Most entries have a timestamp of their own: no digest unless one of the stream's entries shares it.
    if (newer === undefined && older === undefined) return false;
    const digest = lineDigest(entry.line);
    return holds(newer, digest) || holds(older, digest);
  }

  remember(stream: string, entries: LogEntry[]): void {
    let seen = this.lines.get(stream);
    for (const entry of entries) {
      if (seen === undefined) this.lines.set(stream, (seen = new Map()));
      const lines = seen.get(entry.timeUnixNano);
      if (lines === undefined) this.size++;
      const digest = lineDigest(entry.line);
      if (!holds(lines, digest)) seen.set(entry.timeUnixNano, add(lines, digest));
      if (this.size >= this.maxTimestamps) {
        this.older = this.lines;
        this.lines = new Map();
        this.size = 0;
        seen = undefined;
      }
    }
  }
}

/** A line's SHA-1 as a 20-character one-byte string (about 40 bytes on V8's heap). */
function lineDigest(line: string): string {
  return hash("sha1", line, "binary");
}
