// Loki's read path merges identical entries (same stream, timestamp and line) that its ingesters or chunks hold
// twice. Bifrost's stores hold such duplicates when they come in different batches (a push retried after its
// batch was cut, or sent to two collectors); reads drop them. A log read orders by (timestamp, stream, arrival),
// so duplicates lie next to each other's group and are dropped here, in the page just read, at no cost when
// there are none. Counts compare lines (LIMIT 1 BY / DISTINCT ON) only in the (stream, step) cells where a
// timestamp repeats, which the stores find from each cell's sorted timestamps (storage/clickhouse-log-count.ts).

/**
 * The indexes of the rows, in read order, that do not repeat an earlier row's stream, timestamp and line; undefined
 * when every row is kept. Rows are given column-wise, `count` of them.
 */
export function keptRows(
  count: number,
  fingerprints: readonly bigint[],
  ts: readonly bigint[],
  lines: readonly string[],
): number[] | undefined {
  let kept: number[] | undefined;
  let group = 0;
  for (let i = 0; i < count; i++) {
    if (i === 0 || fingerprints[i] !== fingerprints[group] || ts[i] !== ts[group]) group = i;
    else if (repeats(lines, group, i)) {
      kept ??= Array.from({ length: i }, (_, k) => k);
      continue;
    }
    kept?.push(i);
  }
  return kept;
}

/** Whether line i equals one of lines [from, i): a row repeated there is equal to the one it repeats. */
function repeats(lines: readonly string[], from: number, i: number): boolean {
  for (let j = from; j < i; j++) if (lines[j] === lines[i]) return true;
  return false;
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
