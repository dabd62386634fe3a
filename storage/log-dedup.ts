// Loki's read path merges identical entries (same stream, timestamp and line) that its ingesters or chunks hold
// twice. Bifrost's stores hold such duplicates when they come in different batches (a push retried after its
// batch was cut, or sent to two collectors); reads drop them. A log read orders by (timestamp, stream, arrival),
// so duplicates lie next to each other's group and are dropped here, in the page just read, at no cost when
// there are none; counts drop them in SQL (LIMIT 1 BY / DISTINCT ON) at the cost of a hash per entry counted.

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
