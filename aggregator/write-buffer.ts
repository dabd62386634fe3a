import type { Logger } from "../common/log.js";
import type { DecodedBatch } from "./worker.js";
import { type EncodedLogBatch, takesEncodedLogs } from "../storage/log-rowbinary.js";
import type { AppendResult, LogBatch, MetadataBatch, RollupBatch, SampleBatch, Store } from "../storage/store.js";
import { StoreError } from "../storage/values.js";
import type { AggregatorMetrics } from "./metrics.js";
import { backoffDelay } from "../common/backoff.js";

export interface WritePart {
  logs: LogBatch[];
  /** Logs that the workers encoded, for a store with appendEncodedLogs. */
  encodedLogs: EncodedLogBatch[];
  samples: SampleBatch[];
  rollups: RollupBatch[];
  metadata: MetadataBatch[];
  rows: number;
}

/** What decoded messages add to a store write, and the rows they carry. */
export function writePartOf(results: readonly DecodedBatch[]): WritePart {
  const part: WritePart = { logs: [], encodedLogs: [], samples: [], rollups: [], metadata: [], rows: 0 };
  for (const result of results) {
    const { id, tenant } = result;
    if (result.logs && "encoded" in result.logs) part.encodedLogs.push(result.logs.encoded);
    else if (result.logs) part.logs.push(result.logs.decoded);
    if (result.series.length > 0) {
      part.samples.push({ id, tenant, series: result.series });
      part.rollups.push({ id, tenant, partials: result.partials });
    }
    if (result.metadata.length > 0) part.metadata.push({ tenant, seenMs: result.createdMs, metadata: result.metadata });
    part.rows += result.rows;
  }
  return part;
}

async function appendLogsOf(store: Store, logs: LogBatch[], encodedLogs: EncodedLogBatch[]): Promise<AppendResult> {
  const decoded = await store.appendLogs(logs);
  if (encodedLogs.length === 0) return decoded;
  if (!takesEncodedLogs(store)) throw new Error("log batches arrived encoded for a store that does not take them");
  const encoded = await store.appendEncodedLogs(encodedLogs);
  return {
    written: decoded.written + encoded.written,
    duplicates: decoded.duplicates + encoded.duplicates,
    rows: decoded.rows + encoded.rows,
  };
}

/**
 * Writes a part to the store once, without retrying: for callers that report a store failure to their sender
 * (the HTTP endpoint's 503, `bifrost all`'s shipper) rather than wait it out. Raw samples go before rollups,
 * as in a flush, so that a retry after a failure between the two finds the samples stored.
 */
export async function appendPart(
  store: Store,
  part: WritePart,
): Promise<{ logs: AppendResult; samples: AppendResult; rollups: AppendResult }> {
  const logs = await appendLogsOf(store, part.logs, part.encodedLogs);
  const samples = await store.appendSamples(part.samples);
  const rollups = await store.appendRollups(part.rollups);
  await store.appendMetadata(part.metadata);
  return { logs, samples, rollups };
}

interface Pending {
  part: WritePart;
  done: () => void;
  failed: (err: unknown) => void;
  withdrawn: boolean;
}

/** Why `add`'s promise rejects for a part taken back by `withdrawAll`. */
export class WithdrawnError extends Error {}

/**
 * Gathers what concurrently consumed partitions decoded into large store writes: a flush starts when
 * `maxRows` rows wait or the oldest has waited `maxAgeMs`, and one flush runs at a time. `add` resolves when
 * the flush holding its part is durable, so the caller commits its offsets only then. A transient store
 * failure is retried with backoff for as long as it lasts; the parts stay pending, nothing is dropped unless
 * withdrawn.
 */
export class WriteBuffer {
  private pending: Pending[] = [];
  private rows = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** The parts of the running flush, and its store call in flight. */
  private taken: Pending[] = [];
  private call: Promise<unknown> | undefined;

  constructor(
    private readonly store: Store,
    private readonly options: { maxRows: number; maxAgeMs: number; metrics: AggregatorMetrics; log: Logger },
  ) {}

  add(part: WritePart): Promise<void> {
    return new Promise((done, failed) => {
      this.pending.push({ part, done, failed, withdrawn: false });
      this.rows += part.rows;
      if (this.rows >= this.options.maxRows) this.kick();
      else this.timer ??= setTimeout(() => this.kick(), this.options.maxAgeMs);
    });
  }

  /**
   * Takes back every part not written yet (their `add` rejects with WithdrawnError), and resolves once no store
   * call holding one is in flight any more. For a consumer whose partitions were revoked: their next owners
   * replay the parts, and two writers of one batch at the same time would both find it missing and both store it.
   */
  async withdrawAll(): Promise<void> {
    const parts = [...this.pending, ...this.taken];
    this.pending = [];
    this.rows = 0;
    for (const p of parts) {
      p.withdrawn = true;
      p.failed(new WithdrawnError("withdrawn before it was written"));
    }
    // The running flush leaves them out of its next store call; the one in flight may still write them.
    await this.call?.catch(() => {});
  }

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.flushing || this.pending.length === 0) return;
    const taken = this.pending;
    this.pending = [];
    this.rows = 0;
    this.taken = taken;
    this.flushing = this.flush(taken).finally(() => {
      this.flushing = undefined;
      this.taken = [];
      if (this.pending.length > 0) this.kick();
    });
  }

  private async flush(taken: Pending[]): Promise<void> {
    const { metrics } = this.options;
    const started = performance.now();
    // Evaluated at each store call, retries included, so that a part withdrawn meanwhile is left out.
    const parts = () => taken.filter((p) => !p.withdrawn).map((p) => p.part);
    try {
      const logs = await this.retry("logs", () =>
        appendLogsOf(
          this.store,
          parts().flatMap((p) => p.logs),
          parts().flatMap((p) => p.encodedLogs),
        ),
      );
      // Raw samples before rollups: a replay after a crash between the two finds the samples stored.
      const samples = await this.retry("samples", () => this.store.appendSamples(parts().flatMap((p) => p.samples)));
      const rollups = await this.retry("rollups", () => this.store.appendRollups(parts().flatMap((p) => p.rollups)));
      await this.retry("metadata", () => this.store.appendMetadata(parts().flatMap((p) => p.metadata)));
      metrics.rows.inc({ signal: "logs" }, logs.rows);
      metrics.rows.inc({ signal: "samples" }, samples.rows);
      metrics.rows.inc({ signal: "rollups" }, rollups.rows);
      metrics.duplicates.inc(Math.max(logs.duplicates, samples.duplicates));
      metrics.writeSeconds.observe((performance.now() - started) / 1000);
      for (const p of taken) p.done();
    } catch (err) {
      for (const p of taken) p.failed(err);
    }
  }

  private async retry<T>(what: string, write: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const call = write();
      this.call = call;
      try {
        return await call;
      } catch (err) {
        if (!(err instanceof StoreError) || !err.transient) throw err;
        this.options.metrics.storeRetries.inc();
        const delay = Math.round(backoffDelay(attempt, 500, 30_000));
        this.options.log.warn(
          { err: err.message, attempt, delay_ms: delay, what },
          "store unavailable; holding the partitions and retrying",
        );
        await new Promise((r) => setTimeout(r, delay));
      } finally {
        this.call = undefined;
      }
    }
  }

  /** Writes whatever waits now and resolves when it is durable. */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.flushing) {
      this.kick();
      await this.flushing;
    }
  }
}
