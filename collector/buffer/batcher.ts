import type { IngestDefaults } from "../../common/ingest-defaults.js";
import {
  entryBytes,
  labelsBytes,
  type LogStream,
  metadataBytes,
  type MetricMetadata,
  type Point,
  POINT_MAX_BYTES,
  type Series,
  seriesBytes,
} from "../../proto/batch.js";
import { type Labels, persistedLabelsText } from "../../proto/labels.js";
import { CodecError, decodeBatch, encodeBatch } from "../../proto/codec.js";
import { batchHeadBytes, collectorLabels, type NodeLabel, withAddedLabels } from "../../common/ingest-contract.js";
import { isStaleMarker } from "../../proto/staleness.js";
import type { BatchRecord } from "../../common/transport.js";
import { arrivalNowNs } from "../../common/arrival-clock.js";
import { dropDuplicateEntries, RecentEntries, type SeenLines } from "../../common/log-dedup.js";
import { type Wal, WalFullError } from "./wal.js";

export interface NodeIdentity {
  id: string;
  site: string;
  region: string;
}

/** A stream field's tag and length at most, besides its labels and entries. */
const STREAM_FIELD_BYTES = 6;

export interface BatcherOptions {
  node: NodeIdentity;
  /** Which of the node's labels every stream and series gets (collector.node_labels); all by default. */
  nodeLabels?: readonly NodeLabel[];
  wal: Wal;
  /** Loki's `service_name` and `detected_level`, added to every log stream before its node labels. */
  ingestDefaults?: IngestDefaults;
  /** A batch is written once it holds this many entries and samples... */
  maxEntries: number;
  /** ...or this many bytes of lines... */
  maxBytes: number;
  /** ...or its oldest data has waited this long (data no sender waits for: see AddOptions). */
  maxAgeMs: number;
  /**
   * No batch is larger than this, encoded (collector.batch.max_batch_bytes): data that would take one over it
   * goes in the next, and one add larger than it is written at once as several batches, all or none of them.
   */
  maxBatchBytes: number;
  /**
   * Series whose last sample is remembered for the next batch's Series.previous: at least this many of the most
   * recently written, at most twice as many (older ones are forgotten a generation at a time).
   */
  maxTrackedSeries?: number;
  /** A metric family's metadata is sent again after this long even when unchanged (10 minutes). */
  metadataResendMs?: number;
  onWritten?: (info: { sequence: number; tenant: string; entries: number; samples: number; bytes: number }) => void;
}

export interface AddOptions {
  /**
   * A sender waits for the answer (a push receiver): the data is written at the next group commit, not when
   * its batch is full or max_age_ms old. Sources that answer nobody (file tails, syslog, scrapes) leave it
   * unset, so that a trickle of lines still makes batches of a useful size.
   */
  senderWaits?: boolean;
}

interface Pending {
  streams: LogStream[];
  series: Series[];
  metadata: Map<string, MetricMetadata>;
  entries: number;
  bytes: number;
  /** Bytes of the rows as encoded, added labels included. */
  encoded: number;
  waiters: { resolve: () => void; reject: (err: unknown) => void }[];
  since: number;
}

/**
 * Groups what the receivers accept into batches per tenant and writes each to the disk buffer as one record:
 * a receiver's `add` resolves once the batch holding its data is in the WAL and durable under the fsync policy
 * (Wal.whenDurable), so the sender is acknowledged only for what a crash cannot lose, and rejects with the WAL's
 * error (WalFullError under the `block` policy) so the receiver can answer 429/503. Data a sender waits for is
 * written at once, by group commit: what arrives in one turn of the event loop, or while the previous fsync
 * runs (policy `always`), is written as one batch and made durable by one fsync; other data waits for its
 * batch to fill or to age. Every stream and series gets the node's identity labels
 * that collector.node_labels lists (collectorLabels: `node`, and `site`/`region` when set) unless it has them, and every series the sample sent
 * before it. No batch exceeds maxBatchBytes: what the ingestion contract admitted always fits.
 */
