import type { BigIntStats } from "node:fs";
import { open, readdir, readlink, stat, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { crc32c } from "@node-rs/crc32";
import { glob } from "tinyglobby";
import type { Logger } from "../../common/log.js";
import { labelsOf, type Labels, type LogEntry } from "../../proto/batch.js";
import type { Batcher } from "../batcher.js";
import { WalFullError } from "../wal.js";
import { type Joined, MultilineJoiner, type MultilineOptions } from "./multiline.js";
import { type FilePosition, identityKey, Positions } from "./positions.js";

// Tails files as Promtail does: every line of every file matching the globs becomes an entry of the stream
// {filename="<path>", <configured labels>}, stamped with the time it was read. A file's position moves only
// once the batcher has the lines in the disk buffer, and is persisted atomically after that, so a crash or
// restart re-reads at most what was in flight (duplicates, never loss) and a clean restart neither.
//
// Files are polled, not watched: a poll must run anyway to catch what inotify misses (network and overlay
// file systems, watch limits, truncation, a rename and re-create between two events), and a stat per file per
// poll is cheap. Each poll stats every tailed path, so a rotation is seen within one poll; the globs are
// expanded again every `syncMs` for new files (tinyglobby, the glob of Vite and ESLint: picomatch patterns
// over fdir's directory walk, two small dependencies; Node 20 has no fs.glob).
//
// Rotation: a file is known by device and inode plus a checksum of its first bytes. When its path names
// another file or none (rename rotation, deletion), the old file is read to its end through the open handle
// and closed once it has not grown for `rotateWaitMs` (Fluent Bit's rotate_wait), while the new file at the
// path is read from its start. A file that shrank, or whose first bytes changed, was truncated in place
// (copy-truncate): it is read again from offset 0.
//
// Long lines are truncated to `maxLineBytes` (at a UTF-8 character boundary) and counted, as Promtail's
// max_line_size_truncate does; the rest of the line is skipped without being held in memory. Fluent Bit
// and Vector skip such lines instead, and splitting one would make several broken events out of one.

export interface FileSource {
  paths: string[];
  exclude: string[];
  labels: Labels;
  tenant: string;
  encoding: "utf8" | "latin1";
  multiline?: MultilineOptions;
}

export interface FileTailEvents {
  onLines?: (tenant: string, lines: number) => void;
  onRotation?: (kind: "rename" | "truncate") => void;
  onTruncatedLine?: () => void;
  onWatched?: (files: number) => void;
  /** The disk buffer is full under policy `block`: reading pauses until it has room (true), or resumed (false). */
  onPaused?: (paused: boolean) => void;
}

export interface FileTailOptions extends FileTailEvents {
  sources: FileSource[];
  batcher: Pick<Batcher, "add" | "flush">;
  positionsFile: string;
  pollMs: number;
  syncMs: number;
  rotateWaitMs: number;
  maxLineBytes: number;
  /** Bytes read from one file in one poll: about a batch, so a busy file fills batches without starving the rest. */
  maxReadBytes: number;
  log?: Logger;
}

const FINGERPRINT_BYTES = 1024;
const CHUNK_BYTES = 64 << 10;
/** How often a paused tail tries the disk buffer again. */
const PAUSED_RETRY_MS = 1000;

interface Read {
  tail: TailedFile;
  entries: LogEntry[];
  /** The position once these entries are delivered: the start of the first byte not in them. */
  commitTo: number;
  /** A rotated file read to its end: close it once the entries are delivered. */
  finished: boolean;
}

type Settings = Pick<FileTailOptions, "maxLineBytes" | "maxReadBytes" | "rotateWaitMs"> & FileTailEvents;

async function statOf(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch {
    return undefined;
  }
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

async function findInDirectory(dir: string, key: string): Promise<{ path: string; stats: BigIntStats } | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    const stats = await statOf(join(dir, name));
    if (stats?.isFile() && identityKey(stats.dev, stats.ino) === key) return { path: join(dir, name), stats };
  }
  return undefined;
}

function checksum(bytes: Buffer): string {
  return (crc32c(bytes) >>> 0).toString(16);
}

/** The longest prefix of `bytes` of at most `max` bytes that does not end inside a UTF-8 character. */
export function utf8Prefix(bytes: Buffer, max: number): Buffer {
  let end = Math.min(bytes.length, max);
  // Back up over continuation bytes to the lead byte of the last character, and drop that character if cut.
  let lead = end;
  while (lead > 0 && end - lead < 3 && (bytes[lead - 1]! & 0xc0) === 0x80) lead--;
  const first = lead > 0 ? bytes[lead - 1]! : 0;
  if (first >= 0xc0) {
    const length = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : 2;
    if (lead - 1 + length > end) end = lead - 1;
  }
  return bytes.subarray(0, end);
}

