import { randomBytes } from "node:crypto";
import {
  closeSync,
  fdatasync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writevSync,
} from "node:fs";
import { join } from "node:path";
import { crc32c } from "@node-rs/crc32";
import { writeFileAtomic } from "../../common/atomic-file.js";
import type { BatchRecord } from "../../common/transport.js";
import { HEADER, indexAfter, readRecords, rewriteSegment, scanSegment, type Segment, SUFFIX } from "./wal-segment.js";

// The collector's crash-safe disk buffer: an append-only log of records in numbered segment files, and a
// persisted cursor of what the shipper has delivered. A batch is acknowledged to its sender once appended
// and, under policy `always`, fsynced (whenDurable): group commit, one fsync at a time off the event loop, and
// the records appended while it runs share the next one, so the fsyncs per second of the disk bound the
// commits, not the records. The shipper reads from the cursor and advances it only after Kafka acknowledged,
// so a restart replays what was not yet delivered: at-least-once, never lost.
//
// Record format and recovery on open: wal-segment.ts.

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
   * Told of every batch `drop_oldest` discarded, and of every damaged segment found on open with the undelivered
   * records lost in it (`records`, perhaps 0) and their sequences, for metrics and logs. Under drop_oldest,
   * batches the shipper already read for a send still pending are counted too, though that send may yet
   * deliver them.
   */
  onDrop?: (event: WalDrop) => void;
  /** Told of a record cut short at the end of the last segment (an append a crash interrupted), cut away on open. */
  onTruncated?: (event: { file: string; offset: number; bytes: number }) => void;
}

export interface WalDrop {
  reason: "disk_budget" | "corrupt_segment";
  records: number;
  /** The segment's bytes (disk_budget) or its damaged bytes (corrupt_segment). */
  bytes: number;
  file: string;
  /** corrupt_segment: the undelivered sequences lost, as inclusive ranges. */
  sequences?: [number, number][];
}

/** The disk budget is exhausted under policy `block`: the caller answers its sender 429/503 with Retry-After. */
export class WalFullError extends Error {
  override readonly name = "WalFullError";
}

