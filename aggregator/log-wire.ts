import { isUtf8 } from "node:buffer";
import { type Batch, batchId } from "../proto/batch.js";
import type { Labels } from "../proto/labels.js";
import { decodeMessage } from "../proto/codec.js";
import { type BatchLimits, checkLabels } from "../proto/validate.js";
import { fingerprint } from "../storage/fingerprint.js";
import {
  type EncodedLogBatch,
  type EncodedLogPart,
  type LogStreamSpan,
  RowBinaryWriter,
} from "../storage/log-rowbinary.js";
import { dayOfMs } from "../storage/values.js";

// The worker's direct path for log entries: it reads the LogStream/LogEntry protobuf wire format of a batch
// message (proto/bifrost.proto) and writes the logs table's RowBinary rows from it, copying each line's bytes
// and timestamp halves as they are, without a JS string, object or BigInt per entry. It yields exactly what
// decodeMessage + validateBatch + encodeLogBatch yield, or nothing: whatever it is not sure of (a defect, a
// limit broken, invalid UTF-8 that decoding would replace, duplicate metadata names, a time past Int64, an
// unusual encoding) it leaves to that reference path, which then decides, errors and their messages included.

/** Why the direct path gives a message up; never escapes this module. */
const UNHANDLED = Symbol("unhandled");

/** Reads protobuf wire format within bounds, giving up (UNHANDLED) on anything malformed. */
class WireReader {
  pos = 0;

  constructor(readonly buf: Buffer) {}

  /** A varint of at most 32 bits: tags and lengths. */
  uint32(end: number): number {
    let value = 0;
    for (let shift = 1; shift <= 0x10000000; shift *= 128) {
      if (this.pos >= end) throw UNHANDLED;
      const byte = this.buf[this.pos++]!;
      value += (byte & 0x7f) * shift;
      if (byte < 0x80) {
        if (value > 0xffffffff) throw UNHANDLED;
        return value;
      }
    }
    throw UNHANDLED;
  }

  /** The end of the length-delimited field whose length is next; pos moves to its first byte. */
  delimited(end: number): number {
    const length = this.uint32(end);
    const stop = this.pos + length;
    if (stop > end) throw UNHANDLED;
    return stop;
  }

  /** Skips the field whose tag was just read; protobufjs rejects field number 0, so it is given up on. */
  skip(tag: number, end: number): void {
    if (tag >>> 3 === 0) throw UNHANDLED;
    switch (tag & 7) {
      case 0:
        for (let i = 0; ; i++) {
          if (i === 10 || this.pos >= end) throw UNHANDLED;
          if (this.buf[this.pos++]! < 0x80) return;
        }
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.delimited(end);
        break;
      case 5:
        this.pos += 4;
        break;
      default:
        throw UNHANDLED;
    }
    if (this.pos > end) throw UNHANDLED;
  }

  /** A Label message ending at `end`: where its name and value lie (empty when absent, the last when repeated). */
  label(end: number, into: Int32Array, at: number): void {
    into[at] = into[at + 1] = into[at + 2] = into[at + 3] = 0;
    while (this.pos < end) {
      const tag = this.uint32(end);
      const field = tag >>> 3;
      if (field === 1 || field === 2) {
        if ((tag & 7) !== 2) throw UNHANDLED;
        const stop = this.delimited(end);
        into[at + (field - 1) * 2] = this.pos;
        into[at + (field - 1) * 2 + 1] = stop;
        this.pos = stop;
      } else this.skip(tag, end);
    }
  }
}

/** The entries of a batch, one slot per entry in wire order, in growable typed columns. */
class EntryTable {
  count = 0;
  timeLow: Uint32Array;
  timeHigh: Uint32Array;
  ms: Float64Array;
  lineStart: Int32Array;
  lineEnd: Int32Array;
  /** Each entry's metadata labels are metadata slots [metaFirst, metaFirst + metaCount). */
  metaFirst: Int32Array;
  metaCount: Int32Array;
  /** Per metadata label: name start, name end, value start, value end. */
  meta: Int32Array;
  metaSlots = 0;

