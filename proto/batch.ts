import { protoFile } from "./files.js";
import protobuf from "protobufjs";
import type { Labels } from "./labels.js";
import type { Scratch } from "./scratch.js";

export enum SampleKind {
  Unspecified = 0,
  Gauge = 1,
  Counter = 2,
  HistogramBucket = 3,
  HistogramSum = 4,
  HistogramCount = 5,
}

export interface LogEntry {
  timeUnixNano: bigint;
  line: string;
  metadata: Labels;
}

export interface LogStream {
  labels: Labels;
  entries: LogEntry[];
}

export interface Point {
  timeUnixMs: number;
  value: number;
}

export interface Series {
  name: string;
  labels: Labels;
  kind: SampleKind;
  points: Point[];
  /** The sample sent for this series just before `points` (see bifrost.proto). */
  previous?: Point;
}

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "unknown";

export const METRIC_TYPES: ReadonlySet<string> = new Set<MetricType>([
  "counter",
  "gauge",
  "histogram",
  "summary",
  "unknown",
]);

/** A metric family's type, help and unit (Prometheus' metadata), as OTLP states them. */
export interface MetricMetadata {
  /** The family: a histogram's or summary's series name without `_bucket`, `_sum` or `_count`. */
  name: string;
  type: MetricType;
  help: string;
  unit: string;
}

export interface Batch {
  tenant: string;
  nodeId: string;
  site: string;
  region: string;
  /** Sequence in the node's disk buffer within `incarnation`; with both it identifies the batch for idempotent writes. */
  sequence: number;
  createdUnixNano: bigint;
  streams: LogStream[];
  series: Series[];
  /** The collector's disk buffer opening that numbered the batch (see bifrost.proto); "" from older collectors. */
  incarnation: string;
  /** Metadata of metric families in `series`; absent when the batch carries none. */
  metadata?: MetricMetadata[];
}

/**
 * What an incarnation may be: collectors draw 16 hex digits; the bound keeps batch ids, stored on every row,
 * short, and the characters keep them unambiguous.
 */
export const INCARNATION = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The id that downstream writes deduplicate on: `tenant/node@incarnation:sequence`. Node ids are only unique
 * within a tenant, so it names both; sequences only within an incarnation, so it names that too. A batch of a
 * collector from before incarnations keeps the id it always had, `tenant/node:sequence`, so that its replays
 * still find their first copy.
 */
export function batchId(batch: Pick<Batch, "tenant" | "nodeId" | "sequence"> & { incarnation?: string }): string {
  return !batch.incarnation
    ? `${batch.tenant}/${batch.nodeId}:${batch.sequence}`
    : `${batch.tenant}/${batch.nodeId}@${batch.incarnation}:${batch.sequence}`;
}

/**
 * Some rows of `batch` as a batch of their own, whose id (a node id suffixed `~part`) is unique to these rows and
 * the same each time they are taken apart alike: dead letters and the pieces a poison batch is written in.
 */
export function batchPart(batch: Batch, part: string, rows: Pick<Batch, "streams" | "series" | "metadata">): Batch {
  return withRows({ ...batch, nodeId: `${batch.nodeId}~${part}` }, rows);
}

/** `batch` holding only `rows`: its metadata too is theirs, so that no piece carries the whole batch's. */
export function withRows(batch: Batch, rows: Pick<Batch, "streams" | "series" | "metadata">): Batch {
  const out: Batch = { ...batch, streams: rows.streams, series: rows.series };
  delete out.metadata;
  if (rows.metadata && rows.metadata.length > 0) out.metadata = rows.metadata;
  return out;
}

/** The node a batch id's node part names: batchPart's pieces are their node's. */
export function nodeOfPart(nodeId: string): string {
  const tilde = nodeId.indexOf("~");
  return tilde < 0 ? nodeId : nodeId.slice(0, tilde);
}

const root = protobuf.loadSync(protoFile("bifrost.proto"));
const BatchType = root.lookupType("bifrost.v1.Batch");

interface LongLike {
  low: number;
  high: number;
}
interface WireLabel {
  name: string;
  value: string;
}
interface WirePoint {
  timeUnixMs: number | LongLike;
  value: number;
}
interface WireBatch {
  tenant: string;
  nodeId: string;
  site: string;
  region: string;
  sequence: number | LongLike;
  createdUnixNano: number | LongLike;
  streams: {
    labels: WireLabel[];
    entries: { timeUnixNano: number | LongLike; line: string; metadata: WireLabel[] }[];
  }[];
  series: { name: string; labels: WireLabel[]; kind: number; points: WirePoint[]; previous?: WirePoint | null }[];
  incarnation: string;
  metadata: { name: string; type: string; help: string; unit: string }[];
}

