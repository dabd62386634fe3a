import {
  entryBytes,
  fieldBytes,
  labelsBytes,
  type LogStream,
  metadataBytes,
  type MetricMetadata,
  seriesBytes,
  type Series,
} from "../proto/batch.js";
import { type Labels, NO_LABELS } from "../proto/labels.js";
import {
  type BatchLimits,
  checkLabels,
  checkLine,
  checkMetadata,
  checkMetricName,
  STORABLE_MS,
  STORABLE_NS,
  ValidationError,
} from "../proto/validate.js";
import { Admission } from "./admission.js";
import type { NodeConfig, PushLimits } from "./config-sections.js";
import { IngestDefaults } from "./ingest-defaults.js";
import type { TenantLimits } from "./limits.js";

// The ingestion contract: what a receiver may acknowledge. Whatever passes it, the batcher, the disk buffer, the
// aggregator and both stores accept, because it is checked here on the data as they will hold it: with the labels
// the collector adds (those of node, site, region that collector.node_labels lists) and Loki's ingestion defaults (service_name, detected_level), against the aggregator's limits as well as the receiver's, with the
// storable time range and Loki's timestamp window, and at its size once decompressed and converted (an OTLP
// resource attribute copied onto every record counts once per record). One module, called the same way by
// every receiver:
//
//   Receivers that answer their sender (Loki push, OTLP/HTTP and gRPC, Prometheus remote_write, the query
//   service's central push) take the whole request or none of it, within an Admission ticket
//   (common/admission.ts) that bounds decompression and the requests in flight:
//
//     const ticket = await admission.enter(bodyBytes);          // OverloadedError: 503 with Retry-After
//     try {
//       const data = decode(body, contract.maxDecompressedBytes, ticket); // 413 above it, 400 if malformed
//       const { entries, samples } = contract.admit(tenant, data);        // ContractError: its status (400, 413)
//       ...rate limit (429) on entries + samples, then: await batcher.add(tenant, data) (WalFullError: 503)
//     } finally { ticket.release(); }
//
//   Sources that cannot answer (file tails, syslog, journald, Kubernetes pod logs, Prometheus scrapes) keep what
//   passes and count the rest by reason, so that one bad line never holds back the lines after it:
//
//     const { data, refused } = contract.screen(tenant, read);
//     for (const [reason, { count, message }] of refused) { count it; log the message }
//     await batcher.add(tenant, data);
//
// Errors carry the reason (the metric label) and a message naming the limit and the key that sets it.

/** A request or row outside the contract: `status` is the HTTP answer (400, or 413 for size), `reason` the metric label. */
export class ContractError extends Error {
  override readonly name = "ContractError";
  constructor(
    readonly status: 400 | 413,
    readonly reason: ContractReason,
    message: string,
  ) {
    super(message);
  }
}

export type ContractReason =
  ValidationError["reason"] | "no_labels" | "too_old" | "too_far_in_future" | "entry_too_large" | "request_too_large";

/** The labels of a node's identity a collector may add (collector.node_labels). */
export const NODE_LABELS = ["node", "site", "region"] as const;
export type NodeLabel = (typeof NODE_LABELS)[number];

/**
 * The labels a collector adds to every stream and series it ships, unless the data has them: those of its
 * identity that `names` lists, site and region only when set. The contract checks data with exactly these.
 */
export function collectorLabels(node: NodeConfig, names: readonly NodeLabel[] = NODE_LABELS): Labels {
  const values = { node: node.id, site: node.site, region: node.region };
  const labels: Labels = Object.create(null);
  for (const name of names) if (values[name]) labels[name] = values[name];
  return labels;
}

/** `labels` with `added` where it has no label of that name, as the batcher ships them. */
export function withAddedLabels(labels: Labels, added: Labels): Labels {
  const out: Labels = Object.create(null);
  for (const name in labels) out[name] = labels[name]!;
  for (const name in added) out[name] ??= added[name]!;
  return out;
}

/**
 * Bytes of a batch's own fields (tenant, node, site, region, sequence, incarnation, creation time) at most,
 * besides its rows: a tenant id is at most 150 characters (TENANT_ID), an incarnation 64 (proto/batch.ts INCARNATION).
 */
export function batchHeadBytes(node: NodeConfig): number {
  return 64 + 150 + 66 + Buffer.byteLength(node.id) + Buffer.byteLength(node.site + node.region);
}