  constructor(capacity: number) {
    this.timeLow = new Uint32Array(capacity);
    this.timeHigh = new Uint32Array(capacity);
    this.ms = new Float64Array(capacity);
    this.lineStart = new Int32Array(capacity);
    this.lineEnd = new Int32Array(capacity);
    this.metaFirst = new Int32Array(capacity);
    this.metaCount = new Int32Array(capacity);
    this.meta = new Int32Array(64);
  }

  add(): number {
    if (this.count === this.timeLow.length) {
      const grow = <T extends Uint32Array | Int32Array | Float64Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.timeLow = grow(this.timeLow);
      this.timeHigh = grow(this.timeHigh);
      this.ms = grow(this.ms);
      this.lineStart = grow(this.lineStart);
      this.lineEnd = grow(this.lineEnd);
      this.metaFirst = grow(this.metaFirst);
      this.metaCount = grow(this.metaCount);
    }
    return this.count++;
  }

  addMeta(): number {
    if (this.metaSlots * 4 === this.meta.length) {
      const grown = new Int32Array(this.meta.length * 2);
      grown.set(this.meta);
      this.meta = grown;
    }
    return this.metaSlots++ * 4;
  }
}

interface WireStream {
  labels: Labels;
  first: number;
  end: number;
}

const TWO_32_MOD_MS = 967_296; // 2^32 = 4294 * 10^6 + 967296

/** floor(ns / 10^6) of a non-negative nanosecond time below 2^63, exact without BigInt. */
function msOfHalves(low: number, high: number): number {
  const rest = high * TWO_32_MOD_MS + low;
  let ms = Math.floor(rest / 1e6);
  if (ms * 1e6 > rest) ms--;
  else if ((ms + 1) * 1e6 <= rest) ms++;
  return high * 4294 + ms;
}

function isLabelName(buf: Buffer, start: number, end: number): boolean {
  if (start === end) return false;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    const letter = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
    if (!letter && (i === start || c < 0x30 || c > 0x39)) return false;
  }
  return true;
}

function sameBytes(buf: Buffer, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (let i = 0; i < aEnd - a; i++) if (buf[a + i] !== buf[b + i]) return false;
  return true;
}

/** One LogEntry ending at `end` into `table`, checked as screenBatch checks it. */
function readEntry(r: WireReader, end: number, table: EntryTable, limits: BatchLimits): void {
  const e = table.add();
  let low = 0;
  let high = 0;
  let lineStart = 0;
  let lineEnd = 0;
  table.metaFirst[e] = table.metaSlots;
  let labels = 0;
  while (r.pos < end) {
    const tag = r.uint32(end);
    if (tag === 0x09) {
      if (r.pos + 8 > end) throw UNHANDLED;
      low = r.buf.readUInt32LE(r.pos);
      high = r.buf.readUInt32LE(r.pos + 4);
      r.pos += 8;
    } else if (tag === 0x12) {
      lineEnd = r.delimited(end);
      lineStart = r.pos;
      r.pos = lineEnd;
    } else if (tag === 0x1a) {
      const stop = r.delimited(end);
      const at = table.addMeta();
      r.label(stop, table.meta, at);
      labels++;
    } else if (tag >>> 3 >= 1 && tag >>> 3 <= 3) throw UNHANDLED;
    else r.skip(tag, end);
  }
  // From 2^32 * 10^9 ns on (2106-02-07) a time is not storable (STORABLE_NS): the reference path refuses the entry.
  if (high >= 1_000_000_000) throw UNHANDLED;
  if (lineEnd - lineStart > limits.max_line_bytes || !isUtf8(r.buf.subarray(lineStart, lineEnd))) throw UNHANDLED;
  if (labels > limits.max_labels) throw UNHANDLED;
  const meta = table.meta;
  const first = table.metaFirst[e]!;
  for (let i = first; i < first + labels; i++) {
    const [ns, ne, vs, ve] = [meta[i * 4]!, meta[i * 4 + 1]!, meta[i * 4 + 2]!, meta[i * 4 + 3]!];
    if (ne - ns > limits.max_label_name_bytes || !isLabelName(r.buf, ns, ne)) throw UNHANDLED;
    if (ve - vs > limits.max_label_value_bytes || !isUtf8(r.buf.subarray(vs, ve))) throw UNHANDLED;
    // A repeated name is one map key on the reference path, with the last value at the first one's place.
    for (let j = first; j < i; j++) if (sameBytes(r.buf, meta[j * 4]!, meta[j * 4 + 1]!, ns, ne)) throw UNHANDLED;
  }
  table.timeLow[e] = low;
  table.timeHigh[e] = high;
  table.ms[e] = msOfHalves(low, high);
  table.lineStart[e] = lineStart;
  table.lineEnd[e] = lineEnd;
  table.metaCount[e] = labels;
}