export class Batcher {
  private readonly pending = new Map<string, Pending>();
  // Two generations rather than an LRU list: deleting and re-adding a Map entry per sample leaves holes that V8
  // scans over to find the oldest entry, which made every write slow beyond the limit.
  private lastPoints = new Map<string, Point>();
  private olderPoints = new Map<string, Point>();
  // A label set is never changed once made, and a scrape hands over the same sets at every scrape: each set's
  // copy with the collector's labels, and its series keys, are made once (strings made once also keep their hash).
  private readonly identified = new WeakMap<Labels, Labels>();
  private readonly keys = new WeakMap<Labels, { tenant: string; name: string; key: string }>();
  private readonly added: Labels;
  /** Entries written lately, to drop a push sent again (as Loki's ingester does); see common/log-dedup.ts. */
  private readonly recentEntries = new RecentEntries();
  /** The lines of each stream (by tenant and labels' text) in the tenant's pending batch, to drop exact duplicates. */
  private readonly pendingLines = new Map<string, Map<string, SeenLines>>();
  /** Metadata as last written per tenant and family, and when: unchanged metadata is not sent with every batch. */
  private readonly sentMetadata = new Map<string, { text: string; atMs: number }>();
  private timer: NodeJS.Timeout | undefined;
  /** Tenants whose pending batch a sender waits for, written at the next group commit. */
  private readonly due = new Set<string>();
  private commitScheduled = false;

  constructor(private readonly options: BatcherOptions) {
    this.added = collectorLabels(options.node, options.nodeLabels);
  }

  add(
    tenant: string,
    data: { streams?: LogStream[]; series?: Series[]; metadata?: MetricMetadata[] },
    options: AddOptions = {},
  ): Promise<void> {
    let lines = this.pendingLines.get(tenant);
    if (lines === undefined) this.pendingLines.set(tenant, (lines = new Map()));
    const streams: LogStream[] = [];
    for (const received of data.streams ?? []) {
      const stream = this.options.ingestDefaults?.apply(received) ?? received;
      const labels = withAddedLabels(stream.labels, this.added);
      const key = streamKey(tenant, labels);
      let seen = lines.get(key);
      if (seen === undefined) lines.set(key, (seen = new Map()));
      const entries = dropDuplicateEntries(stream.entries, seen, (entry) => this.recentEntries.has(key, entry));
      if (entries.length > 0) streams.push({ labels, entries });
    }
    const series = (data.series ?? []).map((one) => ({ ...one, labels: this.identify(one.labels) }));
    const resendMs = this.options.metadataResendMs ?? 600_000;
    const metadata = (data.metadata ?? []).filter((m) => {
      const sent = this.sentMetadata.get(`${tenant}\u0000${m.name}`);
      return sent?.text !== JSON.stringify(m) || Date.now() - sent.atMs >= resendMs;
    });
    // Nothing left once duplicates were dropped (a push sent again): acknowledged without writing anything, once
    // the copies it duplicates are durable.
    if (streams.length === 0 && series.length === 0 && metadata.length === 0) {
      const copies = this.pending.get(tenant);
      if (copies === undefined) return this.options.wal.whenDurable();
      if (options.senderWaits) this.commitSoon(tenant);
      return new Promise<void>((resolve, reject) => copies.waiters.push({ resolve, reject }));
    }
    let encoded = 0;
    for (const stream of streams) {
      encoded += labelsBytes(stream.labels) + STREAM_FIELD_BYTES;
      for (const entry of stream.entries) encoded += entryBytes(entry);
    }
    // Each series may get its previous sample when written.
    for (const one of series) encoded += seriesBytes(one) + POINT_MAX_BYTES;
    for (const m of metadata) encoded += metadataBytes(m);
    const room = this.room();
    if ((this.pending.get(tenant)?.encoded ?? 0) + encoded > room) this.write(tenant);
    if (encoded > room) return this.writeSplit(tenant, { streams, series, metadata }, room);

    let pending = this.pending.get(tenant);
    if (!pending) {
      pending = {
        streams: [],
        series: [],
        metadata: new Map(),
        entries: 0,
        bytes: 0,
        encoded: 0,
        waiters: [],
        since: Date.now(),
      };
      this.pending.set(tenant, pending);
    }
    pending.streams.push(...streams);
    pending.series.push(...series);
    for (const m of metadata) pending.metadata.set(m.name, m);
    pending.encoded += encoded;
    for (const stream of streams) {
      pending.entries += stream.entries.length;
      for (const entry of stream.entries) pending.bytes += entry.line.length;
    }
    for (const one of series) pending.entries += one.points.length;
    const written = new Promise<void>((resolve, reject) => pending.waiters.push({ resolve, reject }));
    if (pending.entries >= this.options.maxEntries || pending.bytes >= this.options.maxBytes) this.write(tenant);
    else if (options.senderWaits) this.commitSoon(tenant);
    else this.timer ??= setTimeout(() => this.flush(), this.options.maxAgeMs);
    return written;
  }

