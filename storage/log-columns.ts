import type { LogStream } from "../proto/batch.js";
import { type Labels, NO_LABELS } from "../proto/labels.js";
import { keptRows } from "./log-dedup.js";
import type { LogColumns } from "./store.js";
import type { IndexedStream } from "./streams-index.js";
import { sortByLabels } from "./values.js";

// A log read column-wise (storage/store.ts LogColumns), the same for every store: the store reads its rows in
// SQL order (timestamp, fingerprint, arrival, entry; all descending for a backward read) into RawLogRows, and
// logColumns drops repeats, cuts at the limit and orders entries that share a timestamp by their streams'
// label text, which is the order selectLogs' streams have always given a reader that merges them by time.

/** Rows as a store read them, in SQL order, one array per column. */
export interface RawLogRows {
  fingerprints: bigint[];
  ts: bigint[];
  lines: string[];
  /** NO_LABELS where an entry has none. */
  metadata: Labels[];
}

export function rawLogRows(): RawLogRows {
  return { fingerprints: [], ts: [], lines: [], metadata: [] };
}

/**
 * The first `limit` rows without repeats, from a read of the first n rows in SQL order: read again with a larger n
 * while repeats left fewer than `limit` and the store holds more. n is a positive integer of this function's
 * making (for the SQL text, since each read binds its parameters once).
 */
export async function readWithoutRepeats(limit: number, read: (n: number) => Promise<RawLogRows>): Promise<RawLogRows> {
  for (let n = Math.max(1, Math.floor(limit)); ; n *= 2) {
    const rows = await read(n);
    const kept = keptRows(rows.ts.length, rows.fingerprints, rows.ts, rows.lines);
    const count = kept === undefined ? rows.ts.length : kept.length;
    if (count >= limit || rows.ts.length < n) return pick(rows, kept, Math.min(count, limit));
  }
}

function pick(rows: RawLogRows, kept: number[] | undefined, count: number): RawLogRows {
  if (kept === undefined && count === rows.ts.length) return rows;
  const out = rawLogRows();
  for (let k = 0; k < count; k++) {
    const i = kept === undefined ? k : kept[k]!;
    out.fingerprints.push(rows.fingerprints[i]!);
    out.ts.push(rows.ts[i]!);
    out.lines.push(rows.lines[i]!);
    out.metadata.push(rows.metadata[i]!);
  }
  return out;
}

/**
 * The rows as LogColumns: `streams` sorted by label text, and entries sharing a timestamp ordered by their
 * stream's place there (stable, so a stream's own entries keep their arrival order).
 */
export function logColumns(indexed: IndexedStream[], read: RawLogRows): LogColumns {
  const sorted = sortByLabels(indexed);
  const rank = new Map<bigint, number>();
  sorted.forEach((stream, i) => rank.set(BigInt(stream.fingerprint), i));
  const rows = ofKnownStreams(read, rank);
  const n = rows.ts.length;
  const stream: number[] = new Array<number>(n);
  for (let i = 0; i < n; i++) stream[i] = rank.get(rows.fingerprints[i]!)!;
  const columns: LogColumns = {
    streams: sorted.map((s) => s.labels),
    stream,
    ts: rows.ts,
    lines: rows.lines,
    metadata: rows.metadata,
  };
  for (let start = 0; start < n;) {
    let end = start + 1;
    let ordered = true;
    while (end < n && rows.ts[end] === rows.ts[start]) {
      if (stream[end]! < stream[end - 1]!) ordered = false;
      end++;
    }
    if (!ordered) reorder(columns, start, end);
    start = end;
  }
  return columns;
}

/**
 * The rows whose stream the index lookup returned: a stream indexed after the lookup (its first entries written
 * meanwhile) is read from the next read on, as selectLogs has always left it out.
 */
function ofKnownStreams(rows: RawLogRows, rank: Map<bigint, number>): RawLogRows {
  if (rows.fingerprints.every((fingerprint) => rank.has(fingerprint))) return rows;
  const known = rows.fingerprints.flatMap((fingerprint, i) => (rank.has(fingerprint) ? [i] : []));
  return {
    fingerprints: known.map((i) => rows.fingerprints[i]!),
    ts: known.map((i) => rows.ts[i]!),
    lines: known.map((i) => rows.lines[i]!),
    metadata: known.map((i) => rows.metadata[i]!),
  };
}

/** Sorts entries [start, end), which share a timestamp, by stream, stably. */
function reorder(columns: LogColumns, start: number, end: number): void {
  const order = Array.from({ length: end - start }, (_, k) => start + k).sort(
    (a, b) => columns.stream[a]! - columns.stream[b]! || a - b,
  );
  const stream = order.map((i) => columns.stream[i]!);
  const lines = order.map((i) => columns.lines[i]!);
  const metadata = order.map((i) => columns.metadata[i]!);
  for (let k = 0; k < order.length; k++) {
    columns.stream[start + k] = stream[k]!;
    columns.lines[start + k] = lines[k]!;
    columns.metadata[start + k] = metadata[k]!;
  }
}

/** selectLogs' answer from a column read: one stream per stream with entries, sorted by label text. */
export function streamsOfColumns(columns: LogColumns): LogStream[] {
  const streams: (LogStream | undefined)[] = new Array<LogStream | undefined>(columns.streams.length);
  for (let i = 0; i < columns.ts.length; i++) {
    const s = columns.stream[i]!;
    const one = (streams[s] ??= { labels: columns.streams[s]!, entries: [] });
    const metadata = columns.metadata[i]!;
    one.entries.push({
      timeUnixNano: columns.ts[i]!,
      line: columns.lines[i]!,
      // A record per entry, as the stores have always given it: its reader may change it.
      metadata: metadata === NO_LABELS ? Object.create(null) : metadata,
    });
  }
  return streams.filter((stream): stream is LogStream => stream !== undefined);
}