const TWO_32 = 4294967296;

function toLong(value: bigint): LongLike {
  return { low: Number(value & 0xffffffffn) | 0, high: Number((value >> 32n) & 0xffffffffn) | 0 };
}

function toBigInt(value: number | LongLike): bigint {
  if (typeof value === "number") return BigInt(value);
  return (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
}

function toNumber(value: number | LongLike): number {
  return typeof value === "number" ? value : value.high * TWO_32 + (value.low >>> 0);
}

function toWireLabels(labels: Labels): WireLabel[] {
  const out: WireLabel[] = [];
  for (const name in labels) out.push({ name, value: labels[name]! });
  return out;
}

function fromWireLabels(labels: WireLabel[]): Labels {
  const out: Labels = Object.create(null);
  for (const label of labels) out[label.name] = label.value;
  return out;
}

function fromWirePoint(point: WirePoint): Point {
  return { timeUnixMs: toNumber(point.timeUnixMs), value: point.value };
}

/**
 * The Batch message: its scalar fields and series through protobufjs, its log streams (nearly all of the bytes
 * and objects) written here straight from the entries, without a wire copy of every entry, Long objects for
 * the timestamps or a JavaScript UTF-8 encoder. Fields stay in number order, as protobufjs writes them.
 */
export function encodeBatchMessage(batch: Batch, into?: Scratch): Uint8Array {
  const head = BatchType.encode({
    tenant: batch.tenant,
    nodeId: batch.nodeId,
    site: batch.site,
    region: batch.region,
    sequence: batch.sequence,
    createdUnixNano: toLong(batch.createdUnixNano),
  } as unknown as protobuf.Message).finish();
  // Field 9 after the series; left out when empty, so that a batch without one is encoded as before it existed.
  const series = BatchType.encode({
    series: batch.series.map((series) => ({
      name: series.name,
      labels: toWireLabels(series.labels),
      kind: series.kind,
      points: series.points,
      ...(series.previous ? { previous: series.previous } : {}),
    })),
    ...(batch.incarnation === "" ? {} : { incarnation: batch.incarnation }),
    metadata: batch.metadata ?? [],
  } as unknown as protobuf.Message).finish();
  return encodeStreams(batch.streams, head, series, into);
}

/** Bytes of a varint. */
function varintBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** Size of the Label messages of a label set, each with its tag and length. */
export function labelsBytes(labels: Labels): number {
  let n = 0;
  for (const name in labels) {
    const size =
      2 +
      varintBytes(Buffer.byteLength(name)) +
      Buffer.byteLength(name) +
      varintBytes(Buffer.byteLength(labels[name]!)) +
      Buffer.byteLength(labels[name]!);
    n += 1 + varintBytes(size) + size;
  }
  return n;
}

/** A length-delimited field of `size` bytes with its tag and length. */
export function fieldBytes(size: number): number {
  return 1 + varintBytes(size) + size;
}

/** An entry's LogEntry message as a stream carries it (tag and length included), as encodeBatchMessage writes it. */
export function entryBytes(entry: LogEntry): number {
  const line = Buffer.byteLength(entry.line);
  let metadata = 0;
  for (const _ in entry.metadata) {
    metadata = labelsBytes(entry.metadata);
    break;
  }
  return fieldBytes(9 + 1 + varintBytes(line) + line + metadata);
}

/** Most bytes a Point message takes in a series (tag and length included): an int64 varint and a double. */
export const POINT_MAX_BYTES = 2 + 11 + 9;

/** A metric family's metadata as a batch carries it (tag and length included). */
export function metadataBytes(m: MetricMetadata): number {
  return fieldBytes([m.name, m.type, m.help, m.unit].reduce((n, text) => n + fieldBytes(Buffer.byteLength(text)), 0));
}

/** Most bytes a series takes in a batch (tag and length included): what protobufjs writes, points at their largest. */
export function seriesBytes(series: Series): number {
  const name = Buffer.byteLength(series.name);
  const points = (series.points.length + (series.previous ? 1 : 0)) * POINT_MAX_BYTES;
  return fieldBytes(1 + varintBytes(name) + name + labelsBytes(series.labels) + 2 + points);
}

/**
 * Node's own UTF-8 writer behind Buffer#write, without the argument handling that costs more than the copy for
 * a short line; protobufjs writes strings with it too.
 */
type Utf8Writable = Buffer & { utf8Write(text: string, offset: number, length: number): number };

function writeString(buf: Utf8Writable, pos: number, tag: number, text: string, bytes: number): number {
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, bytes);
  return pos + buf.utf8Write(text, pos, bytes);
}