/**
 * Loki's ingestion defaults as a path applies them: the collector's batcher keeps stream labels within both its
 * own and the aggregator's lengths, the query service's central push within its own (query/loki/push.ts).
 */
export function ingestDefaultsFromConfig(config: ContractConfig, path: "shipped" | "stored"): IngestDefaults {
  const own = config.collector.limits;
  if (path === "stored") return new IngestDefaults(own, own);
  const stored = config.aggregator.limits;
  return new IngestDefaults(own, {
    max_label_name_bytes: Math.min(own.max_label_name_bytes, stored.max_label_name_bytes),
    max_label_value_bytes: Math.min(own.max_label_value_bytes, stored.max_label_value_bytes),
  });
}

/** The parts of the configuration the contract is made of. */
export interface ContractConfig {
  node: NodeConfig;
  collector: { limits: PushLimits; batch: { max_batch_bytes: number }; node_labels: readonly NodeLabel[] };
  aggregator: { limits: BatchLimits };
}

/**
 * The contract of a collector's receivers (`shipped`: data gets the collector's labels, goes in batches) or of
 * a push straight into a store (the query service's central push).
 */
export function contractFromConfig(
  config: ContractConfig,
  tenantLimits: TenantLimits | undefined,
  path: "shipped" | "stored",
  ingestDefaults = ingestDefaultsFromConfig(config, path),
): IngestContract {
  return new IngestContract({
    limits: config.collector.limits,
    tenantLimits,
    storedLimits: config.aggregator.limits,
    addedLabels: path === "shipped" ? collectorLabels(config.node, config.collector.node_labels) : Object.create(null),
    ingestDefaults,
    headBytes: batchHeadBytes(config.node),
    maxBatchBytes: config.collector.batch.max_batch_bytes,
  });
}

/** The admission budget of a process's receivers (collector.limits). */
export function admissionFromConfig(limits: PushLimits, onChange?: (held: number, waiting: number) => void): Admission {
  return new Admission({
    maxBytes: limits.max_inflight_bytes,
    maxWaitMs: limits.max_inflight_wait_ms,
    ...(onChange ? { onChange } : {}),
  });
}

export interface IngestContractOptions {
  /** The receivers' limits (collector.limits); the tenant's overrides replace some of them. */
  limits: PushLimits;
  tenantLimits?: TenantLimits | undefined;
  /** What the aggregator takes (aggregator.limits), checked on the data as shipped, added labels included. */
  storedLimits: BatchLimits;
  /** The labels added before shipping (collectorLabels), none where data goes straight to a store. */
  addedLabels: Labels;
  /** Loki's defaults (service_name, detected_level) as the path adds them after the receiver: checked as added. */
  ingestDefaults?: IngestDefaults;
  /** Bytes of a batch's own fields (batchHeadBytes), which its rows share the batch size with. */
  headBytes: number;
  /** The largest batch (collector.batch.max_batch_bytes): a request above it is split, but one entry must fit. */
  maxBatchBytes: number;
  now?: () => number;
}

/** What a request carries, for the rate limit and metrics. */
export interface Admitted {
  entries: number;
  samples: number;
  /** Its size as batches carry it, added labels included. */
  bytes: number;
}

/** What a receiver hands on: log streams, series, and the metadata of metric families. */
export interface IngestData {
  streams?: LogStream[];
  series?: Series[];
  metadata?: MetricMetadata[];
}

export interface Screened {
  /** The rows that pass. */
  data: { streams: LogStream[]; series: Series[]; metadata: MetricMetadata[] };
  entries: number;
  samples: number;
  /** Rows refused, by reason, with the first message of each. */
  refused: Map<ContractReason, { count: number; message: string }>;
}

type Refuse = (err: ContractError, rows: number) => void;

const NO_LABELS_MESSAGE = "error at least one label pair is required per stream";

export class IngestContract {
  private readonly options: IngestContractOptions;
  private readonly now: () => number;