/** One open file and how far into it the tail has read and delivered. */
class TailedFile {
  committed: number;
  private readOffset: number;
  /** Where the line being read started; `partial` holds its bytes so far (at most the line limit). */
  private lineStart: number;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private overlong = false;
  private lastSize = -1;
  private grewAt: number;
  /** When the path stopped naming this file; undefined while it does. */
  movedAt: number | undefined;
  private readonly joiner: MultilineJoiner | undefined;
  private lastNs = 0n;

  constructor(
    readonly fh: FileHandle,
    readonly key: string,
    readonly dev: bigint,
    readonly ino: bigint,
    public path: string,
    readonly filename: string,
    readonly source: FileSource,
    private fingerprint: string,
    private fingerprintBytes: number,
    offset: number,
    now: number,
  ) {
    this.committed = this.readOffset = this.lineStart = offset;
    this.grewAt = now;
    this.joiner = source.multiline && new MultilineJoiner(source.multiline);
  }

  get labels(): Labels {
    return labelsOf([...Object.entries(this.source.labels), ["filename", this.filename]]);
  }

  position(path = this.path): FilePosition {
    return { path, filename: this.filename, dev: String(this.dev), ino: String(this.ino), fingerprint: this.fingerprint, fingerprintBytes: this.fingerprintBytes, offset: this.committed };
  }

  async read(now: number, settings: Settings): Promise<Read> {
    const out: Joined[] = [];
    const size = Number((await this.fh.stat({ bigint: true })).size);
    if (size !== this.lastSize) {
      if (await this.replaced(size)) {
        // What was read of the old content but not yet delivered is delivered before starting over.
        if (this.partialBytes > 0 || this.overlong) this.endLine(this.readOffset, out, now, settings);
        const pending = this.joiner?.flush();
        if (pending) out.push(pending);
        this.committed = this.readOffset = this.lineStart = 0;
        settings.onRotation?.("truncate");
      }
      this.lastSize = size;
      this.grewAt = now;
    }
    for (let budget = settings.maxReadBytes; this.readOffset < size && budget > 0; ) {
      const chunk = await readAt(this.fh, this.readOffset, Math.min(CHUNK_BYTES, size - this.readOffset, budget));
      if (chunk.length === 0) break;
      this.consume(chunk, out, now, settings);
      budget -= chunk.length;
    }
    const stale = this.joiner?.expire(now);
    if (stale) out.push(stale);
    let finished = false;
    if (this.movedAt !== undefined && this.readOffset >= size && now - Math.max(this.movedAt, this.grewAt) >= settings.rotateWaitMs) {
      // The writer has let go of the rotated file: an unterminated last line is a line too.
      if (this.partialBytes > 0 || this.overlong) this.endLine(this.readOffset, out, now, settings);
      const last = this.joiner?.flush();
      if (last) out.push(last);
      finished = true;
    }
    const entries = out.map((joined) => ({ timeUnixNano: this.stamp(), line: this.limit(joined.text, settings), metadata: labelsOf([]) }));
    return { tail: this, entries, commitTo: Math.min(this.joiner?.pendingStart ?? Infinity, this.lineStart), finished };
  }

  /** Whether the file was truncated or rewritten in place; keeps the fingerprint up to date otherwise. */
  private async replaced(size: number): Promise<boolean> {
    const head = await readAt(this.fh, 0, Math.min(size, FINGERPRINT_BYTES));
    const replaced = size < this.readOffset || head.length < this.fingerprintBytes || checksum(head.subarray(0, this.fingerprintBytes)) !== this.fingerprint;
    this.fingerprint = checksum(head);
    this.fingerprintBytes = head.length;
    return replaced;
  }

  private consume(chunk: Buffer, out: Joined[], now: number, settings: Settings): void {
    const at = this.readOffset;
    for (let from = 0; ; ) {
      const newline = chunk.indexOf(0x0a, from);
      this.append(chunk.subarray(from, newline < 0 ? chunk.length : newline), settings.maxLineBytes);
      if (newline < 0) break;
      this.endLine(at + newline + 1, out, now, settings);
      from = newline + 1;
    }
    this.readOffset = at + chunk.length;
  }

  private append(piece: Buffer, max: number): void {
    if (this.overlong) return;
    if (this.partialBytes + piece.length > max) {
      this.overlong = true;
      piece = piece.subarray(0, max - this.partialBytes);
    }
    if (piece.length === 0) return;
    this.partial.push(piece);
    this.partialBytes += piece.length;
  }

