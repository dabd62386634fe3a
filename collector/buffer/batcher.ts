import type { IngestDefaults } from "../../common/ingest-defaults.js";
import type { LogStream, MetricMetadata, Point, Series } from "../../proto/batch.js";
import type { Labels } from "../../proto/labels.js";
import { CodecError, decodeBatch, encodeBatch } from "../../proto/codec.js";
import { persistedLabelsText } from "../../proto/labels.js";
import type { BatchRecord } from "../../common/transport.js";
import { arrivalNowNs } from "../../common/arrival-clock.js";
import { dropDuplicateEntries, RecentEntries, type SeenLines } from "../../common/log-dedup.js";
import type { Wal } from "./wal.js";

export interface NodeIdentity {
  id: string;
  site: string;
  region: string;
}

export interface BatcherOptions {
  node: NodeIdentity;
  wal: Wal;
  /** Loki's `service_name` and `detected_level`, added to every log stream before its node labels. */
  ingestDefaults?: IngestDefaults;
  /** A batch is written once it holds this many entries and samples... */
  maxEntries: number;
  /** ...or this many bytes of lines... */
  maxBytes: number;
  /** ...or its oldest data has waited this long. */
  maxAgeMs: number;
  /** Series whose last sample is remembered for the next batch's Series.previous (oldest forgotten first). */
  maxTrackedSeries?: number;
  /** A metric family's metadata is sent again after this long even when unchanged (10 minutes). */
  metadataResendMs?: number;
  onWritten?: (info: { sequence: number; tenant: string; entries: number; samples: number; bytes: number }) => void;
}

interface Pending {
  streams: LogStream[];
  series: Series[];
  metadata: Map<string, MetricMetadata>;
  /** The lines of each stream (by tenant and labels' text) in this batch, to drop exact duplicates as Loki does. */
  seen: Map<string, SeenLines>;
  /** Each of `streams`' key in `seen`. */
  streamKeys: string[];
  entries: number;
  bytes: number;
  waiters: { resolve: () => void; reject: (err: unknown) => void }[];
  since: number;
}

/**
 * Groups what the receivers accept into batches per tenant and writes each to the disk buffer as one record
 * (group commit): a receiver's `add` resolves once the batch holding its data is in the WAL, so the sender is
 * acknowledged only for what a crash cannot lose, and rejects with the WAL's error (WalFullError under the
 * `block` policy) so the receiver can answer 429/503. Every stream and series gets the node's identity labels
 * (`node`, and `site`/`region` when set) unless it has them, and every series the sample sent before it.
 */
export class Batcher {
  private readonly pending = new Map<string, Pending>();
  private readonly lastPoints = new Map<string, Point>();
  /** Entries written lately, to drop a push sent again (as Loki's ingester does); see common/log-dedup.ts. */
  private readonly recentEntries = new RecentEntries();
  /** Metadata as last written per tenant and family, and when: unchanged metadata is not sent with every batch. */
  private readonly sentMetadata = new Map<string, { text: string; atMs: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: BatcherOptions) {}

