import type { Logger } from "../../common/log.js";
import type { Wal } from "../buffer/wal.js";
import { RetryLaterError, type Transport } from "../../common/transport.js";
import { backoffDelay } from "../../common/backoff.js";

export interface ShipperOptions {
  wal: Wal;
  transport: Transport;
  /** Records per send. */
  maxRecords?: number;
  /** Backoff while the other end is unreachable: from baseMs doubling to capMs, with full jitter. */
  backoff?: { baseMs: number; capMs: number };
  log: Logger;
  onShipped?: (records: number) => void;
  onRetry?: (err: unknown) => void;
}

/**
 * Ships the disk buffer: reads from the cursor, sends, and advances the cursor only once the transport says the
 * records are durable. While the other end is unreachable it waits with exponential backoff and jitter and
 * retries the same records, for as long as the outage lasts: the disk budget, not a retry limit, decides what
 * is kept.
 */
export class Shipper {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private interrupt: (() => void) | undefined;
  private failures = 0;
  private failingSince: number | undefined;
  private lastError = "";
  private nextAttemptAt = 0;

  constructor(private readonly options: ShipperOptions) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Tells an idle shipper that the buffer has new records. */
  notify(): void {
    this.wake?.();
  }

  /** Consecutive failed attempts; 0 while every send succeeds. */
  retrying(): number {
    return this.failures;
  }

  /** null while deliveries succeed, otherwise since when and why they fail, and when the next attempt is. */
  status(): string | null {
    if (this.failingSince === undefined) return null;
    const now = Date.now();
    return `delivery failing for ${Math.round((now - this.failingSince) / 1000)} s (attempt ${this.failures}, next in ${Math.max(0, Math.ceil((this.nextAttemptAt - now) / 1000))} s), ${this.options.wal.pending()} batches buffered: ${this.lastError}`;
  }

  /**
   * Stops shipping. A send still in flight after `graceMs` (a broker that does not answer) is abandoned: its
   * records were not acknowledged, so they stay in the disk buffer and go out after the next start.
   */
  async stop(graceMs = 5000): Promise<void> {
    this.running = false;
    this.interrupt?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loop, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    await this.options.transport.close();
  }

  /**
   * Waits `ms`, or less if stop() comes first, or notify() while idle. New data does not cut a backoff short,
   * or steady input would hammer an unreachable broker.
   */
  private pause(ms: number, idle: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.interrupt = wake;
      if (idle) this.wake = wake;
    });
  }

  private async run(): Promise<void> {
    const { wal, transport, log } = this.options;
    const backoff = this.options.backoff ?? { baseMs: 500, capMs: 30_000 };
    while (this.running) {
      const records = wal.read(this.options.maxRecords ?? 50);
      if (records.length === 0) {
        await this.pause(200, true);
        continue;
      }
      try {
        await transport.send(records);
        // Stopped meanwhile: the disk buffer may be closing; the records go out again after the next start.
        if (!this.running) return;
        wal.advance(records[records.length - 1]!.sequence);
        this.failures = 0;
        this.failingSince = undefined;
        this.options.onShipped?.(records.length);
      } catch (err) {
        this.failures++;
        this.options.onRetry?.(err);
        await transport.reset();
        const jittered = backoffDelay(this.failures, backoff.baseMs, backoff.capMs, "full");
        // A Retry-After is the least wait (up to the cap); the backoff still grows while the failures last.
        const asked =
          err instanceof RetryLaterError && err.delayMs !== undefined ? Math.min(backoff.capMs, err.delayMs) : 0;
        const delay = Math.max(asked, jittered);
        this.failingSince ??= Date.now();
        this.lastError = (err as Error).message;
        this.nextAttemptAt = Date.now() + delay;
        if (!this.running) return;
        log.warn(
          { err: (err as Error).message, attempt: this.failures, delay_ms: Math.round(delay), pending: wal.pending() },
          "delivery failed; the batches stay buffered",
        );
        await this.pause(delay, false);
      }
    }
  }
}