  private endLine(end: number, out: Joined[], now: number, settings: Settings): void {
    let bytes: Buffer = Buffer.concat(this.partial, this.partialBytes);
    if (bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, -1);
    if (this.overlong) {
      settings.onTruncatedLine?.();
      if (this.source.encoding === "utf8") bytes = utf8Prefix(bytes, settings.maxLineBytes);
    }
    const line = { text: bytes.toString(this.source.encoding), start: this.lineStart, end };
    this.partial = [];
    this.partialBytes = 0;
    this.overlong = false;
    this.lineStart = end;
    if (this.joiner) out.push(...this.joiner.push(line, now));
    else out.push(line);
  }

  /** A joined entry over the line limit is cut like a long line. */
  private limit(text: string, settings: Settings): string {
    if (Buffer.byteLength(text) <= settings.maxLineBytes) return text;
    settings.onTruncatedLine?.();
    return utf8Prefix(Buffer.from(text), settings.maxLineBytes).toString();
  }

  commit(offset: number): void {
    this.committed = offset;
  }

  /** The batcher refused the entries: forget what was read since the position and read it again later. */
  rollback(): void {
    this.readOffset = this.lineStart = this.committed;
    this.partial = [];
    this.partialBytes = 0;
    this.overlong = false;
    this.joiner?.reset();
  }

  /** Read time in nanoseconds, strictly increasing within the file so that its lines keep their order. */
  private stamp(): bigint {
    const ns = BigInt(Date.now()) * 1_000_000n;
    this.lastNs = ns > this.lastNs ? ns : this.lastNs + 1n;
    return this.lastNs;
  }
}

export class FileTail {
  private readonly tails = new Map<string, TailedFile>();
  private readonly positions: Positions;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private nextSync = 0;
  private paused = false;

