import type { FileHandle } from "node:fs/promises";
import { crc32c } from "@node-rs/crc32";
import { type LogStream } from "../../../proto/batch.js";
import { labelsOf, type Labels, NO_LABELS } from "../../../proto/labels.js";
import { type Joined, type LineAssembler, MultilineJoiner, type MultilineOptions } from "./multiline.js";
import type { FilePosition } from "./positions.js";
import type { Batcher } from "../../buffer/batcher.js";

// One tailed file: reads new bytes from its handle, cuts them into lines (and multi-line entries), and keeps
// two offsets: how far it has read, and how far the disk buffer has what it read (the position saved).
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
  /** A decoder of each file's lines (container log formats) instead of one entry per line or `multiline`. */
  decode?: () => LineAssembler;
  /** The stream labels of a file by its `filename`, instead of `labels` and `filename`. */
  labelsFor?: (filename: string) => Labels;
  /** Runs before a new file is opened (to learn its labels first); a failure does not keep it from being read. */
  prepare?: (path: string) => Promise<void>;
  /** Where the source's lines go instead of the tail's batcher: the one with the source's processing pipeline. */
  batcher?: Pick<Batcher, "add" | "flush">;
}

export const FINGERPRINT_BYTES = 1024;
/** Bytes per read call: each is a round trip through libuv's thread pool, which a busy file pays per chunk. */
export const CHUNK_BYTES = 256 << 10;

export interface Read {
  tail: TailedFile;
  /** The entries read, as streams: one, or more where the decoder sets labels per entry. */
  streams: LogStream[];
  entries: number;
  /** The position once these entries are delivered: the start of the first byte not in them. */
  commitTo: number;
  /** A rotated file read to its end: close it once the entries are delivered. */
  finished: boolean;
  /** The read stopped at its budget with more of the file waiting. */
  backlog: boolean;
}

/** What a read needs of the tail's options. */
export interface ReadSettings {
  maxLineBytes: number;
  maxReadBytes: number;
  rotateWaitMs: number;
  /**
   * Where chunks are read, CHUNK_BYTES long, reused from read to read: a fresh chunk per read was garbage the
   * size of the input rate. Only the unfinished last line of a chunk is copied out of it.
   */
  chunk: Buffer;
  onRotation?: (kind: "rename" | "truncate") => void;
  onTruncatedLine?: () => void;
}

