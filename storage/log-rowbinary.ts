import { type Labels, NO_LABELS } from "../proto/labels.js";
import { fingerprint } from "./fingerprint.js";
import { rawLogRows, type RawLogRows } from "./log-columns.js";
import type { AppendResult, LogBatch, Store } from "./store.js";
import { dayOfMs } from "./values.js";

// A log batch as the body of a ClickHouse INSERT in RowBinary, the format the engine parses fastest: built in
// the aggregator's worker threads and handed to the main thread as one transferable buffer, so the main
// thread neither receives decoded entries nor serializes them. One body per partition (day) of the batch,
// because the store's replay check finds which (batch, day) pairs it already holds and writes only the others.

/** The logs table's columns that a body holds, in this order. */
export const LOG_COLUMNS = [
  "tenant",
  "fingerprint",
  "timestamp",
  "line",
  "metadata",
  "batch_id",
  "arrival",
  "entry",
] as const;

/** One stream's rows within a part: what the streams index records. */
export interface LogStreamSpan {
  fingerprint: string;
  labels: Labels;
  minMs: number;
  maxMs: number;
}

export interface EncodedLogPart {
  /** The partition (toDate(timestamp)) as ClickHouse prints it. */
  day: string;
  rows: number;
  minNs: bigint;
  maxNs: bigint;
  /** Where this part's rows lie in the batch's buffer. */
  offset: number;
  length: number;
  streams: LogStreamSpan[];
}

export interface EncodedLogBatch {
  id: string;
  tenant: string;
  rows: number;
  parts: EncodedLogPart[];
  /** Every part's rows, one after the other. */
  buffer: Uint8Array;
}

/**
 * A store that inserts log batches already encoded here (the ClickHouse store): the aggregator then encodes in its
 * worker threads instead of handing decoded entries to the main thread.
 */
export interface EncodedLogsStore extends Store {
  /** appendLogs for batches encoded by encodeLogBatch. */
  appendEncodedLogs(batches: EncodedLogBatch[]): Promise<AppendResult>;
}

export function takesEncodedLogs(store: Store): store is EncodedLogsStore {
  return typeof (store as Partial<EncodedLogsStore>).appendEncodedLogs === "function";
}

/** A growable byte buffer with the RowBinary primitives. Its memory is its own (never Node's shared pool), so it can be transferred. */
export class RowBinaryWriter {
  private bytes: Buffer;
  length = 0;

  constructor(capacity: number) {
    this.bytes = Buffer.from(new ArrayBuffer(Math.max(capacity, 1024)));
  }

