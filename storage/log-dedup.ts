// Loki's read path merges identical entries (same stream, timestamp and line) that its ingesters or chunks hold
// twice. Bifrost's stores hold such duplicates when they come in different batches (a push retried after its
// batch was cut, or sent to two collectors); reads drop them. A log read orders by (timestamp, stream, arrival),
// so duplicates lie next to each other's group and are dropped here, in the page just read, at no cost when
// there are none. Counts compare lines (LIMIT 1 BY / DISTINCT ON) only in the (stream, step) cells where a
// timestamp repeats, which the stores find from each cell's sorted timestamps (storage/clickhouse-log-count.ts).

interface EntryRow {
  fp: unknown;
  ts: unknown;
  line: string;
}

/** The rows, in read order, without those repeating an earlier row's stream, timestamp and line. */
export function withoutRepeats<R extends EntryRow>(rows: R[]): R[] {
  let kept: R[] | undefined;
  let [fp, ts]: unknown[] = [undefined, undefined];
  let lines: string[] = [];
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (row.fp !== fp || row.ts !== ts) {
      [fp, ts] = [row.fp, row.ts];
      lines = [row.line];
      kept?.push(row);
    } else if (lines.includes(row.line)) kept ??= rows.slice(0, i);
    else {
      lines.push(row.line);
      kept?.push(row);
    }
  }
  return kept ?? rows;
}

/**
 * The first `limit` rows without repeats, from a read of the first n rows in order: read again with a larger n
 * while repeats left fewer than `limit` and the store holds more. n is a positive integer of this function's
 * making (for the SQL text, since each read binds its parameters once).
 */
export async function readWithoutRepeats<R extends EntryRow>(
  limit: number,
  read: (n: number) => Promise<R[]>,
): Promise<R[]> {
  for (let n = Math.max(1, Math.floor(limit)); ; n *= 2) {
    const rows = await read(n);
    const kept = withoutRepeats(rows);
    if (kept.length >= limit || rows.length < n) return kept.length > limit ? kept.slice(0, limit) : kept;
  }
}

/**
 * How many (stream, step) cells with repeated timestamps a count recounts by their own cells; with more, it
 * recounts every entry of the range with lines compared (the cells would make too large a parameter).
 */
export const MAX_RECOUNTED_CELLS = 2000;

/** A count's result row: its grouping fields, its step index k, and the entries and bytes it counted. */
export interface CountRow {
  k: unknown;
  entries: unknown;
  bytes: unknown;
}

/**
 * The rows of counts over disjoint entries (cells counted as stored, and the cells with repeated timestamps
 * counted again with lines compared), one row per grouping and step with the entries and bytes summed, in step
 * order.
 */
export function sumCountRows<R extends CountRow>(parts: R[][]): R[] {
  const byKey = new Map<string, R>();
  for (const rows of parts)
    for (const row of rows) {
      const { entries, bytes, ...group } = row;
      const key = JSON.stringify(group, (_, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
      const seen = byKey.get(key);
      if (seen === undefined)
        byKey.set(key, { ...row, entries: BigInt(String(entries)), bytes: BigInt(String(bytes)) });
      else {
        seen.entries = (seen.entries as bigint) + BigInt(String(entries));
        seen.bytes = (seen.bytes as bigint) + BigInt(String(bytes));
      }
    }
  const step = (row: R) => BigInt(String(row.k));
  return [...byKey.values()].sort((a, b) => (step(a) < step(b) ? -1 : step(a) > step(b) ? 1 : 0));
}