export class Wal {
  /**
   * Drawn anew at every open and carried in every batch numbered from then on (proto/batch.ts batchId): sequences
   * may start over (a new or wiped buffer), be handed out again (records lost at the end of the buffer), or be
   * counted by another collector with the same node id, or by a copy of this disk, none of which an id kept on
   * the disk could tell apart. Records already in the buffer keep the incarnation they were written with.
   */
  readonly incarnation = randomBytes(8).toString("hex");
  private readonly segments: Segment[] = [];
  private fd: number | undefined;
  private nextSequence = 1;
  private shipped = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  /** The last sequence an fsync has made durable (policy `always`). */
  private durable = 0;
  /** The fsync running off the event loop, if any: its file, and the sequence it covers up to. */
  private syncing: { fd: number; upTo: number; done: Promise<void> } | undefined;
  /** Files closed while an fsync on them still ran: closed once it ends. */
  private readonly closeAfterSync = new Set<number>();
  private readonly durableWaiters: { sequence: number; resolve: () => void; reject: (err: unknown) => void }[] = [];
  /** fsyncs that whenDurable ran, for /metrics and tests: fewer than the commits they made durable under load. */
  groupCommits = 0;

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
    const { dir } = this.options;
    mkdirSync(dir, { recursive: true });
    try {
      this.shipped = Number(readFileSync(this.cursorFile(), "utf8").trim()) || 0;
    } catch {
      this.shipped = 0;
    }
    const entries = readdirSync(dir);
    // A rewrite of a damaged segment that a crash interrupted: the original is still in place.
    for (const name of entries) if (name.endsWith(`${SUFFIX}.tmp`)) rmSync(join(dir, name), { force: true });
    const names = entries.filter((f) => f.endsWith(SUFFIX)).sort();
    const firstOf = (name: string) => Number(name.slice(0, -SUFFIX.length));
    let highestLost = 0;
    names.forEach((name, i) => {
      const file = join(dir, name);
      const first = firstOf(name);
      const contents = readFileSync(file);
      const scan = scanSegment(contents, first, i + 1 < names.length ? firstOf(names[i + 1]!) : undefined);
      let bytes = contents.length;
      if (scan.tornAt !== undefined)
        this.options.onTruncated?.({ file, offset: scan.tornAt, bytes: contents.length - scan.tornAt });
      if (scan.damage.length > 0) {
        bytes = rewriteSegment(file, contents, scan.offsets);
        const lost = scan.damage
          .map((d): [number, number] => [Math.max(d.after, this.shipped) + 1, d.before - 1])
          .filter(([from, to]) => from <= to);
        highestLost = Math.max(highestLost, ...scan.damage.map((d) => d.before - 1));
        this.options.onDrop?.({
          reason: "corrupt_segment",
          records: lost.reduce((n, [from, to]) => n + to - from + 1, 0),
          bytes: scan.damage.reduce((n, d) => n + d.bytes, 0),
          file,
          sequences: lost,
        });
      } else if (scan.tornAt !== undefined) {
        const fd = openSync(file, "r+");
        ftruncateSync(fd, scan.tornAt);
        fsyncSync(fd);
        closeSync(fd);
        bytes = scan.tornAt;
      }
      this.segments.push({
        first,
        last: scan.sequences.at(-1) ?? first - 1,
        file,
        bytes,
        offsets: scan.offsets,
        sequences: scan.sequences,
      });
    });
    const tail = this.segments[this.segments.length - 1];
    // Past the sequences of lost records too, so that sequences only ever grow within the buffer.
    this.nextSequence = Math.max(this.shipped + 1, tail ? tail.last + 1 : 1, highestLost + 1);
    this.durable = this.nextSequence - 1;
    this.dropShipped();
  }

  /** Appends one record and returns its sequence; durable once whenDurable() resolves. */
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
    active.sequences.push(sequence);
    active.bytes += size;
    active.last = sequence;
    this.dirty = true;
    return sequence;
  }

  /**
   * Resolves once every record appended so far is as durable as the fsync policy makes it: fsynced under
   * `always`, handed to the OS otherwise (it survives the process, not the machine). Under `always`, the callers
   * that ask while an fsync runs share the next one (group commit); rejects with the fsync's error.
   */
  whenDurable(): Promise<void> {
    const sequence = this.nextSequence - 1;
    if (this.options.fsync !== "always" || sequence <= this.durable) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.durableWaiters.push({ sequence, resolve, reject }));
    if (this.syncing === undefined) this.startSync();
    return done;
  }

  /** Resolves when no fsync runs: appends made then go to the next one together. */
  idle(): Promise<void> {
    return this.syncing?.done ?? Promise.resolve();
  }

  private startSync(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    const upTo = this.nextSequence - 1;
    this.groupCommits++;
    let settle!: () => void;
    this.syncing = { fd, upTo, done: new Promise<void>((resolve) => (settle = resolve)) };
    fdatasync(fd, (err) => {
      this.syncing = undefined;
      if (this.closeAfterSync.delete(fd)) closeSync(fd);
      if (err) this.settleWaiters(upTo, err);
      else {
        this.durable = Math.max(this.durable, upTo);
        this.settleWaiters(this.durable);
      }
      settle();
      if (this.durableWaiters.length > 0) this.startSync();
    });
  }

  /** Resolves the waiters for records up to `sequence`, or rejects them with `err`. */
  private settleWaiters(sequence: number, err?: unknown): void {
    let kept = 0;
    for (const waiter of this.durableWaiters) {
      if (waiter.sequence > sequence) this.durableWaiters[kept++] = waiter;
      else if (err === undefined) waiter.resolve();
      else waiter.reject(err);
    }
    this.durableWaiters.length = kept;
  }

  /** Every record appended so far was just fsynced (a segment closed, the log closed). */
  private allDurable(): void {
    this.durable = this.nextSequence - 1;
    this.settleWaiters(this.durable);
  }

  /** Closes a segment file, once the fsync running on it (if one does) has ended. */
  private release(fd: number): void {
    if (this.syncing?.fd === fd) this.closeAfterSync.add(fd);
    else closeSync(fd);
  }

  private startSegment(): Segment {
    if (this.fd !== undefined) {
      fsyncSync(this.fd);
      this.release(this.fd);
      this.allDurable();
    }
    const first = this.nextSequence;
    const file = join(this.options.dir, `${String(first).padStart(20, "0")}${SUFFIX}`);
    this.fd = openSync(file, "a");
    const existing = this.segments.find((s) => s.file === file);
    if (existing) return existing;
    const segment = { first, last: first - 1, file, bytes: fstatSync(this.fd).size, offsets: [], sequences: [] };
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
      const undelivered = oldest.offsets.length - indexAfter(oldest, this.shipped);
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
      const from = indexAfter(segment, this.shipped);
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
    writeFileAtomic(this.cursorFile(), `${this.shipped}\n`, false);
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
    if (this.fd !== undefined) this.allDurable();
  }

  bytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0);
  }

  /** Records appended but not yet delivered. */
  pending(): number {
    let n = 0;
    for (const segment of this.segments)
      if (segment.last > this.shipped) n += segment.offsets.length - indexAfter(segment, this.shipped);
    return n;
  }

  close(): void {
    clearInterval(this.timer);
    this.sync();
    if (this.fd !== undefined) this.release(this.fd);
    this.fd = undefined;
  }
}