  /** Bytes a batch has for its rows. */
  private room(): number {
    return this.options.maxBatchBytes - batchHeadBytes(this.options.node);
  }

  /**
   * One add larger than a batch, written now as consecutive batches of its own, each within `room`: all of
   * them, or none when the disk buffer has no room for all (WalFullError), so that a sender told to retry
   * finds none of its data already stored.
   */
  private writeSplit(tenant: string, rows: Rows, room: number): Promise<void> {
    const chunks = splitRows(rows, room);
    const head = batchHeadBytes(this.options.node);
    const frames = chunks.reduce((n, chunk) => n + frameBound(head + chunk.encoded), 0);
    if (!this.options.wal.hasRoom(frames, chunks.length))
      return Promise.reject(
        new WalFullError(`disk buffer full: no room for the ${chunks.length} batches of a request of ${frames} bytes`),
      );
    try {
      for (const chunk of chunks) this.writeRows(tenant, chunk);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.options.wal.whenDurable();
  }

  /**
   * Group commit: the tenant's pending batch is written at the end of this turn of the event loop, or, while an
   * fsync runs, once it has ended, together with whatever else senders wait for by then.
   */
  private commitSoon(tenant: string): void {
    this.due.add(tenant);
    if (this.commitScheduled) return;
    this.commitScheduled = true;
    void this.options.wal.idle().then(() =>
      setImmediate(() => {
        this.commitScheduled = false;
        const due = [...this.due];
        this.due.clear();
        for (const one of due) this.write(one);
      }),
    );
  }

  /**
   * Learns each series' last written sample from the newest records of the disk buffer, so that the first
   * batch after a restart still carries Series.previous and counter increases across the restart are kept.
   */
  restorePrevious(records: BatchRecord[]): void {
    for (const record of records) {
      let batch;
      try {
        batch = decodeBatch(record.payload);
      } catch (err) {
        if (err instanceof CodecError) continue;
        throw err;
      }
      for (const series of batch.series) {
        const newest = newestPoint(series.points);
        const key = this.seriesKey(batch.tenant, series);
        const known = this.lastPoint(key);
        if (newest && (!known || newest.timeUnixMs > known.timeUnixMs)) this.remember(key, newest);
      }
    }
  }

  private seriesKey(tenant: string, series: Series): string {
    const known = this.keys.get(series.labels);
    if (known?.name === series.name && known.tenant === tenant) return known.key;
    const key = `${tenant}\u0000${series.name}${persistedLabelsText(series.labels)}`;
    // One name per set is kept: a set shared by several names (a target's report series) is keyed anew.
    if (known === undefined) this.keys.set(series.labels, { tenant, name: series.name, key });
    return key;
  }

  private identify(labels: Labels): Labels {
    const known = this.identified.get(labels);
    if (known !== undefined) return known;
    const out = withAddedLabels(labels, this.added);
    this.identified.set(labels, out);
    return out;
  }

  /** Writes every pending batch now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const tenant of [...this.pending.keys()]) this.write(tenant);
  }

  private write(tenant: string): void {
    const pending = this.pending.get(tenant);
    this.pendingLines.delete(tenant);
    if (!pending) return;
    this.pending.delete(tenant);
    if (this.pending.size === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    try {
      this.writeRows(tenant, {
        streams: pending.streams,
        series: pending.series,
        metadata: [...pending.metadata.values()],
      });
    } catch (err) {
      for (const waiter of pending.waiters) waiter.reject(err);
      return;
    }
    this.options.wal.whenDurable().then(
      () => {
        for (const waiter of pending.waiters) waiter.resolve();
      },
      (err: unknown) => {
        for (const waiter of pending.waiters) waiter.reject(err);
      },
    );
  }

  /** Writes one batch of these rows to the disk buffer; throws the disk buffer's error. */
  private writeRows(tenant: string, { streams, series: pendingSeries, metadata }: Rows): void {
    const { node, wal } = this.options;
    // Remembered only once the batch is written: a rejected batch is sent again and must start from the same point.
    const newestPoints: [string, Point][] = [];
    const series = pendingSeries.map((s) => {
      const key = this.seriesKey(tenant, s);
      const previous = this.lastPoint(key);
      const newest = newestPoint(s.points);
      if (newest && (!previous || newest.timeUnixMs > previous.timeUnixMs)) newestPoints.push([key, newest]);
      return previous ? { ...s, previous } : s;
    });
    const sequence = wal.appendWith((seq) =>
      encodeBatch({
        tenant,
        nodeId: node.id,
        site: node.site,
        region: node.region,
        sequence: seq,
        incarnation: wal.incarnation,
        createdUnixNano: arrivalNowNs(),
        streams,
        series,
        ...(metadata.length > 0 ? { metadata } : {}),
      }),
    );
    for (const [key, point] of newestPoints) this.remember(key, point);
    for (const stream of streams) this.recentEntries.remember(streamKey(tenant, stream.labels), stream.entries);
    for (const m of metadata) {
      const key = `${tenant}\u0000${m.name}`;
      this.sentMetadata.delete(key);
      this.sentMetadata.set(key, { text: JSON.stringify(m), atMs: Date.now() });
      if (this.sentMetadata.size > (this.options.maxTrackedSeries ?? 100_000))
        this.sentMetadata.delete(this.sentMetadata.keys().next().value!);
    }
    const samples = series.reduce((n, s) => n + s.points.length, 0);
    this.options.onWritten?.({
      sequence,
      tenant,
      entries: streams.reduce((n, s) => n + s.entries.length, 0),
      samples,
      bytes: streams.reduce((n, s) => s.entries.reduce((m, e) => m + e.line.length, n), 0),
    });
  }

  private remember(key: string, point: Point): void {
    this.lastPoints.set(key, point);
    if (this.lastPoints.size >= (this.options.maxTrackedSeries ?? 100_000)) {
      this.olderPoints = this.lastPoints;
      this.lastPoints = new Map();
    }
  }

  private lastPoint(key: string): Point | undefined {
    return this.lastPoints.get(key) ?? this.olderPoints.get(key);
  }
}

/** The newest sample that is a value: a staleness marker is no start for the next counter increase. */
function newestPoint(points: Point[]): Point | undefined {
  return points.reduce<Point | undefined>(
    (a, p) => ((a === undefined || p.timeUnixMs >= a.timeUnixMs) && !isStaleMarker(p.value) ? p : a),
    undefined,
  );
}

/** Most bytes the disk buffer takes for a batch message of `bytes`: LZ4's worst case and the frame's header. */
function frameBound(bytes: number): number {
  return Math.ceil(bytes + bytes / 255) + 64 + 20;
}

/** What one batch holds besides its own fields. */
interface Rows {
  streams: LogStream[];
  series: Series[];
  metadata: MetricMetadata[];
}

interface Chunk extends Rows {
  encoded: number;
}

/** Rows cut into consecutive chunks of at most `room` bytes encoded, in order; a stream or series spans chunks when it must. */
function splitRows({ streams, series, metadata }: Rows, room: number): Chunk[] {
  const chunks: Chunk[] = [];
  let chunk: Chunk = { streams: [], series: [], metadata: [], encoded: 0 };
  const fits = (bytes: number) => chunk.encoded + bytes <= room || chunk.encoded === 0;
  const next = () => {
    chunks.push(chunk);
    chunk = { streams: [], series: [], metadata: [], encoded: 0 };
  };
  for (const stream of streams) {
    const head = labelsBytes(stream.labels) + STREAM_FIELD_BYTES;
    let part: LogStream | undefined;
    for (const entry of stream.entries) {
      const size = entryBytes(entry);
      if (!fits(size + (part ? 0 : head))) {
        next();
        part = undefined;
      }
      if (!part) {
        part = { labels: stream.labels, entries: [] };
        chunk.streams.push(part);
        chunk.encoded += head;
      }
      part.entries.push(entry);
      chunk.encoded += size;
    }
  }
  for (const one of series) {
    const head = seriesBytes({ ...one, points: [] }) + POINT_MAX_BYTES;
    let part: Series | undefined;
    for (const point of one.points) {
      if (!fits(POINT_MAX_BYTES + (part ? 0 : head))) {
        next();
        part = undefined;
      }
      if (!part) {
        part = { name: one.name, labels: one.labels, kind: one.kind, points: [] };
        chunk.series.push(part);
        chunk.encoded += head;
      }
      part.points.push(point);
      chunk.encoded += POINT_MAX_BYTES;
    }
  }
  for (const m of metadata) {
    const size = metadataBytes(m);
    if (!fits(size)) next();
    chunk.metadata.push(m);
    chunk.encoded += size;
  }
  if (chunk.encoded > 0) chunks.push(chunk);
  return chunks;
}

/** A log stream's identity within the batcher: its tenant and its labels' text. */
function streamKey(tenant: string, labels: Labels): string {
  return `${tenant}\u0000${persistedLabelsText(labels)}`;
}
