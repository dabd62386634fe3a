import { closeSync, copyFileSync, fsyncSync, openSync, readSync, renameSync, writeSync } from "node:fs";
import { crc32c } from "@node-rs/crc32";
import type { BatchRecord } from "../../common/transport.js";

// The segment files of the collector's disk buffer (wal.ts): how records are laid out, read and checked.
//
// Record: u32 payload length | u32 CRC32C of (sequence, payload) | u64 sequence | payload, little endian.
// Segment files are named by their first sequence, and sequences count up by one from record to record, so
// recovery knows which sequences a damaged stretch of a segment held. On open every record is checked:
// - After a record that fails its CRC (or whose length runs past the end of the file), the scan resynchronises on
//   the next offset that holds a whole record with a valid CRC and a plausible sequence (above the last good one,
//   by no more than the records that fit in between), so every valid record around a bad one is kept.
// - The lost records are counted by sequence, exactly: between two good records, from a segment's first
//   sequence (its name) to its first good record, and from its last good record to the next segment's first;
//   after the last good record of the last segment, by following the bad records' lengths and sequences. Only
//   records after the cursor count (the others were delivered). Each damaged segment is reported through
//   onDrop, and rewritten with its good records only (the original kept as *.wal.corrupt for inspection), so
//   a later open neither reads the bad bytes nor counts the loss again.
// - A record the file ends inside, at the end of the last segment, is an append a crash cut short: it is
//   truncated away and reported through onTruncated, but not counted (under fsync policy `always` nothing is
//   acknowledged before its record is whole on disk). A record whose length or sequence bytes are damaged at
//   that very place cannot be told from one cut short.

export const HEADER = 16;
export const SUFFIX = ".wal";

export interface Segment {
  first: number;
  /** Sequence of the last record, first - 1 when empty. */
  last: number;
  file: string;
  bytes: number;
  /** Where each record starts, in sequence order: the shipper reads only the records it needs, not the file. */
  offsets: number[];
  /** Each record's sequence: consecutive, but for the records a damaged segment lost. */
  sequences: number[];
}

/** Index of the first record of `segment` with a sequence above `sequence` (its record count if none is). */
export function indexAfter(segment: Segment, sequence: number): number {
  const { sequences } = segment;
  let [low, high] = [0, sequences.length];
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sequences[mid]! <= sequence) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Records `from` up to (not including) `to` of a segment, by their index in it, in one read. */
export function readRecords(segment: Segment, from: number, to: number): BatchRecord[] {
  const { offsets } = segment;
  to = Math.min(to, offsets.length);
  if (from >= to) return [];
  const start = offsets[from]!;
  const end = to < offsets.length ? offsets[to]! : segment.bytes;
  const buf = Buffer.allocUnsafe(end - start);
  const fd = openSync(segment.file, "r");
  try {
    for (let done = 0; done < buf.length;) {
      const n = readSync(fd, buf, done, buf.length - done, start + done);
      if (n === 0) throw new Error(`${segment.file} is shorter than the records it was written with`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  const out: BatchRecord[] = [];
  for (let i = from; i < to; i++) {
    const pos = offsets[i]! - start;
    out.push({
      sequence: segment.sequences[i]!,
      payload: buf.subarray(pos + HEADER, pos + HEADER + buf.readUInt32LE(pos)),
    });
  }
  return out;
}

interface Scan {
  /** Where each good record starts, and its sequence. */
  offsets: number[];
  sequences: number[];
  /** Stretches without a good record; the records they held had the sequences between `after` and `before`. */
  damage: { offset: number; bytes: number; after: number; before: number }[];
  /** Where a record that the file ends inside starts, at the end of the last segment. */
  tornAt?: number;
}

const TWO_32 = 4294967296;

function sequenceAt(buf: Buffer, pos: number): number {
  return buf.readUInt32LE(pos + 8) + buf.readUInt32LE(pos + 12) * TWO_32;
}

/** The end of the record at `pos` if the file holds all of it, else undefined. */
function wholeRecordEnd(buf: Buffer, pos: number): number | undefined {
  if (pos + HEADER > buf.length) return undefined;
  const end = pos + HEADER + buf.readUInt32LE(pos);
  return end <= buf.length ? end : undefined;
}

function checksumHolds(buf: Buffer, pos: number, end: number): boolean {
  return crc32c(buf.subarray(pos + 8, end)) >>> 0 === buf.readUInt32LE(pos + 4);
}

/**
 * Checks every record of a segment (see the top of this file). `nextFirst` is the first sequence of the next
 * segment, undefined for the last one.
 */
export function scanSegment(buf: Buffer, first: number, nextFirst: number | undefined): Scan {
  const scan: Scan = { offsets: [], sequences: [], damage: [] };
  let previous = first - 1;
  let pos = 0;
  while (pos < buf.length) {
    const end = wholeRecordEnd(buf, pos);
    if (end !== undefined && sequenceAt(buf, pos) > previous && checksumHolds(buf, pos, end)) {
      scan.offsets.push(pos);
      scan.sequences.push((previous = sequenceAt(buf, pos)));
      pos = end;
      continue;
    }
    const next = resynchronise(buf, pos, previous);
    if (next !== undefined) {
      scan.damage.push({ offset: pos, bytes: next - pos, after: previous, before: sequenceAt(buf, next) });
      pos = next;
      continue;
    }
    if (nextFirst !== undefined) {
      scan.damage.push({ offset: pos, bytes: buf.length - pos, after: previous, before: nextFirst });
      return scan;
    }
    // The last segment: whole records that fail their CRC (their lengths and sequences still in order), then
    // perhaps one cut short.
    let stop = pos;
    let expected = previous + 1;
    for (let e = wholeRecordEnd(buf, stop); e !== undefined && sequenceAt(buf, stop) === expected;) {
      stop = e;
      expected++;
      e = wholeRecordEnd(buf, stop);
    }
    if (stop > pos) scan.damage.push({ offset: pos, bytes: stop - pos, after: previous, before: expected });
    if (stop < buf.length) scan.tornAt = stop;
    return scan;
  }
  return scan;
}

/**
 * The next offset after the bad record at `bad` that holds a whole record with a valid CRC and a sequence above
 * `previous`, by no more than the 16-byte-or-larger records that fit in between; undefined if there is none.
 */
function resynchronise(buf: Buffer, bad: number, previous: number): number | undefined {
  for (let pos = bad + 1; pos + HEADER <= buf.length; pos++) {
    const end = pos + HEADER + buf.readUInt32LE(pos);
    if (end > buf.length) continue;
    const sequence = sequenceAt(buf, pos);
    if (sequence <= previous || (sequence - previous - 1) * HEADER > pos - bad) continue;
    if (checksumHolds(buf, pos, end)) return pos;
  }
  return undefined;
}

/**
 * Replaces a damaged segment by one of its good records only, keeping the original as `<file>.corrupt`, and
 * moves `offsets` to where the records now start; returns the new size. The new file takes the old one's place
 * in one rename, so a crash leaves either.
 */
export function rewriteSegment(file: string, contents: Buffer, offsets: number[]): number {
  copyFileSync(file, `${file}.corrupt`);
  const temp = `${file}.tmp`;
  const fd = openSync(temp, "w");
  let size = 0;
  try {
    offsets.forEach((offset, i) => {
      const record = contents.subarray(offset, offset + HEADER + contents.readUInt32LE(offset));
      for (let done = 0; done < record.length;) done += writeSync(fd, record, done);
      offsets[i] = size;
      size += record.length;
    });
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
  return size;
}
