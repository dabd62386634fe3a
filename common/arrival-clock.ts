// Batches carry the time they were cut, and reads order entries that share a timestamp by it (then by their
// place in the batch): so this clock never repeats nor goes back within a process, even when two batches are
// cut in the same millisecond or the wall clock steps back.

let last = 0n;

/** Now in nanoseconds since 1970, greater than any value this process had from it before. */
export function arrivalNowNs(): bigint {
  const now = BigInt(Date.now()) * 1_000_000n;
  last = now > last ? now : last + 1n;
  return last;
}