  add(tenant: string, data: { streams?: LogStream[]; series?: Series[]; metadata?: MetricMetadata[] }): Promise<void> {
    let pending = this.pending.get(tenant);
    if (!pending) {
      pending = {
        streams: [],
        series: [],
        metadata: new Map(),
        seen: new Map(),
        streamKeys: [],
        entries: 0,
        bytes: 0,
        waiters: [],
        since: Date.now(),
      };
      this.pending.set(tenant, pending);
    }
    for (const metadata of data.metadata ?? []) {
      const sent = this.sentMetadata.get(`${tenant}\u0000${metadata.name}`);
      const resendMs = this.options.metadataResendMs ?? 600_000;
      if (sent?.text !== JSON.stringify(metadata) || Date.now() - sent.atMs >= resendMs)
        pending.metadata.set(metadata.name, metadata);
    }
    for (const received of data.streams ?? []) {
      const stream = this.options.ingestDefaults?.apply(received) ?? received;
      const labels = this.identify(stream.labels);
      const key = `${tenant}\u0000${persistedLabelsText(labels)}`;
      let seen = pending.seen.get(key);
      if (seen === undefined) pending.seen.set(key, (seen = new Map()));
      const entries = dropDuplicateEntries(stream.entries, seen, (entry) => this.recentEntries.has(key, entry));
      if (entries.length === 0) continue;
      pending.streams.push({ labels, entries });
      pending.streamKeys.push(key);
      pending.entries += entries.length;
      for (const entry of entries) pending.bytes += entry.line.length;
    }
    for (const series of data.series ?? []) {
      pending.series.push({ ...series, labels: this.identify(series.labels) });
      pending.entries += series.points.length;
    }
    const written = new Promise<void>((resolve, reject) => pending.waiters.push({ resolve, reject }));
    if (pending.entries >= this.options.maxEntries || pending.bytes >= this.options.maxBytes) this.write(tenant);
    else this.timer ??= setTimeout(() => this.flush(), this.options.maxAgeMs);
    return written;
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
        const known = this.lastPoints.get(key);
        if (newest && (!known || newest.timeUnixMs > known.timeUnixMs)) this.remember(key, newest);
      }
    }
  }

  private seriesKey(tenant: string, series: Series): string {
    return `${tenant}\u0000${series.name}${persistedLabelsText(series.labels)}`;
  }

  /** Writes every pending batch now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const tenant of [...this.pending.keys()]) this.write(tenant);
  }

  private identify(labels: Labels): Labels {
    const { id, site, region } = this.options.node;
    const out: Labels = Object.create(null);
    for (const name in labels) out[name] = labels[name]!;
    out["node"] ??= id;
    if (site) out["site"] ??= site;
    if (region) out["region"] ??= region;
    return out;
  }

  private write(tenant: string): void {
    const pending = this.pending.get(tenant);
    if (!pending) return;
    this.pending.delete(tenant);
    // Nothing left once duplicates were dropped (a push sent again): acknowledged without an empty batch.
    if (pending.streams.length === 0 && pending.series.length === 0 && pending.metadata.size === 0) {
      for (const waiter of pending.waiters) waiter.resolve();
      return;
    }
    const { node, wal } = this.options;
    // Remembered only once the batch is written: a rejected batch is sent again and must start from the same point.
    const newestPoints: [string, Point][] = [];
    const series = pending.series.map((s) => {
      const key = this.seriesKey(tenant, s);
      const previous = this.lastPoints.get(key);
      const newest = newestPoint(s.points);
      if (newest && (!previous || newest.timeUnixMs > previous.timeUnixMs)) newestPoints.push([key, newest]);
      return previous ? { ...s, previous } : s;
    });
    try {
      const sequence = wal.appendWith((seq) =>
        encodeBatch({
          tenant,
          nodeId: node.id,
          site: node.site,
          region: node.region,
          sequence: seq,
          incarnation: wal.incarnation,
          createdUnixNano: arrivalNowNs(),
          streams: pending.streams,
          series,
          ...(pending.metadata.size > 0 ? { metadata: [...pending.metadata.values()] } : {}),
        }),
      );
      for (const [key, point] of newestPoints) this.remember(key, point);
      pending.streams.forEach((stream, i) => this.recentEntries.remember(pending.streamKeys[i]!, stream.entries));
      for (const metadata of pending.metadata.values()) {
        const key = `${tenant}\u0000${metadata.name}`;
        this.sentMetadata.delete(key);
        this.sentMetadata.set(key, { text: JSON.stringify(metadata), atMs: Date.now() });
        if (this.sentMetadata.size > (this.options.maxTrackedSeries ?? 100_000))
          this.sentMetadata.delete(this.sentMetadata.keys().next().value!);
      }
      this.options.onWritten?.({
        sequence,
        tenant,
        entries: pending.entries - series.reduce((n, s) => n + s.points.length, 0),
        samples: series.reduce((n, s) => n + s.points.length, 0),
        bytes: pending.bytes,
      });
      for (const waiter of pending.waiters) waiter.resolve();
    } catch (err) {
      for (const waiter of pending.waiters) waiter.reject(err);
    }
  }

  private remember(key: string, point: Point): void {
    this.lastPoints.delete(key);
    this.lastPoints.set(key, point);
    const max = this.options.maxTrackedSeries ?? 100_000;
    if (this.lastPoints.size > max) this.lastPoints.delete(this.lastPoints.keys().next().value!);
  }
}

function newestPoint(points: Point[]): Point | undefined {
  return points.reduce<Point | undefined>(
    (a, p) => (a === undefined || p.timeUnixMs >= a.timeUnixMs ? p : a),
    undefined,
  );
}
