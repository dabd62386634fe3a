import type { Logger } from "../common/log.js";
import type { Store } from "../storage/store.js";
import { StoreError } from "../storage/values.js";
import type { DeadLetter } from "./dead-letters.js";
import { type IsolationOptions, rejectsRows, writeByPieces } from "./isolate.js";
import type { AggregatorMetrics } from "./metrics.js";
import { appendLogsOf, type WritePart } from "./write-part.js";
import { backoffDelay } from "../common/backoff.js";

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
    private readonly options: {
      maxRows: number;
      maxAgeMs: number;
      metrics: AggregatorMetrics;
      log: Logger;
      /** How batches whose rows the store refuses are taken apart (aggregator/isolate.ts). */
      isolation: Omit<IsolationOptions, "store">;
      /** Makes dead letters durable; the parts they came from are done only after. */
      deadLetters: (letters: DeadLetter[]) => Promise<void>;
    },
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
      let written;
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
        written = { logs, samples, rollups };
      } catch (err) {
        if (!rejectsRows(err)) throw err;
        // Without the store's message, which can quote the refused rows (dead-letters.ts says why).
        this.options.log.warn("the store refuses rows of a write; writing its batches piece by piece");
        const isolation = { store: this.store, ...this.options.isolation };
        const { written: pieces, dead } = await this.retry("isolation", () =>
          writeByPieces(
            isolation,
            parts().flatMap((p) => p.sources),
          ),
        );
        await this.options.deadLetters(dead);
        written = pieces;
      }
      const { logs, samples, rollups } = written;
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
