import type { Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage, Producer } from "kafkajs";
import type { Piscina } from "piscina";
import type { Logger } from "../common/log.js";
import type { BatchLimits } from "../proto/validate.js";
import type { AppendResult, LogBatch, RollupBatch, SampleBatch, Store } from "../storage/store.js";
import { StoreError } from "../storage/values.js";
import type { AggregatorMetrics } from "./metrics.js";
import type { DecodeResult, DecodeTask } from "./worker.js";

export interface AggregatorOptions {
  kafka: Kafka;
  topic: string;
  deadLetterTopic: string;
  groupId: string;
  store: Store;
  pool: Piscina;
  maxBatchBytes: number;
  limits: BatchLimits;
  partitionsConcurrently: number;
  sessionTimeoutMs?: number;
  metrics: AggregatorMetrics;
  log: Logger;
}

/**
 * The regional aggregator's consumer: a Kafka consumer group member that hands each fetched message to the
 * worker pool, writes what decodes to the store, sends what does not to the dead-letter topic, and commits a
 * partition's offset only after all of that is durable. A store outage stalls the partition (retrying, with
 * heartbeats) instead of skipping data; a rebalance drops uncommitted work, which the next owner replays and
 * the store's per-batch idempotency absorbs.
 */
export class Aggregator {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private joined = false;
  private running = false;

  constructor(private readonly options: AggregatorOptions) {
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: Math.min(3_000, Math.floor((options.sessionTimeoutMs ?? 30_000) / 3)),
      maxBytesPerPartition: Math.max(1 << 20, options.maxBatchBytes),
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 30_000 },
    });
    this.producer = options.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.joined = true;
      options.log.info({ member: event.payload.memberId, assignment: event.payload.memberAssignment }, "joined the consumer group");
    });
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      this.joined = false;
      options.log.error({ err: event.payload.error, restart: event.payload.restart }, "consumer crashed");
    });
  }

  /** null while consuming as a group member, otherwise why not. */
  readiness(): string | null {
    if (!this.running) return "consumer not started";
    return this.joined ? null : "not (yet) a member of the consumer group";
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    this.running = true;
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConcurrently,
      eachBatch: (payload) => this.handle(payload),
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  private async handle({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    const { log, metrics, pool } = this.options;
    if (batch.messages.length === 0) return;
    const results = await Promise.all(
      batch.messages.map((message) =>
        message.value === null
          ? Promise.resolve<DecodeResult>({ ok: false, reason: "empty", message: "message has no value" })
          : (pool.run({ value: message.value, maxBatchBytes: this.options.maxBatchBytes, limits: this.options.limits } satisfies DecodeTask) as Promise<DecodeResult>),
      ),
    );

    const logs: LogBatch[] = [];
    const samples: SampleBatch[] = [];
    const rollups: RollupBatch[] = [];
    const dead: { message: KafkaMessage; reason: string; error: string }[] = [];
    results.forEach((result, i) => {
      if (!result.ok) {
        dead.push({ message: batch.messages[i]!, reason: result.reason, error: result.message });
        return;
      }
      metrics.decodeSeconds.observe(result.decodeMs / 1000);
      const { batch: decoded, id } = result;
      if (decoded.streams.length > 0) logs.push({ id, tenant: decoded.tenant, streams: decoded.streams });
      if (decoded.series.length > 0) {
        samples.push({ id, tenant: decoded.tenant, series: decoded.series });
        rollups.push({ id, tenant: decoded.tenant, partials: result.partials });
      }
    });

    if (dead.length > 0) await this.sendDeadLetters(batch.topic, batch.partition, dead);
    const stopWrite = () => !isRunning() || isStale();
    const started = performance.now();
    // Raw samples before rollups: a replay after a crash between the two finds the samples stored.
    const logResult = await this.writeWithRetry("logs", () => this.options.store.appendLogs(logs), heartbeat, stopWrite);
    const sampleResult = await this.writeWithRetry("samples", () => this.options.store.appendSamples(samples), heartbeat, stopWrite);
    const rollupResult = await this.writeWithRetry("rollups", () => this.options.store.appendRollups(rollups), heartbeat, stopWrite);
    if (logResult === undefined || sampleResult === undefined || rollupResult === undefined) {
      log.warn({ topic: batch.topic, partition: batch.partition }, "partition revoked while writing; its next owner replays the batch");
      return;
    }
    metrics.writeSeconds.observe((performance.now() - started) / 1000);
    metrics.rows.inc({ signal: "logs" }, logResult.rows);
    metrics.rows.inc({ signal: "samples" }, sampleResult.rows);
    metrics.rows.inc({ signal: "rollups" }, rollupResult.rows);
    const good = results.length - dead.length;
    const duplicates = Math.min(good, Math.max(logResult.duplicates, sampleResult.duplicates));
    metrics.batches.inc({ result: "written" }, good - duplicates);
    metrics.batches.inc({ result: "duplicate" }, duplicates);
    metrics.batches.inc({ result: "dead_letter" }, dead.length);

    const last = batch.messages[batch.messages.length - 1]!;
    resolveOffset(last.offset);
    await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }]);
    const high = BigInt(batch.highWatermark);
    metrics.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(high > BigInt(last.offset) ? high - BigInt(last.offset) - 1n : 0n));
    await heartbeat();
  }

  /** Writes until the store takes it; undefined when the partition was revoked meanwhile. */
  private async writeWithRetry(what: string, write: () => Promise<AppendResult>, heartbeat: () => Promise<void>, stop: () => boolean): Promise<AppendResult | undefined> {
    for (let attempt = 1; ; attempt++) {
      if (stop()) return undefined;
      try {
        return await write();
      } catch (err) {
        if (!(err instanceof StoreError) || !err.transient) throw err;
        this.options.metrics.storeRetries.inc();
        const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 6));
        this.options.log.warn({ err: err.message, attempt, delay_ms: delay, what }, "store unavailable; holding the partition and retrying");
        for (let waited = 0; waited < delay; waited += 1000) {
          await heartbeat();
          if (stop()) return undefined;
          await new Promise((r) => setTimeout(r, Math.min(1000, delay - waited)));
        }
      }
    }
  }

  private async sendDeadLetters(topic: string, partition: number, dead: { message: KafkaMessage; reason: string; error: string }[]): Promise<void> {
    await this.producer.send({
      topic: this.options.deadLetterTopic,
      acks: -1,
      messages: dead.map(({ message, reason, error }) => ({
        key: message.key,
        value: message.value,
        headers: {
          ...(message.headers as IHeaders),
          "bifrost-error-reason": reason,
          "bifrost-error": error.slice(0, 4096),
          "bifrost-source": `${topic}/${partition}/${message.offset}`,
        },
      })),
    });
    for (const { message, reason, error } of dead) {
      this.options.metrics.deadLetters.inc({ reason });
      this.options.log.warn({ topic, partition, offset: message.offset, reason, error }, "message sent to the dead-letter topic");
    }
  }
}