function writeLabels(buf: Utf8Writable, pos: number, tag: number, labels: Labels): number {
  for (const name in labels) {
    const value = labels[name]!;
    const [nameBytes, valueBytes] = [Buffer.byteLength(name), Buffer.byteLength(value)];
    buf[pos++] = tag;
    pos = writeVarint(buf, pos, 2 + varintBytes(nameBytes) + nameBytes + varintBytes(valueBytes) + valueBytes);
    pos = writeString(buf, pos, 0x0a, name, nameBytes);
    pos = writeString(buf, pos, 0x12, value, valueBytes);
  }
  return pos;
}

/** `head`, then Batch.streams (field 7) with their labels and entries, then `tail`, in one buffer (`into`'s, if given). */
function encodeStreams(streams: LogStream[], head: Uint8Array, tail: Uint8Array, into?: Scratch): Buffer {
  // First pass: every entry's line and message size, so that the second writes each byte once, in place.
  const entries = streams.reduce((n, s) => n + s.entries.length, 0);
  const lineBytes = new Uint32Array(entries);
  const entryBytes = new Uint32Array(entries);
  const streamBytes = new Uint32Array(streams.length);
  let total = head.length + tail.length;
  let e = 0;
  streams.forEach((stream, s) => {
    let size = labelsBytes(stream.labels);
    for (const entry of stream.entries) {
      const line = (lineBytes[e] = Buffer.byteLength(entry.line));
      let metadata = 0;
      for (const _ in entry.metadata) {
        metadata = labelsBytes(entry.metadata);
        break;
      }
      const bytes = (entryBytes[e++] = 9 + 1 + varintBytes(line) + line + metadata);
      size += 1 + varintBytes(bytes) + bytes;
    }
    streamBytes[s] = size;
    total += 1 + varintBytes(size) + size;
  });
  const buf = (into ? into.take(total) : Buffer.allocUnsafe(total)) as Utf8Writable;
  // DataView's setBigUint64 is V8's own, several times faster than Buffer#writeBigUInt64LE.
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  buf.set(head, 0);
  let pos = head.length;
  e = 0;
  streams.forEach((stream, s) => {
    buf[pos++] = 0x3a; // field 7, length-delimited
    pos = writeVarint(buf, pos, streamBytes[s]!);
    pos = writeLabels(buf, pos, 0x0a, stream.labels);
    for (const entry of stream.entries) {
      buf[pos++] = 0x12;
      pos = writeVarint(buf, pos, entryBytes[e]!);
      buf[pos++] = 0x09; // field 1, fixed64
      view.setBigUint64(pos, entry.timeUnixNano, true);
      pos += 8;
      pos = writeString(buf, pos, 0x12, entry.line, lineBytes[e++]!);
      pos = writeLabels(buf, pos, 0x1a, entry.metadata);
    }
  });
  buf.set(tail, pos);
  return buf;
}

/** Decodes the protobuf message; throws protobufjs's errors on malformed input. */
export function decodeBatchMessage(bytes: Uint8Array): Batch {
  const wire = BatchType.decode(bytes) as unknown as WireBatch;
  return {
    tenant: wire.tenant,
    nodeId: wire.nodeId,
    site: wire.site,
    region: wire.region,
    sequence: toNumber(wire.sequence),
    createdUnixNano: toBigInt(wire.createdUnixNano),
    streams: wire.streams.map((stream) => ({
      labels: fromWireLabels(stream.labels),
      entries: stream.entries.map((entry) => ({
        timeUnixNano: toBigInt(entry.timeUnixNano),
        line: entry.line,
        metadata: fromWireLabels(entry.metadata),
      })),
    })),
    series: wire.series.map((series) => ({
      name: series.name,
      labels: fromWireLabels(series.labels),
      kind: series.kind in SampleKind ? (series.kind as SampleKind) : SampleKind.Unspecified,
      points: series.points.map(fromWirePoint),
      ...(series.previous ? { previous: fromWirePoint(series.previous) } : {}),
    })),
    incarnation: wire.incarnation,
    ...(wire.metadata.length > 0
      ? {
          metadata: wire.metadata.map((m) => ({
            name: m.name,
            type: (METRIC_TYPES.has(m.type) ? m.type : "unknown") as MetricType,
            help: m.help,
            unit: m.unit,
          })),
        }
      : {}),
  };
}