function readStream(r: WireReader, end: number, table: EntryTable, limits: BatchLimits): WireStream {
  const labels: Labels = Object.create(null);
  const label = new Int32Array(4);
  const first = table.count;
  while (r.pos < end) {
    const tag = r.uint32(end);
    if (tag === 0x0a) {
      const stop = r.delimited(end);
      r.label(stop, label, 0);
      if (!isUtf8(r.buf.subarray(label[0], label[1])) || !isUtf8(r.buf.subarray(label[2], label[3]))) throw UNHANDLED;
      labels[r.buf.toString("utf8", label[0], label[1])] = r.buf.toString("utf8", label[2], label[3]);
    } else if (tag === 0x12) {
      const stop = r.delimited(end);
      readEntry(r, stop, table, limits);
    } else if (tag >>> 3 === 1 || tag >>> 3 === 2) throw UNHANDLED;
    else r.skip(tag, end);
  }
  try {
    checkLabels(labels, limits, "stream");
  } catch {
    throw UNHANDLED;
  }
  return { labels, first, end: table.count };
}

export interface WireLogs {
  /** The batch without its log streams (decoded the reference way), to validate and roll up. */
  batch: Batch;
  /** The log rows; absent when the batch has no streams. */
  logs?: EncodedLogBatch;
}

/**
 * A batch message (decodeFrame's output) with its log entries encoded directly, or undefined when the
 * reference path must handle it. The streams are validated here; the rest of the batch is the caller's to validate.
 */
export function encodeLogsFromWire(message: Buffer, limits: BatchLimits): WireLogs | undefined {
  try {
    return encode(message, limits);
  } catch (err) {
    if (err === UNHANDLED) return undefined;
    throw err;
  }
}

function encode(message: Buffer, limits: BatchLimits): WireLogs {
  const r = new WireReader(message);
  const end = message.length;
  // Everything but the streams, for protobufjs: identity, sequence and the series, decoded as ever.
  const rest: Buffer[] = [];
  const streamEnds: number[] = [];
  let restStart = 0;
  while (r.pos < end) {
    const fieldStart = r.pos;
    const tag = r.uint32(end);
    if (tag >>> 3 !== 7) {
      r.skip(tag, end);
      continue;
    }
    if ((tag & 7) !== 2) throw UNHANDLED;
    if (fieldStart > restStart) rest.push(message.subarray(restStart, fieldStart));
    const stop = r.delimited(end);
    streamEnds.push(r.pos, stop);
    r.pos = restStart = stop;
  }
  if (end > restStart) rest.push(message.subarray(restStart, end));
  let batch: Batch;
  try {
    batch = decodeMessage(rest.length === 1 ? rest[0]! : Buffer.concat(rest));
  } catch {
    throw UNHANDLED;
  }
  if (streamEnds.length === 0) return { batch };

  const table = new EntryTable(Math.max(16, Math.ceil(message.length / 64)));
  const streams: WireStream[] = [];
  for (let i = 0; i < streamEnds.length; i += 2) {
    r.pos = streamEnds[i]!;
    streams.push(readStream(r, streamEnds[i + 1]!, table, limits));
  }
  return { batch, logs: writeRows(message, batchId(batch), batch.tenant, batch.createdUnixNano, streams, table) };
}