/** Reads up to `length` bytes at `position`, into `into` if given (which must hold them). */
export async function readAt(fh: FileHandle, position: number, length: number, into?: Buffer): Promise<Buffer> {
  const buf = into ?? Buffer.allocUnsafe(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

export function checksum(bytes: Buffer): string {
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
export class TailedFile {
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
  private readonly joiner: LineAssembler | undefined;
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
    this.joiner = source.decode?.() ?? (source.multiline && new MultilineJoiner(source.multiline));
  }

  get labels(): Labels {
    return (
      this.source.labelsFor?.(this.filename) ??
      labelsOf([...Object.entries(this.source.labels), ["filename", this.filename]])
    );
  }

  position(path = this.path): FilePosition {
    return {
      path,
      filename: this.filename,
      dev: String(this.dev),
      ino: String(this.ino),
      fingerprint: this.fingerprint,
      fingerprintBytes: this.fingerprintBytes,
      offset: this.committed,
    };
  }

  async read(now: number, settings: ReadSettings): Promise<Read> {
    const out: Joined[] = [];
    const size = Number((await this.fh.stat({ bigint: true })).size);
    if (size !== this.lastSize) {
      if (await this.replaced(size)) {
        // What was read of the old content but not yet delivered is delivered before starting over.
        if (this.partialBytes > 0 || this.overlong) this.endLine(this.readOffset, out, now, settings);
        if (this.joiner) out.push(...this.joiner.flush());
        this.committed = this.readOffset = this.lineStart = 0;
        settings.onRotation?.("truncate");
      }
      this.lastSize = size;
      this.grewAt = now;
    }
    for (let budget = settings.maxReadBytes; this.readOffset < size && budget > 0;) {
      const chunk = await readAt(
        this.fh,
        this.readOffset,
        Math.min(CHUNK_BYTES, size - this.readOffset, budget),
        settings.chunk,
      );
      if (chunk.length === 0) break;
      this.consume(chunk, out, now, settings);
      budget -= chunk.length;
    }
    if (this.joiner) out.push(...this.joiner.expire(now));
    let finished = false;
    if (
      this.movedAt !== undefined &&
      this.readOffset >= size &&
      now - Math.max(this.movedAt, this.grewAt) >= settings.rotateWaitMs
    ) {
      // The writer has let go of the rotated file: an unterminated last line is a line too.
      if (this.partialBytes > 0 || this.overlong) this.endLine(this.readOffset, out, now, settings);
      if (this.joiner) out.push(...this.joiner.flush());
      finished = true;
    }
    const readNs = BigInt(now) * 1_000_000n;
    // A single UTF-8 line was already cut to the limit as it was read; joined multi-line entries, and latin1
    // lines, whose characters above 0x7f take two bytes in UTF-8, can still be over it.
    const check = this.joiner !== undefined || this.source.encoding !== "utf8";
    const labels = this.labels;
    const streams = new Map<Labels | undefined, LogStream>();
    for (const joined of out) {
      let stream = streams.get(joined.labels);
      if (!stream) {
        stream = {
          labels: joined.labels ? labelsOf([...Object.entries(labels), ...Object.entries(joined.labels)]) : labels,
          entries: [],
        };
        streams.set(joined.labels, stream);
      }
      stream.entries.push({
        timeUnixNano: joined.timeUnixNano ?? this.stamp(readNs),
        line: check ? this.limit(joined.text, settings) : joined.text,
        metadata: NO_LABELS,
      });
    }
    return {
      tail: this,
      streams: [...streams.values()],
      entries: out.length,
      commitTo: Math.min(this.joiner?.pendingStart ?? Infinity, this.lineStart),
      finished,
      backlog: this.readOffset < size,
    };
  }

  /** Whether the file was truncated or rewritten in place; keeps the fingerprint up to date otherwise. */
  private async replaced(size: number): Promise<boolean> {
    const head = await readAt(this.fh, 0, Math.min(size, FINGERPRINT_BYTES));
    const replaced =
      size < this.readOffset ||
      head.length < this.fingerprintBytes ||
      checksum(head.subarray(0, this.fingerprintBytes)) !== this.fingerprint;
    this.fingerprint = checksum(head);
    this.fingerprintBytes = head.length;
    return replaced;
  }

  private consume(chunk: Buffer, out: Joined[], now: number, settings: ReadSettings): void {
    const at = this.readOffset;
    for (let from = 0; ;) {
      const newline = chunk.indexOf(0x0a, from);
      // The chunk's buffer is read into again: an unfinished line keeps a copy of its piece.
      this.append(chunk.subarray(from, newline < 0 ? chunk.length : newline), settings.maxLineBytes, newline < 0);
      if (newline < 0) break;
      this.endLine(at + newline + 1, out, now, settings);
      from = newline + 1;
    }
    this.readOffset = at + chunk.length;
  }

  private append(piece: Buffer, max: number, copy: boolean): void {
    if (this.overlong) return;
    if (this.partialBytes + piece.length > max) {
      this.overlong = true;
      piece = piece.subarray(0, max - this.partialBytes);
    }
    if (piece.length === 0) return;
    this.partial.push(copy ? Buffer.from(piece) : piece);
    this.partialBytes += piece.length;
  }

  private endLine(end: number, out: Joined[], now: number, settings: ReadSettings): void {
    let bytes: Buffer = this.partial.length === 1 ? this.partial[0]! : Buffer.concat(this.partial, this.partialBytes);
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
  private limit(text: string, settings: ReadSettings): string {
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
  private stamp(ns: bigint): bigint {
    this.lastNs = ns > this.lastNs ? ns : this.lastNs + 1n;
    return this.lastNs;
  }
}
