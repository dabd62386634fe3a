import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

/** A label set. Objects are created without a prototype so that names such as `__proto__` stay plain keys. */
export type Labels = Record<string, string>;

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

export interface Batch {
  tenant: string;
  nodeId: string;
  site: string;
  region: string;
  /** Per-node WAL sequence; with nodeId it identifies the batch for idempotent writes. */
  sequence: number;
  createdUnixNano: bigint;
  streams: LogStream[];
  series: Series[];
}

/** The id that downstream writes deduplicate on; node ids are only unique within a tenant, so it names both. */
export function batchId(batch: Pick<Batch, "tenant" | "nodeId" | "sequence">): string {
  return `${batch.tenant}/${batch.nodeId}:${batch.sequence}`;
}

export function labelsOf(entries: Iterable<readonly [string, string]>): Labels {
  const labels: Labels = Object.create(null);
  for (const [name, value] of entries) labels[name] = value;
  return labels;
}

const root = protobuf.loadSync(fileURLToPath(new URL("./bifrost.proto", import.meta.url)));
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
  streams: { labels: WireLabel[]; entries: { timeUnixNano: number | LongLike; line: string; metadata: WireLabel[] }[] }[];
  series: { name: string; labels: WireLabel[]; kind: number; points: WirePoint[]; previous?: WirePoint | null }[];
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

export function encodeBatchMessage(batch: Batch): Uint8Array {
  const wire: WireBatch = {
    tenant: batch.tenant,
    nodeId: batch.nodeId,
    site: batch.site,
    region: batch.region,
    sequence: batch.sequence,
    createdUnixNano: toLong(batch.createdUnixNano),
    streams: batch.streams.map((stream) => ({
      labels: toWireLabels(stream.labels),
      entries: stream.entries.map((entry) => ({
        timeUnixNano: toLong(entry.timeUnixNano),
        line: entry.line,
        metadata: toWireLabels(entry.metadata),
      })),
    })),
    series: batch.series.map((series) => ({
      name: series.name,
      labels: toWireLabels(series.labels),
      kind: series.kind,
      points: series.points,
      ...(series.previous ? { previous: series.previous } : {}),
    })),
  };
  return BatchType.encode(wire as unknown as protobuf.Message).finish();
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
  };
}