  private reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const grown = Buffer.from(new ArrayBuffer(Math.max(this.bytes.length * 2, this.length + n)));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }

  varUInt(value: number): void {
    this.reserve(10);
    while (value >= 0x80) {
      this.bytes[this.length++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    this.bytes[this.length++] = value;
  }

  string(text: string): void {
    // Up to 42 UTF-16 units encode to at most 126 bytes: a one-byte length, written after the text.
    if (text.length <= 42) {
      this.reserve(1 + 3 * text.length);
      const n = this.bytes.write(text, this.length + 1);
      this.bytes[this.length] = n;
      this.length += 1 + n;
      return;
    }
    const n = Buffer.byteLength(text);
    this.varUInt(n);
    this.reserve(n);
    this.length += this.bytes.write(text, this.length, n);
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    // A loop beats TypedArray.set on the few bytes copied per row.
    for (let i = 0; i < bytes.length; i++) this.bytes[this.length + i] = bytes[i]!;
    this.length += bytes.length;
  }

  /** A String whose UTF-8 bytes are `source[start, end)`, copied as they are. */
  utf8Copy(source: Buffer, start: number, end: number): void {
    const n = end - start;
    this.varUInt(n);
    this.reserve(n);
    // A loop for the few bytes of a label, a native copy for a line's.
    if (n > 32) source.copy(this.bytes, this.length, start, end);
    else for (let i = 0; i < n; i++) this.bytes[this.length + i] = source[start + i]!;
    this.length += n;
  }

  /** An Int64 given as its two 32-bit halves, as a protobuf fixed64 carries it. */
  int64Halves(low: number, high: number): void {
    this.reserve(8);
    this.bytes.writeUInt32LE(low, this.length);
    this.bytes.writeUInt32LE(high, this.length + 4);
    this.length += 8;
  }

  int64(value: bigint): void {
    this.reserve(8);
    this.bytes.writeBigInt64LE(value, this.length);
    this.length += 8;
  }

  /** A Float64 with its bits as they are, so that a NaN keeps its payload (a staleness marker stays one). */
  float64(value: number): void {
    this.reserve(8);
    this.bytes.writeDoubleLE(value, this.length);
    this.length += 8;
  }

  uint32(value: number): void {
    this.reserve(4);
    this.bytes.writeUInt32LE(value, this.length);
    this.length += 4;
  }

  uint64(value: bigint): void {
    this.reserve(8);
    this.bytes.writeBigUInt64LE(value, this.length);
    this.length += 8;
  }

  map(labels: Labels): void {
    const names = Object.keys(labels);
    this.varUInt(names.length);
    for (const name of names) {
      this.string(name);
      this.string(labels[name]!);
    }
  }

  buffer(): Uint8Array {
    return new Uint8Array(this.bytes.buffer, 0, this.length);
  }
}

function stringBytes(text: string): Uint8Array {
  const w = new RowBinaryWriter(16 + 3 * text.length);
  w.string(text);
  return w.buffer();
}

/** The RowBinary rows (LOG_COLUMNS) of a batch, grouped by day. */
export function encodeLogBatch(batch: LogBatch): EncodedLogBatch {
  let rows = 0;
  let textLength = 0;
  for (const stream of batch.streams) {
    rows += stream.entries.length;
    for (const entry of stream.entries) textLength += entry.line.length;
  }
  // Each entry's time in ms, worked out once: BigInt division is the dearest step per row.
  const msOf = new Float64Array(rows);
  const days = new Set<number>();
  let i = 0;
  for (const stream of batch.streams) {
    for (const entry of stream.entries) {
      const ms =
        Number(entry.timeUnixNano / 1_000_000n) -
        (entry.timeUnixNano < 0n && entry.timeUnixNano % 1_000_000n !== 0n ? 1 : 0);
      msOf[i++] = ms;
      days.add(Math.floor(ms / 86_400_000));
    }
  }
  const writer = new RowBinaryWriter(textLength + rows * 64);
  const id = stringBytes(batch.id);
  const arrival = batch.createdUnixNano ?? 0n;
  // tenant and fingerprint, the same leading bytes for every row of a stream
  const streams = batch.streams.map((stream) => {
    const fp = fingerprint(stream.labels);
    const prefix = new RowBinaryWriter(32 + 3 * batch.tenant.length);
    prefix.string(batch.tenant);
    prefix.uint64(BigInt(fp));
    return { stream, fp, prefix: prefix.buffer() };
  });
  const parts: EncodedLogPart[] = [];
  for (const day of [...days].sort((a, b) => a - b)) {
    const start = writer.length;
    const part: EncodedLogPart = {
      day: dayOfMs(day * 86_400_000),
      rows: 0,
      minNs: 0n,
      maxNs: 0n,
      offset: start,
      length: 0,
      streams: [],
    };
    let row = 0;
    for (const { stream, fp, prefix } of streams) {
      let span: LogStreamSpan | undefined;
      for (const entry of stream.entries) {
        const index = row++;
        const ms = msOf[index]!;
        if (days.size > 1 && Math.floor(ms / 86_400_000) !== day) continue;
        writer.raw(prefix);
        writer.int64(entry.timeUnixNano);
        writer.string(entry.line);
        writer.map(entry.metadata);
        writer.raw(id);
        writer.int64(arrival);
        writer.uint32(index);
        if (part.rows === 0 || entry.timeUnixNano < part.minNs) part.minNs = entry.timeUnixNano;
        if (part.rows === 0 || entry.timeUnixNano > part.maxNs) part.maxNs = entry.timeUnixNano;
        part.rows++;
        if (span === undefined)
          part.streams.push((span = { fingerprint: fp, labels: stream.labels, minMs: ms, maxMs: ms }));
        else {
          if (ms < span.minMs) span.minMs = ms;
          if (ms > span.maxMs) span.maxMs = ms;
        }
      }
    }
    part.length = writer.length - start;
    parts.push(part);
  }
  return { id: batch.id, tenant: batch.tenant, rows, parts, buffer: writer.buffer() };
}

/**
 * Log rows of a read as RowBinary, columns fingerprint (UInt64), timestamp (Int64 nanoseconds), line (String) and
 * metadata (Map(String, String)): decoded straight into columns, each line once, with no object per row.
 */
export function decodeLogRows(body: Buffer): RawLogRows {
  const rows = rawLogRows();
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  const varUInt = (): number => {
    let value = 0;
    for (let shift = 1; ; shift *= 128) {
      if (at >= body.length) throw new Error(`log rows cut short at byte ${at}`);
      const byte = body[at++]!;
      value += (byte & 0x7f) * shift;
      if (byte < 0x80) return value;
    }
  };
  const string = (): string => {
    const length = varUInt();
    const text = body.toString("utf8", at, at + length);
    at += length;
    return text;
  };
  while (at < body.length) {
    if (at + 17 > body.length) throw new Error(`log rows cut short at byte ${at} of ${body.length}`);
    rows.fingerprints.push(view.getBigUint64(at, true));
    rows.ts.push(view.getBigInt64(at + 8, true));
    at += 16;
    rows.lines.push(string());
    const pairs = varUInt();
    if (pairs === 0) rows.metadata.push(NO_LABELS);
    else {
      const metadata: Labels = Object.create(null);
      for (let i = 0; i < pairs; i++) {
        const name = string();
        metadata[name] = string();
      }
      rows.metadata.push(metadata);
    }
  }
  if (at !== body.length) throw new Error(`log rows end past the body (${at} of ${body.length} bytes)`);
  return rows;
}
