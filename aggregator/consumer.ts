import type { Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage, Producer } from "kafkajs";
import type { Piscina } from "piscina";
import type { Logger } from "../common/log.js";
import type { BatchLimits } from "../proto/validate.js";
import { takesEncodedLogs } from "../storage/log-rowbinary.js";
import type { Store } from "../storage/store.js";
import type { AggregatorMetrics } from "./metrics.js";
import { WithdrawnError, WriteBuffer, writePartOf } from "./write-buffer.js";
import { Decoder } from "./decoder.js";
import type { DecodedBatch, DecodeResult } from "./worker.js";

export interface GroupConsumerOptions {
  kafka: Kafka;
  topic: string;
  deadLetterTopic: string;
  groupId: string;
  store: Store;
  pool: Piscina;
  /** Decoding over `pool`, when it is shared with the HTTP endpoint (its slots bound the pool's queue for both). */
  decoder?: Decoder;
  maxBatchBytes: number;
  limits: BatchLimits;
  partitionsConcurrently: number;
  sessionTimeoutMs?: number;
  /** A flush to the store starts when this many rows wait (default 50k) or the oldest waited flushMs (default 500). */
  flushRows?: number;
  flushMs?: number;
  metrics: AggregatorMetrics;
  log: Logger;
}

/** Kafka's answers to a member whose generation is over: kafkajs's runner re-joins the group on each of them. */
const GROUP_MOVED_ON = new Set([
  "UNKNOWN_MEMBER_ID",
  "ILLEGAL_GENERATION",
  "REBALANCE_IN_PROGRESS",
  "NOT_COORDINATOR_FOR_GROUP",
]);

/**
 * The error to throw for a failed commit. kafkajs wraps a commit's protocol error in a non-retriable one, and a
 * non-retriable crash stops the consumer for good; the protocol error itself makes the runner re-join instead.
 * The batch stays uncommitted: the partition's next owner replays it, and the store's idempotency absorbs that.
 */
function groupMovedOn(err: unknown, log: Logger, topic: string, partition: number): unknown {
  for (
    let cause = err as { type?: string; cause?: unknown } | undefined;
    cause !== undefined && cause !== null;
    cause = cause.cause as typeof cause
  ) {
    if (cause.type !== undefined && GROUP_MOVED_ON.has(cause.type)) {
      log.warn(
        { topic, partition, reason: cause.type },
        "the group moved on before the commit; re-joining, the partition's next owner replays the batch",
      );
      return cause;
    }
  }
  return err;
}

/**
 * The regional aggregator's consumer: a Kafka consumer group member that hands each fetched message to the
 * worker pool, writes what decodes to the store, sends what does not to the dead-letter topic, and commits a
 * partition's offset only after all of that is durable. A store outage stalls the partition (retrying, with
 * heartbeats) instead of skipping data; a rebalance drops uncommitted work, which the next owner replays and
 * the store's per-batch idempotency absorbs.
 */
export class GroupConsumer {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly buffer: WriteBuffer;
  private readonly decoder: Decoder;
  private joined = false;
  private running = false;
  /** From a release on the group's answer that it moved on until the re-join: batches fetched meanwhile are replayed, not written. */
  private fenced = false;