  constructor(options: IngestContractOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** The largest request body after decompression (413 above it), and the largest request once converted. */
  get maxDecompressedBytes(): number {
    return this.options.limits.max_decompressed_bytes;
  }

  /** Checks a whole request; throws ContractError at the first row outside the contract. */
  admit(tenant: string, data: IngestData): Admitted {
    const checked = this.walk(tenant, data, undefined);
    return { entries: checked.entries, samples: checked.samples, bytes: checked.bytes };
  }

  /** Keeps the rows inside the contract and counts the others by reason. */
  screen(tenant: string, data: IngestData): Screened {
    const refused: Screened["refused"] = new Map();
    const { streams, series, metadata, entries, samples } = this.walk(tenant, data, (err, rows) => {
      const known = refused.get(err.reason);
      if (known) known.count += rows;
      else refused.set(err.reason, { count: rows, message: err.message });
    });
    return { data: { streams, series, metadata }, entries, samples, refused };
  }

  private walk(
    tenant: string,
    data: IngestData,
    refuse: Refuse | undefined,
  ): Required<IngestData> & { entries: number; samples: number; bytes: number } {
    const { limits, tenantLimits, storedLimits, addedLabels, ingestDefaults } = this.options;
    const tenantBatch = tenantLimits?.batchLimits(tenant, limits) ?? limits;
    const fail = (err: unknown, rows: number): void => {
      const error = this.contractError(tenant, err);
      if (refuse === undefined) throw error;
      refuse(error, rows);
    };
    const window = this.window();
    const roomPerRow = this.options.maxBatchBytes - this.options.headBytes;
    const streams: LogStream[] = [];
    const series: Series[] = [];
    const metadata: MetricMetadata[] = [];
    let [entries, samples, bytes] = [0, 0, 0];

    (data.streams ?? []).forEach((stream, s) => {
      const where = `stream ${s}`;
      let shipped: Labels;
      // Defaults keep the entries in order, one for one; the original entries are kept, the added ones checked.
      const defaulted = ingestDefaults?.apply(stream) ?? stream;
      try {
        if (Object.keys(stream.labels).length === 0) throw new ContractError(400, "no_labels", NO_LABELS_MESSAGE);
        checkLabels(stream.labels, tenantBatch, where);
        shipped = withAddedLabels(defaulted.labels, addedLabels);
        this.checkShippedLabels(shipped, stream.labels, where);
      } catch (err) {
        fail(err, stream.entries.length);
        return;
      }
      const labelBytes = labelsBytes(shipped);
      const kept: LogStream = { labels: stream.labels, entries: [] };
      let streamBytes = labelBytes;
      stream.entries.forEach((received, e) => {
        const entry = defaulted.entries[e]!;
        try {
          this.checkEntryTime(entry.timeUnixNano, window, where);
          checkLine(entry.line, tenantBatch, where);
          this.checkStored(() => checkLine(entry.line, storedLimits, where), "max_line_bytes");
          if (entry.metadata !== NO_LABELS) {
            checkLabels(entry.metadata, tenantBatch, `${where} structured metadata`);
            this.checkStored(
              () => checkLabels(entry.metadata, storedLimits, `${where} structured metadata`),
              "max_labels",
            );
          }
          const size = entryBytes(entry);
          if (fieldBytes(labelBytes + size) > roomPerRow)
            throw new ContractError(
              413,
              "entry_too_large",
              `${where}: an entry of ${size} bytes with its stream's labels does not fit in a batch of ${this.options.maxBatchBytes} bytes (collector.batch.max_batch_bytes)`,
            );
          streamBytes += size;
          kept.entries.push(received);
        } catch (err) {
          fail(err, 1);
        }
      });
      if (kept.entries.length === 0) return;
      streams.push(kept.entries.length === stream.entries.length ? stream : kept);
      entries += kept.entries.length;
      bytes += fieldBytes(streamBytes);
    });

    (data.series ?? []).forEach((one, i) => {
      const where = `series ${i} (${one.name.slice(0, 100)})`;
      let shipped: Series;
      try {
        checkMetricName(one.name, `series ${i}`);
        checkLabels(one.labels, tenantBatch, where);
        shipped = { ...one, labels: withAddedLabels(one.labels, addedLabels) };
        this.checkShippedLabels(shipped.labels, one.labels, where);
      } catch (err) {
        fail(err, one.points.length);
        return;
      }
      const kept: Series = { ...one, points: [] };
      for (const point of one.points) {
        try {
          this.checkPointTime(point.timeUnixMs, window, where);
          kept.points.push(point);
        } catch (err) {
          fail(err, 1);
        }
      }
      if (kept.points.length === 0) return;
      const size = seriesBytes({ ...shipped, points: kept.points });
      if (size > roomPerRow) {
        // A series too long for one batch is split by the batcher; only its labels must fit with one point.
        const alone = seriesBytes({ ...shipped, points: kept.points.slice(0, 1) });
        if (alone > roomPerRow) {
          fail(
            new ContractError(
              413,
              "entry_too_large",
              `${where}: its labels do not fit in a batch of ${this.options.maxBatchBytes} bytes (collector.batch.max_batch_bytes)`,
            ),
            kept.points.length,
          );
          return;
        }
      }
      series.push(kept.points.length === one.points.length ? one : kept);
      samples += kept.points.length;
      bytes += size;
    });

    for (const m of data.metadata ?? []) {
      try {
        checkMetadata(m);
        metadata.push(m);
        bytes += metadataBytes(m);
      } catch (err) {
        fail(err, 1);
      }
    }

    if (bytes > limits.max_decompressed_bytes) {
      const error = new ContractError(
        413,
        "request_too_large",
        `the request holds ${bytes} bytes once decoded (labels and attributes copied to each record included), the limit is ${limits.max_decompressed_bytes} (collector.limits.max_decompressed_bytes)`,
      );
      if (refuse === undefined) throw error;
      refuse(error, entries + samples);
      return { streams: [], series: [], metadata: [], entries: 0, samples: 0, bytes: 0 };
    }
    return { streams, series, metadata, entries, samples, bytes };
  }

  /** The labels as shipped, against the aggregator's limits: names the labels the collector adds when they tip it over. */
  private checkShippedLabels(shipped: Labels, sent: Labels, where: string): void {
    const added = Object.keys(shipped).filter((name) => !(name in sent));
    try {
      checkLabels(shipped, this.options.storedLimits, where);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const note =
        added.length === 0
          ? ""
          : ` once this collector adds ${added.map((name) => `${name}=${JSON.stringify(shipped[name])}`).join(", ")}`;
      throw new ContractError(
        400,
        err.reason,
        `${err.message}${note} (aggregator.limits, which every batch must pass)`,
      );
    }
  }

  private checkStored(check: () => void, key: keyof BatchLimits): void {
    try {
      check();
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      throw new ContractError(
        400,
        err.reason,
        `${err.message} (aggregator.limits.${key}, which every batch must pass)`,
      );
    }
  }

  private contractError(tenant: string, err: unknown): ContractError {
    if (err instanceof ContractError) return err;
    if (err instanceof ValidationError)
      return new ContractError(400, err.reason, this.options.tenantLimits?.explain(tenant, err) ?? err.message);
    throw err;
  }

  /** The oldest and newest acceptable times now, in milliseconds (oldest -Infinity when old samples are kept). */
  private window(): { oldestMs: number; newestMs: number } {
    const { limits } = this.options;
    const now = this.now();
    return {
      oldestMs: limits.reject_old_samples ? now - limits.reject_old_samples_max_age_hours * 3_600_000 : -Infinity,
      newestMs: now + limits.creation_grace_period_minutes * 60_000,
    };
  }

  private checkEntryTime(ns: bigint, window: { oldestMs: number; newestMs: number }, where: string): void {
    if (ns < STORABLE_NS.min || ns >= STORABLE_NS.max)
      throw new ContractError(
        400,
        "timestamp_out_of_range",
        `${where}: timestamp ${ns} ns is outside ${iso(STORABLE_MS.min)} .. ${iso(STORABLE_MS.max)}, the times that can be stored`,
      );
    this.checkWindow(Number(ns / 1_000_000n), window, where);
  }

  private checkPointTime(ms: number, window: { oldestMs: number; newestMs: number }, where: string): void {
    if (!Number.isInteger(ms) || ms < STORABLE_MS.min || ms >= STORABLE_MS.max)
      throw new ContractError(
        400,
        "timestamp_out_of_range",
        `${where}: timestamp ${ms} ms is outside ${iso(STORABLE_MS.min)} .. ${iso(STORABLE_MS.max)}, the times that can be stored`,
      );
    this.checkWindow(ms, window, where);
  }

  private checkWindow(ms: number, window: { oldestMs: number; newestMs: number }, where: string): void {
    if (ms < window.oldestMs)
      throw new ContractError(
        400,
        "too_old",
        `${where}: entry has timestamp too old: ${iso(ms)}, oldest acceptable timestamp is: ${iso(window.oldestMs)} (collector.limits.reject_old_samples_max_age_hours)`,
      );
    if (ms > window.newestMs)
      throw new ContractError(
        400,
        "too_far_in_future",
        `${where}: entry has timestamp too new: ${iso(ms)}, newest acceptable timestamp is: ${iso(window.newestMs)} (collector.limits.creation_grace_period_minutes)`,
      );
  }
}

function iso(ms: number): string {
  return new Date(Math.floor(ms)).toISOString();
}