  constructor(private readonly options: FileTailOptions) {
    const { positions, problem } = Positions.load(options.positionsFile);
    if (problem) options.log?.error({ file: options.positionsFile, problem }, "cannot read the file positions: files are read from their start");
    this.positions = positions;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops reading, waits for the lines in flight to reach the disk buffer, and saves the positions. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.options.batcher.flush();
    await this.loop;
    for (const tail of this.tails.values()) {
      this.positions.set(tail.position());
      await tail.fh.close();
    }
    this.tails.clear();
    this.positions.save();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.poll();
      } catch (err) {
        this.options.log?.error({ err }, "file tail poll failed");
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.paused ? Math.max(this.options.pollMs, PAUSED_RETRY_MS) : this.options.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async poll(): Promise<void> {
    const now = Date.now();
    if (now >= this.nextSync) {
      await this.sync(now);
      this.nextSync = now + this.options.syncMs;
    }
    await this.followPaths(now);
    // Rotated files first: their lines were written before those of the file that replaced them.
    const ordered = [...this.tails.values()].sort((a, b) => Number(b.movedAt !== undefined) - Number(a.movedAt !== undefined));
    const reads: Read[] = [];
    for (const tail of ordered) {
      try {
        reads.push(await tail.read(now, this.options));
      } catch (err) {
        tail.rollback();
        this.options.log?.warn({ err, path: tail.path }, "cannot read a tailed file");
      }
    }
    const byTenant = new Map<string, Read[]>();
    for (const read of reads) {
      const group = byTenant.get(read.tail.source.tenant);
      if (group) group.push(read);
      else byTenant.set(read.tail.source.tenant, [read]);
    }
    let full = false;
    await Promise.all(
      [...byTenant].map(async ([tenant, group]) => {
        const sending = group.filter((read) => read.entries.length > 0);
        try {
          if (sending.length > 0) await this.options.batcher.add(tenant, { streams: sending.map((read) => ({ labels: read.tail.labels, entries: read.entries })) });
        } catch (err) {
          if (err instanceof WalFullError) full = true;
          else this.options.log?.error({ err, tenant }, "the batcher refused lines of tailed files");
          for (const read of group) read.tail.rollback();
          return;
        }
        const lines = sending.reduce((n, read) => n + read.entries.length, 0);
        if (lines > 0) this.options.onLines?.(tenant, lines);
        for (const read of group) {
          read.tail.commit(read.commitTo);
          if (read.finished) await this.retire(read.tail);
          else this.positions.set(read.tail.position());
        }
      }),
    );
    if (full !== this.paused) {
      this.paused = full;
      this.options.onPaused?.(full);
      if (full) this.options.log?.warn("disk buffer full: file tails paused");
      else this.options.log?.info("disk buffer has room again: file tails resumed");
    }
    this.positions.save();
    this.options.onWatched?.(this.tails.size);
  }

  /** Expands the globs: opens new files, and drains or forgets files known from the positions. */
  private async sync(now: number): Promise<void> {
    const seen = new Set<string>();
    for (const source of this.options.sources) {
      let paths: string[];
      try {
        paths = await glob(source.paths, { ignore: source.exclude, absolute: true, onlyFiles: true, expandDirectories: false, followSymbolicLinks: true, dot: true });
      } catch (err) {
        this.options.log?.warn({ err, paths: source.paths }, "cannot expand file globs");
        continue;
      }
      for (const path of paths.sort()) {
        const stats = await statOf(path);
        if (!stats?.isFile()) continue;
        const key = identityKey(stats.dev, stats.ino);
        if (seen.has(key)) continue;
        seen.add(key);
        const tail = this.tails.get(key);
        if (!tail) await this.openTail(path, source, now);
        else if (tail.movedAt !== undefined) {
          // Renamed to a name the globs match too (app.log -> app.log.1 under app.log*): still tailed.
          tail.path = path;
          tail.movedAt = undefined;
        }
      }
    }
    for (const key of this.positions.keys()) {
      if (this.tails.has(key)) continue;
      let known = this.positions.get(key)!;
      let stats = await statOf(known.path);
      if (!stats || identityKey(stats.dev, stats.ino) !== key) {
        // Renamed while nobody watched (logrotate shifting app.log.1 to app.log.2, or a rotation while the
        // collector was down): rotation keeps files in their directory, so look there.
        const renamed = await findInDirectory(dirname(known.path), key);
        if (!renamed) {
          this.positions.delete(key);
          continue;
        }
        known = { ...known, path: renamed.path };
        stats = renamed.stats;
        this.positions.set(known);
      }
      // A rotated file that grew after it was closed, or while the collector was down: read the rest of it
      // with the settings of the file that took its name.
      const heir = [...this.tails.values()].find((tail) => tail.filename === known.filename);
      if (heir && Number(stats.size) > known.offset) {
        const tail = await this.openTail(known.path, heir.source, now);
        if (tail) tail.movedAt = now;
      }
    }
  }

  /** Notices rotations: a tailed path that names another file, or none, and the new file at that path. */
  private async followPaths(now: number): Promise<void> {
    const live = new Set<string>();
    for (const tail of this.tails.values()) {
      if (tail.movedAt !== undefined) continue;
      const stats = await statOf(tail.path);
      if (stats && identityKey(stats.dev, stats.ino) === tail.key) live.add(tail.path);
      else {
        tail.movedAt = now;
        this.options.onRotation?.("rename");
      }
    }
    for (const tail of [...this.tails.values()]) {
      if (tail.movedAt === undefined || live.has(tail.path)) continue;
      const stats = await statOf(tail.path);
      if (stats?.isFile() && !this.tails.has(identityKey(stats.dev, stats.ino)) && (await this.openTail(tail.path, tail.source, now))) live.add(tail.path);
    }
  }

  private async openTail(path: string, source: FileSource, now: number): Promise<TailedFile | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(path, "r");
    } catch (err) {
      this.options.log?.warn({ err, path }, "cannot open a file to tail");
      return undefined;
    }
    const stats = await fh.stat({ bigint: true });
    const key = identityKey(stats.dev, stats.ino);
    if (this.tails.has(key)) {
      await fh.close();
      return undefined;
    }
    const size = Number(stats.size);
    const head = await readAt(fh, 0, Math.min(size, FINGERPRINT_BYTES));
    const known = this.positions.get(key);
    const resume = known && known.fingerprintBytes <= head.length && checksum(head.subarray(0, known.fingerprintBytes)) === known.fingerprint && known.offset <= size;
    const tail = new TailedFile(fh, key, stats.dev, stats.ino, path, resume ? known.filename : path, source, checksum(head), head.length, resume ? known.offset : 0, now);
    this.tails.set(key, tail);
    this.positions.set(tail.position());
    return tail;
  }

  /** Closes a rotated file read to its end; its position stays, under its current name, while it exists there. */
  private async retire(tail: TailedFile): Promise<void> {
    let current: string | undefined;
    try {
      current = await readlink(`/proc/self/fd/${tail.fh.fd}`);
    } catch {
      current = undefined;
    }
    await tail.fh.close();
    this.tails.delete(tail.key);
    if (current?.endsWith(" (deleted)")) this.positions.delete(tail.key);
    else this.positions.set(tail.position(current ?? tail.path));
  }
}
