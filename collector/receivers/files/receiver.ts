import type { BigIntStats } from "node:fs";
import { open, readdir, readlink, stat, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { glob } from "tinyglobby";
import type { Logger } from "../../../common/log.js";
import type { IngestContract } from "../../../common/ingest-contract.js";
import type { Batcher } from "../../buffer/batcher.js";
import { WalFullError } from "../../buffer/wal.js";
import { identityKey, Positions } from "./positions.js";
import {
  CHUNK_BYTES,
  checksum,
  type FileSource,
  FINGERPRINT_BYTES,
  type Read,
  readAt,
  TailedFile,
} from "./tailed-file.js";

export type { FileSource } from "./tailed-file.js";

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

export interface FileTailEvents {
  onLines?: (tenant: string, lines: number) => void;
  onRotation?: (kind: "rename" | "truncate") => void;
  onTruncatedLine?: () => void;
  onWatched?: (files: number) => void;
  /** The disk buffer is full under policy `block`: reading pauses until it has room (true), or resumed (false). */
  onPaused?: (paused: boolean) => void;
  /** Lines outside the ingestion contract, skipped: how many, why, and the first message. */
  onRefused?: (tenant: string, reason: string, lines: number, message: string) => void;
}

export interface FileTailOptions extends FileTailEvents {
  sources: FileSource[];
  batcher: Pick<Batcher, "add" | "flush">;
  /** What may go to the batcher: a line outside it is skipped and reported (onRefused), never retried. */
  contract?: Pick<IngestContract, "screen">;
  positionsFile: string;
  pollMs: number;
  syncMs: number;
  rotateWaitMs: number;
  maxLineBytes: number;
  /**
   * Bytes read in one poll, shared by the files (each may read at least 16 KiB): about a batch, so that busy
   * files fill batches while one poll never makes an outsized one.
   */
  maxReadBytes: number;
  log?: Logger;
}

const MIN_READ_BYTES = 16 << 10;
/** How often a paused tail tries the disk buffer again. */
const PAUSED_RETRY_MS = 1000;

async function statOf(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch {
    return undefined;
  }
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

export class FileTail {
  private readonly tails = new Map<string, TailedFile>();
  private readonly chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  private readonly positions: Positions;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private nextSync = 0;
  private paused = false;
  private savedAt = 0;

  constructor(private readonly options: FileTailOptions) {
    const { positions, problem } = Positions.load(options.positionsFile);
    if (problem)
      options.log?.error(
        { file: options.positionsFile, problem },
        "cannot read the file positions: files are read from their start",
      );
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
      let backlog = false;
      try {
        backlog = await this.poll();
      } catch (err) {
        this.options.log?.error({ err }, "file tail poll failed");
      }
      if (this.stopped) break;
      // A file written faster than one budget per poll is read on at once, or the poll interval would cap its rate.
      if (backlog && !this.paused) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(
          resolve,
          this.paused ? Math.max(this.options.pollMs, PAUSED_RETRY_MS) : this.options.pollMs,
        );
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** One round over the files; true when a file has more to read than this round's budget took. */
  private async poll(): Promise<boolean> {
    const now = Date.now();
    if (now >= this.nextSync) {
      await this.sync(now);
      this.nextSync = now + this.options.syncMs;
    }
    await this.followPaths(now);
    // Rotated files first: their lines were written before those of the file that replaced them.
    const ordered = [...this.tails.values()].sort(
      (a, b) => Number(b.movedAt !== undefined) - Number(a.movedAt !== undefined),
    );
    const { maxReadBytes } = this.options;
    const settings = {
      ...this.options,
      chunk: this.chunk,
      maxReadBytes: Math.max(
        Math.floor(maxReadBytes / Math.max(1, ordered.length)),
        Math.min(maxReadBytes, MIN_READ_BYTES),
      ),
    };
    const reads: Read[] = [];
    for (const tail of ordered) {
      try {
        reads.push(await tail.read(now, settings));
      } catch (err) {
        tail.rollback();
        this.options.log?.warn({ err, path: tail.path }, "cannot read a tailed file");
      }
    }
    // Reads go to the batcher by tenant and, when sources have their own processing pipelines, by source batcher.
    const byTenant = new Map<string, { tenant: string; batcher: FileTailOptions["batcher"]; group: Read[] }>();
    const batcherIds = new Map<FileTailOptions["batcher"], number>();
    for (const read of reads) {
      const { tenant, batcher = this.options.batcher } = read.tail.source;
      if (!batcherIds.has(batcher)) batcherIds.set(batcher, batcherIds.size);
      const key = `${batcherIds.get(batcher)}\n${tenant}`;
      const known = byTenant.get(key);
      if (known) known.group.push(read);
      else byTenant.set(key, { tenant, batcher, group: [read] });
    }
    let full = false;
    const backlog = reads.some((read) => read.backlog);
    const delivered = Promise.all(
      [...byTenant.values()].map(async ({ tenant, batcher, group }) => {
        const sending = group.filter((read) => read.entries > 0);
        let streams = sending.flatMap((read) => read.streams);
        const screened = this.options.contract?.screen(tenant, { streams });
        if (screened) {
          streams = screened.data.streams;
          for (const [reason, { count, message }] of screened.refused)
            this.options.onRefused?.(tenant, reason, count, message);
        }
        try {
          if (streams.length > 0) await batcher.add(tenant, { streams });
        } catch (err) {
          if (err instanceof WalFullError) full = true;
          else this.options.log?.error({ err, tenant }, "the batcher refused lines of tailed files");
          for (const read of group) read.tail.rollback();
          return;
        }
        const lines = streams.reduce((n, stream) => n + stream.entries.length, 0);
        if (lines > 0) this.options.onLines?.(tenant, lines);
        for (const read of group) {
          read.tail.commit(read.commitTo);
          if (read.finished) await this.retire(read.tail);
          else this.positions.set(read.tail.position());
        }
      }),
    );
    // A round's budget of lines falls just short of a batch's bytes (the newlines are not counted): waiting for
    // the batch's age before reading on would cap a busy file at one budget per max_age_ms.
    if (backlog) this.options.batcher.flush();
    await delivered;
    if (full !== this.paused) {
      this.paused = full;
      this.options.onPaused?.(full);
      if (full) this.options.log?.warn("disk buffer full: file tails paused");
      else this.options.log?.info("disk buffer has room again: file tails resumed");
    }
    // While catching up, the positions are saved once per poll interval, not per round: a crash re-reads a
    // little more (duplicates, never loss), and the rounds do not wait on fsync.
    if (!backlog || now - this.savedAt >= this.options.pollMs) {
      this.positions.save();
      this.savedAt = now;
    }
    this.options.onWatched?.(this.tails.size);
    return backlog;
  }

  /** Expands the globs: opens new files, and drains or forgets files known from the positions. */
  private async sync(now: number): Promise<void> {
    const seen = new Set<string>();
    for (const source of this.options.sources) {
      let paths: string[];
      try {
        paths = await glob(source.paths, {
          ignore: source.exclude,
          absolute: true,
          onlyFiles: true,
          expandDirectories: false,
          followSymbolicLinks: true,
          dot: true,
        });
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
      if (
        stats?.isFile() &&
        !this.tails.has(identityKey(stats.dev, stats.ino)) &&
        (await this.openTail(tail.path, tail.source, now))
      )
        live.add(tail.path);
    }
  }

  private async openTail(path: string, source: FileSource, now: number): Promise<TailedFile | undefined> {
    await source.prepare?.(path).catch(() => {});
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
    const resume =
      known &&
      known.fingerprintBytes <= head.length &&
      checksum(head.subarray(0, known.fingerprintBytes)) === known.fingerprint &&
      known.offset <= size;
    const tail = new TailedFile(
      fh,
      key,
      stats.dev,
      stats.ino,
      path,
      resume ? known.filename : path,
      source,
      checksum(head),
      head.length,
      resume ? known.offset : 0,
      now,
    );
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
