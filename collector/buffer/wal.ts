import {
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writevSync,
} from "node:fs";
import { join } from "node:path";
import { crc32c } from "@node-rs/crc32";
import type { BatchRecord } from "../../common/transport.js";

// The collector's crash-safe disk buffer: an append-only log of records in numbered segment files, and a
// persisted cursor of what the shipper has delivered. A batch is acknowledged to its sender once appended
// (and fsynced, under policy `always`); the shipper reads from the cursor and advances it only after Kafka
// acknowledged, so a restart replays what was not yet delivered: at-least-once, never lost.
//
// Record: u32 payload length | u32 CRC32C of (sequence, payload) | u64 sequence | payload, little endian.
// Segment files are named by their first sequence. On open, the last segment's torn tail (a record cut short
// by a crash, or failing its CRC) is truncated away; a bad record anywhere else quarantines its whole segment
// (renamed *.corrupt, reported) and everything else replays.

export type FsyncPolicy = "always" | "interval" | "never";
export type FullPolicy = "block" | "drop_oldest";

export interface WalOptions {
  dir: string;
  /** Largest total size of the segments on disk. */
  maxBytes: number;
  /** A segment is closed and a new one started past this size. */
  segmentBytes: number;
  fsync: FsyncPolicy;
  fsyncIntervalMs?: number;
  whenFull: FullPolicy;
  /**
   * Told of every batch `drop_oldest` discarded and every quarantined segment, for metrics and logs. Batches the
   * shipper already read for a send still pending are counted too, though that send may yet deliver them.
   */
  onDrop?: (event: { reason: "disk_budget" | "corrupt_segment"; records: number; bytes: number; file: string }) => void;
}

/** The disk budget is exhausted under policy `block`: the caller answers its sender 429/503 with Retry-After. */
export class WalFullError extends Error {
  override readonly name = "WalFullError";
}

const HEADER = 16;
const SUFFIX = ".wal";

interface Segment {
  first: number;
  /** Sequence of the last record, first - 1 when empty. */
  last: number;
  file: string;
  bytes: number;
  /** Where each record starts, in sequence order: the shipper reads only the records it needs, not the file. */
  offsets: number[];
}

