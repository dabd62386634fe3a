import type { Kafka, Producer } from "kafkajs";
import type { Logger } from "../common/log.js";
import type { Wal } from "./wal.js";

export interface ShipperOptions {
  wal: Wal;
  kafka: Kafka;
  topic: string;
  /** The Kafka message key: the node id, so one node's batches stay in one partition, in order. */
  key: string;
  /** Records per produce request. */
  maxRecords?: number;
  /** Backoff while Kafka is unreachable: from baseMs doubling to capMs, with full jitter. */
  backoff?: { baseMs: number; capMs: number };
  log: Logger;
  onShipped?: (records: number) => void;
  onRetry?: (err: unknown) => void;
}

/**
 * Ships the disk buffer to Kafka: reads from the cursor, produces with acks=all (idempotent producer, one
 * request in flight, so one node's batches keep their order), and advances the cursor only after the broker
 * acknowledged. While Kafka is unreachable it waits with exponential backoff and jitter and retries the same
 * records, for as long as the outage lasts: the disk budget, not a retry limit, decides what is kept.
 */
export class Shipper {
  private producer: Producer | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private failures = 0;

  constructor(private readonly options: ShipperOptions) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Tells an idle shipper that the buffer has new records. */
  notify(): void {
    this.wake?.();
  }

  /** Consecutive failed attempts; 0 while Kafka takes every request. */
  retrying(): number {
    return this.failures;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    await this.loop;
    await this.producer?.disconnect().catch(() => {});
  }

  private async connected(): Promise<Producer> {
    if (this.producer) return this.producer;
    const producer = this.options.kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 3, initialRetryTime: 200 } });
    await producer.connect();
    this.producer = producer;
    return producer;
  }

  private async run(): Promise<void> {
    const { wal, topic, key, log } = this.options;
    const backoff = this.options.backoff ?? { baseMs: 500, capMs: 30_000 };
    while (this.running) {
      const records = wal.read(this.options.maxRecords ?? 50);
      if (records.length === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 200);
        });
        continue;
      }
      try {
        const producer = await this.connected();
        await producer.send({
          topic,
          acks: -1,
          messages: records.map((r) => ({ key, value: r.payload, headers: { "bifrost-sequence": String(r.sequence) } })),
        });
        wal.advance(records[records.length - 1]!.sequence);
        this.failures = 0;
        this.options.onShipped?.(records.length);
      } catch (err) {
        this.failures++;
        this.options.onRetry?.(err);
        // A broker that restarted may have forgotten this producer's id; start over with a new one.
        const stale = this.producer;
        this.producer = undefined;
        await stale?.disconnect().catch(() => {});
        const delay = Math.random() * Math.min(backoff.capMs, backoff.baseMs * 2 ** Math.min(this.failures - 1, 16));
        log.warn({ err: (err as Error).message, attempt: this.failures, delay_ms: Math.round(delay), pending: wal.pending() }, "Kafka unreachable; the batches stay buffered");
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