/** encodeLogBatch's rows, parts and spans, in its order, from the entries as read. */
function writeRows(
  message: Buffer,
  id: string,
  tenant: string,
  arrival: bigint,
  streams: WireStream[],
  table: EntryTable,
): EncodedLogBatch {
  const rows = table.count;
  const days = new Set<number>();
  for (let e = 0; e < rows; e++) days.add(Math.floor(table.ms[e]! / 86_400_000));
  const idWriter = new RowBinaryWriter(16 + 3 * id.length);
  idWriter.string(id);
  const idBytes = idWriter.buffer();
  const prefixed = streams.map((stream) => {
    const fp = fingerprint(stream.labels);
    const prefix = new RowBinaryWriter(32 + 3 * tenant.length);
    prefix.string(tenant);
    prefix.uint64(BigInt(fp));
    return { stream, fp, prefix: prefix.buffer() };
  });
  const writer = new RowBinaryWriter(message.length + rows * (idBytes.length + 16 + (prefixed[0]?.prefix.length ?? 0)));
  const { timeLow, timeHigh, ms, lineStart, lineEnd, metaFirst, metaCount, meta } = table;
  const parts: EncodedLogPart[] = [];
  for (const day of [...days].sort((a, b) => a - b)) {
    const start = writer.length;
    let [minEntry, maxEntry, partRows] = [-1, -1, 0];
    const spans: LogStreamSpan[] = [];
    for (const { stream, fp, prefix } of prefixed) {
      let span: LogStreamSpan | undefined;
      for (let e = stream.first; e < stream.end; e++) {
        const entryMs = ms[e]!;
        if (days.size > 1 && Math.floor(entryMs / 86_400_000) !== day) continue;
        writer.raw(prefix);
        writer.int64Halves(timeLow[e]!, timeHigh[e]!);
        writer.utf8Copy(message, lineStart[e]!, lineEnd[e]!);
        const labels = metaCount[e]!;
        writer.varUInt(labels);
        for (let m = metaFirst[e]! * 4; m < (metaFirst[e]! + labels) * 4; m += 4) {
          writer.utf8Copy(message, meta[m]!, meta[m + 1]!);
          writer.utf8Copy(message, meta[m + 2]!, meta[m + 3]!);
        }
        writer.raw(idBytes);
        writer.int64(arrival);
        writer.uint32(e);
        if (minEntry < 0 || earlier(table, e, minEntry)) minEntry = e;
        if (maxEntry < 0 || earlier(table, maxEntry, e)) maxEntry = e;
        partRows++;
        if (span === undefined)
          spans.push((span = { fingerprint: fp, labels: stream.labels, minMs: entryMs, maxMs: entryMs }));
        else {
          if (entryMs < span.minMs) span.minMs = entryMs;
          if (entryMs > span.maxMs) span.maxMs = entryMs;
        }
      }
    }
    parts.push({
      day: dayOfMs(day * 86_400_000),
      rows: partRows,
      minNs: nsOf(table, minEntry),
      maxNs: nsOf(table, maxEntry),
      offset: start,
      length: writer.length - start,
      streams: spans,
    });
  }
  return { id, tenant, rows, parts, buffer: writer.buffer() };
}

function earlier(table: EntryTable, a: number, b: number): boolean {
  const [ha, hb] = [table.timeHigh[a]!, table.timeHigh[b]!];
  return ha < hb || (ha === hb && table.timeLow[a]! < table.timeLow[b]!);
}

function nsOf(table: EntryTable, e: number): bigint {
  return (BigInt(table.timeHigh[e]!) << 32n) | BigInt(table.timeLow[e]!);
}