export class Wal {
  private readonly segments: Segment[] = [];
  private fd: number | undefined;
  private nextSequence = 1;
  private shipped = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: WalOptions) {}

  /** Opens (creating if needed) and recovers the log in `options.dir`. */
  static open(options: WalOptions): Wal {
    const wal = new Wal(options);
    wal.recover();
    if (options.fsync === "interval") {
      wal.timer = setInterval(() => wal.sync(), options.fsyncIntervalMs ?? 1000);
      wal.timer.unref();
    }
    return wal;
  }

  private cursorFile(): string {
    return join(this.options.dir, "cursor");
  }

  private recover(): void {
    mkdirSync(this.options.dir, { recursive: true });
    try {
      this.shipped = Number(readFileSync(this.cursorFile(), "utf8").trim()) || 0;
    } catch {
      this.shipped = 0;
    }
    const files = readdirSync(this.options.dir)
      .filter((f) => f.endsWith(SUFFIX))
      .sort();
    files.forEach((name, i) => {
      const file = join(this.options.dir, name);
      const first = Number(name.slice(0, -SUFFIX.length));
      const scan = scanSegment(file);
      if (scan.badAt !== undefined) {
        if (i === files.length - 1) {
          // A torn tail: the crash interrupted the last append, which was never acknowledged.
          const fd = openSync(file, "r+");
          ftruncateSync(fd, scan.badAt);
          fsyncSync(fd);
          closeSync(fd);
        } else {
          renameSync(file, `${file}.corrupt`);
          this.options.onDrop?.({
            reason: "corrupt_segment",
            records: scan.records,
            bytes: statSync(`${file}.corrupt`).size,
            file: `${file}.corrupt`,
          });
          return;
        }
      }
      this.segments.push({
        first,
        last: scan.last ?? first - 1,
        file,
        bytes: scan.badAt ?? scan.bytes,
        offsets: scan.offsets,
      });
    });
    const tail = this.segments[this.segments.length - 1];
    this.nextSequence = Math.max(this.shipped + 1, tail ? tail.last + 1 : 1);
    this.dropShipped();
  }

  /** Appends one record and returns its sequence; durable on return under fsync policy `always`. */
  append(payload: Buffer): number {
    return this.appendWith(() => payload);
  }

  /** Whether records of `bytes` in all (payloads) can be appended now without dropping or refusing any. */
  hasRoom(bytes: number, records = 1): boolean {
    return this.options.whenFull !== "block" || this.bytes() + bytes + records * HEADER <= this.options.maxBytes;
  }

  /** Appends the record that `build` makes for the sequence it will have (a batch carries its own sequence). */
  appendWith(build: (sequence: number) => Buffer): number {
    const payload = build(this.nextSequence);
    const size = HEADER + payload.length;
    if (size > this.options.maxBytes)
      throw new WalFullError(
        `a batch of ${size} bytes is larger than the whole disk buffer (${this.options.maxBytes})`,
      );
    if (this.bytes() + size > this.options.maxBytes) this.makeRoom(size);
    let active = this.segments[this.segments.length - 1];
    if (!active || this.fd === undefined || active.bytes + size > this.options.segmentBytes)
      active = this.startSegment();
    const sequence = this.nextSequence++;
    const header = Buffer.allocUnsafe(HEADER);
    header.writeUInt32LE(payload.length, 0);
    header.writeBigUInt64LE(BigInt(sequence), 8);
    header.writeUInt32LE(crc32c(payload, crc32c(header.subarray(8))) >>> 0, 4);
    // Header and payload in one system call, without copying a batch into a record buffer.
    for (let done = 0, parts = [header, payload]; done < size;) {
      done += writevSync(this.fd!, parts);
      parts = done < HEADER ? [header.subarray(done), payload] : [payload.subarray(done - HEADER)];
    }
    active.offsets.push(active.bytes);
    active.bytes += size;
    active.last = sequence;
    if (this.options.fsync === "always") fsyncSync(this.fd!);
    else this.dirty = true;
    return sequence;
  }

  private startSegment(): Segment {
    if (this.fd !== undefined) {
      fsyncSync(this.fd);
      closeSync(this.fd);
    }
    const first = this.nextSequence;
    const file = join(this.options.dir, `${String(first).padStart(20, "0")}${SUFFIX}`);
    this.fd = openSync(file, "a");
    const existing = this.segments.find((s) => s.file === file);
    if (existing) return existing;
    const segment = { first, last: first - 1, file, bytes: fstatSync(this.fd).size, offsets: [] };
    this.segments.push(segment);
    return segment;
  }

  private makeRoom(size: number): void {
    if (this.options.whenFull === "block") {
      throw new WalFullError(
        `disk buffer full: ${this.bytes()} of ${this.options.maxBytes} bytes hold undelivered batches`,
      );
    }
    // drop_oldest: whole segments, oldest first, never the one being written. The cursor moves past them on
    // disk too, or after a restart the dropped batches would still count as pending.
    const shipped = this.shipped;
    while (this.bytes() + size > this.options.maxBytes && this.segments.length > 1) {
      const oldest = this.segments.shift()!;
      rmSync(oldest.file, { force: true });
      const undelivered = Math.max(0, oldest.last - Math.max(this.shipped, oldest.first - 1));
      if (undelivered > 0)
        this.options.onDrop?.({ reason: "disk_budget", records: undelivered, bytes: oldest.bytes, file: oldest.file });
      this.shipped = Math.max(this.shipped, oldest.last);
    }
    if (this.shipped > shipped) this.saveCursor();
    if (this.bytes() + size > this.options.maxBytes && this.segments.length === 1 && this.segments[0]!.bytes > 0) {
      this.startSegment();
      this.makeRoom(size);
    }
  }

  /** Records after the cursor, oldest first, at most `max` of them. */
  read(max: number): BatchRecord[] {
    const out: BatchRecord[] = [];
    for (const segment of this.segments) {
      if (segment.last <= this.shipped) continue;
      const from = Math.max(0, this.shipped + 1 - segment.first);
      out.push(...readRecords(segment, from, from + max - out.length));
      if (out.length >= max) return out;
    }
    return out;
  }

  /** The newest records still on disk, delivered or not, oldest first, at most `max` of them. */
  tail(max: number): BatchRecord[] {
    const out: BatchRecord[] = [];
    for (let i = this.segments.length - 1; i >= 0 && out.length < max; i--) {
      const segment = this.segments[i]!;
      out.unshift(
        ...readRecords(segment, Math.max(0, segment.offsets.length - (max - out.length)), segment.offsets.length),
      );
    }
    return out;
  }

  /** Marks everything up to `sequence` delivered, durably, and deletes segments wholly delivered. */
  advance(sequence: number): void {
    if (sequence <= this.shipped) return;
    this.shipped = sequence;
    this.saveCursor();
    this.dropShipped();
  }

  private saveCursor(): void {
    const temp = `${this.cursorFile()}.tmp`;
    writeFileSync(temp, `${this.shipped}\n`);
    const fd = openSync(temp, "r");
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, this.cursorFile());
  }

  private dropShipped(): void {
    while (this.segments.length > 1 && this.segments[0]!.last <= this.shipped) {
      rmSync(this.segments.shift()!.file, { force: true });
    }
  }

  /** Flushes appended records to disk (policy `interval` does this on its timer). */
  sync(): void {
    if (this.dirty && this.fd !== undefined) fsyncSync(this.fd);
    this.dirty = false;
  }

  bytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0);
  }

  /** Records appended but not yet delivered. */
  pending(): number {
    return this.nextSequence - 1 - this.shipped;
  }

  close(): void {
    clearInterval(this.timer);
    this.sync();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Records `from` up to (not including) `to` of a segment, by their index in it, in one read. */
function readRecords(segment: Segment, from: number, to: number): BatchRecord[] {
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
  for (let pos = 0; pos + HEADER <= buf.length;) {
    const length = buf.readUInt32LE(pos);
    out.push({
      sequence: Number(buf.readBigUInt64LE(pos + 8)),
      payload: buf.subarray(pos + HEADER, pos + HEADER + length),
    });
    pos += HEADER + length;
  }
  return out;
}

/** Checks every record of a segment: the good records before the first bad one, and where that one starts. */
function scanSegment(file: string): {
  bytes: number;
  records: number;
  offsets: number[];
  last?: number;
  badAt?: number;
} {
  const buf = readFileSync(file);
  const offsets: number[] = [];
  let pos = 0;
  let records = 0;
  let last: number | undefined;
  while (pos < buf.length) {
    const length = pos + HEADER <= buf.length ? buf.readUInt32LE(pos) : -1;
    const end = pos + HEADER + length;
    if (length < 0 || end > buf.length || crc32c(buf.subarray(pos + 8, end)) >>> 0 !== buf.readUInt32LE(pos + 4)) {
      return { bytes: buf.length, records, offsets, last, badAt: pos };
    }
    offsets.push(pos);
    last = Number(buf.readBigUInt64LE(pos + 8));
    records++;
    pos = end;
  }
  return { bytes: buf.length, records, offsets, last };
}