  constructor(private readonly options: GroupConsumerOptions) {
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: Math.min(3_000, Math.floor((options.sessionTimeoutMs ?? 30_000) / 3)),
      maxBytesPerPartition: Math.max(1 << 20, options.maxBatchBytes),
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 30_000 },
    });
    this.producer = options.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    this.decoder =
      options.decoder ??
      new Decoder(options.pool, {
        maxBatchBytes: options.maxBatchBytes,
        limits: options.limits,
        encodeLogs: takesEncodedLogs(options.store),
      });
    this.buffer = new WriteBuffer(options.store, {
      maxRows: options.flushRows ?? 50_000,
      maxAgeMs: options.flushMs ?? 500,
      metrics: options.metrics,
      log: options.log,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.joined = true;
      this.fenced = false;
      options.log.info(
        { member: event.payload.memberId, assignment: event.payload.memberAssignment },
        "joined the consumer group",
      );
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
    await this.buffer.drain();
    await this.producer.disconnect();
  }

  private async handle({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    const { log, metrics } = this.options;
    if (batch.messages.length === 0) return;
    const results = await Promise.all(batch.messages.map((message) => this.decode(message)));

    const decoded: DecodedBatch[] = [];
    const dead: { message: KafkaMessage; reason: string; error: string }[] = [];
    results.forEach((result, i) => {
      if (!result.ok) {
        dead.push({ message: batch.messages[i]!, reason: result.reason, error: result.message });
        return;
      }
      metrics.decodeSeconds.observe(result.decodeMs / 1000);
      decoded.push(result);
    });

    if (dead.length > 0) await this.sendDeadLetters(batch.topic, batch.partition, dead);
    if (this.fenced || !isRunning() || isStale()) return;
    // Heartbeat while the buffer holds this partition's rows: a flush may wait out a store outage.
    const written = this.buffer.add(writePartOf(decoded));
    let settled = false;
    written.then(
      () => (settled = true),
      () => (settled = true),
    );
    while (!settled) {
      await Promise.race([written.catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
      if (settled) break;
      // Any failed heartbeat, not only the group's answer that it moved on, leaves the ownership in doubt.
      const failed =
        isRunning() && !isStale()
          ? await heartbeat().then(
              () => undefined,
              (err: unknown) => groupMovedOn(err, log, batch.topic, batch.partition),
            )
          : undefined;
      if (failed === undefined && isRunning() && !isStale()) continue;
      // kafkajs re-joins on the group's answer (and only then emits the join that lifts the fence).
      await this.release(heartbeat, GROUP_MOVED_ON.has((failed as { type?: string } | undefined)?.type ?? ""));
      if (failed !== undefined) throw failed;
    }
    const error = await written.then(
      () => undefined,
      (err: unknown) => err,
    );
    // Withdrawn, or written but revoked before the commit: the partition's next owner replays the batch.
    if (error instanceof WithdrawnError || this.fenced || !isRunning() || isStale()) {
      log.warn(
        { topic: batch.topic, partition: batch.partition },
        "partition revoked while writing; its next owner replays the batch",
      );
      return;
    }
    if (error !== undefined) throw error;
    metrics.batches.inc({ result: "stored" }, results.length - dead.length);
    metrics.batches.inc({ result: "dead_letter" }, dead.length);

    const last = batch.messages[batch.messages.length - 1]!;
    resolveOffset(last.offset);
    try {
      await this.consumer.commitOffsets([
        { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
      ]);
    } catch (err) {
      throw groupMovedOn(err, log, batch.topic, batch.partition);
    }
    const high = BigInt(batch.highWatermark);
    metrics.lag.set(
      { topic: batch.topic, partition: String(batch.partition) },
      Number(high > BigInt(last.offset) ? high - BigInt(last.offset) - 1n : 0n),
    );
    await heartbeat().catch((err: unknown) => Promise.reject(groupMovedOn(err, log, batch.topic, batch.partition)));
  }

  /**
   * Takes every unwritten row back from the buffer once this member's partitions are revoked or in doubt, so
   * that none is written alongside the next owner's replay of it (both would find the batch missing and both
   * store it), and returns only once no store call holding one is in flight. Heartbeats meanwhile keep the
   * session alive: the rebalance waits for this member to re-join, so no other member gets a partition before.
   * All rows, not only this partition's: a rebalance revokes every partition, and kafkajs re-joins as soon as
   * one handler throws, while the others may still be waiting.
   */
  private async release(heartbeat: () => Promise<void>, fence: boolean): Promise<void> {
    if (fence) this.fenced = true;
    let released = false;
    const withdrawn = this.buffer.withdrawAll().finally(() => (released = true));
    while (!released) {
      await Promise.race([withdrawn, new Promise((r) => setTimeout(r, 1000))]);
      if (!released) await heartbeat().catch(() => {});
    }
  }

  private decode(message: KafkaMessage): Promise<DecodeResult> {
    if (message.value === null) return Promise.resolve({ ok: false, reason: "empty", message: "message has no value" });
    return this.decoder.decode(message.value);
  }

  private async sendDeadLetters(
    topic: string,
    partition: number,
    dead: { message: KafkaMessage; reason: string; error: string }[],
  ): Promise<void> {
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
      this.options.log.warn(
        { topic, partition, offset: message.offset, reason, error },
        "message sent to the dead-letter topic",
      );
    }
  }
}
