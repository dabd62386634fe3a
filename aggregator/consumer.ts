import type { Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from "kafkajs";
import type { Piscina } from "piscina";
import type { Logger } from "../common/log.js";
import type { BatchLimits } from "../proto/validate.js";
import { takesEncodedLogs } from "../storage/log-rowbinary.js";
import type { Store } from "../storage/store.js";
import type { AggregatorMetrics } from "./metrics.js";
import { WithdrawnError, WriteBuffer } from "./write-buffer.js";
import { type DeadLetter, type DeadLetters, sendDeadLetters } from "./dead-letters.js";
import { writePartOf, type WriteSource } from "./write-part.js";
import { Decoder } from "./decoder.js";
import { backoffDelay } from "../common/backoff.js";
import { ConsumerHealth } from "./consumer-health.js";
import type { DecodedBatch, DecodeResult } from "./worker.js";

export interface GroupConsumerOptions {
  kafka: Kafka;
  topic: string;
  /** Where undecodable batches and refused rows go (the dead-letter topic). */
  deadLetters: DeadLetters;
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

/** The group's answer that this member's generation is over, found among an error's causes. */
function movedOn(err: unknown): { type: string } | undefined {
  for (
    let cause = err as { type?: string; cause?: unknown } | undefined;
    cause !== undefined && cause !== null;
    cause = cause.cause as typeof cause
  ) {
    if (cause.type !== undefined && GROUP_MOVED_ON.has(cause.type)) return cause as { type: string };
  }
  return undefined;
}

/**
 * Thrown to kafkajs's runner, whose answer to NOT_COORDINATOR_FOR_GROUP is to re-join the group through a
 * fresh FindCoordinator: for a member that cannot reach the coordinator it joined through. kafkajs 2.2.4's
 * offset manager keeps that coordinator for the generation's life, and its retries of a commit go there
 * again however often the group's coordinator moved (tulios/kafkajs#1779, open).
 */
class CoordinatorLostError extends Error {
  override readonly name = "CoordinatorLostError";
  readonly type = "NOT_COORDINATOR_FOR_GROUP";
  readonly retriable = true;
}

/**
 * kafkajs's retries for the consumer's own requests (fetches, joins, heartbeats between batches): waits from
 * 300 ms doubling up to half the session timeout, as many as span about one session timeout, and no more. A
 * failure that outlasts them crashes the client, which then restarts itself from a fresh FindCoordinator;
 * endless retries would keep a member talking to a broker that no longer coordinates its group, and long
 * waits between them would keep it idle long after the group has a coordinator again.
 */
function clientRetry(sessionTimeoutMs: number): { retries: number; initialRetryTime: number; maxRetryTime: number } {
  const maxRetryTime = Math.max(1_000, Math.floor(sessionTimeoutMs / 2));
  let [retries, waited] = [0, 0];
  while (waited < sessionTimeoutMs) waited += Math.min(maxRetryTime, 300 * 2 ** retries++);
  return { retries, initialRetryTime: 300, maxRetryTime };
}

/**
 * The regional aggregator's consumer: a Kafka consumer group member that hands each fetched message to the
 * worker pool, writes what decodes to the store, sends what does not to the dead-letter topic, and commits a
 * partition's offset only after all of that is durable. A store outage stalls the partition (retrying, with
 * heartbeats) instead of skipping data; a rebalance drops uncommitted work, which the next owner replays and
 * the store's per-batch idempotency absorbs. Starting is retried with backoff until Kafka and the topic are
 * there, and a client that crashes for good is started again; ConsumerHealth reports a member that stalls.
 */
export class GroupConsumer {
  private consumer: Consumer | undefined;
  private readonly buffer: WriteBuffer;
  private readonly decoder: Decoder;
  private readonly health: ConsumerHealth;
  private readonly sessionTimeoutMs: number;
  private joined = false;
  private running = false;
  /** From a release on the group's answer that it moved on until the re-join: batches fetched meanwhile are replayed, not written. */
  private fenced = false;
  /** What starting the client is doing, or why it failed, until it runs; why it last crashed. */
  private startFailure: string | undefined;
  private lastCrash: string | undefined;
  private launching: Promise<void> | undefined;
  private interrupt: (() => void) | undefined;

  constructor(private readonly options: GroupConsumerOptions) {
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 30_000;
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
      isolation: {
        maxBatchBytes: options.maxBatchBytes,
        limits: options.limits,
        onRollupsLeftOut: (partials, error) => {
          options.metrics.deadLetters.inc({ reason: "store_rejected_rollup" }, partials);
          options.log.error(
            { partials, err: error },
            "the store refuses rollup partials; left out (their samples are stored)",
          );
        },
      },
      deadLetters: (letters) => sendDeadLetters(options.deadLetters, letters, options.metrics.deadLetters, options.log),
    });
    this.health = new ConsumerHealth({
      admin: options.kafka.admin(),
      groupId: options.groupId,
      topic: options.topic,
      sessionTimeoutMs: this.sessionTimeoutMs,
      intervalMs: Math.min(5_000, Math.max(500, Math.floor(this.sessionTimeoutMs / 3))),
      metrics: options.metrics,
      log: options.log,
    });
  }

  /** A kafkajs consumer of the group; a new one for every (re)start, as a client that crashed for good cannot run again. */
  private createConsumer(): Consumer {
    const { options } = this;
    const consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: this.sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(this.sessionTimeoutMs / 3)),
      maxBytesPerPartition: Math.max(1 << 20, options.maxBatchBytes),
      retry: clientRetry(this.sessionTimeoutMs),
    });
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (this.consumer !== consumer) return;
      this.joined = true;
      this.fenced = false;
      this.lastCrash = undefined;
      this.health.joined(event.payload.memberId, event.payload.memberAssignment[options.topic] ?? []);
      options.log.info(
        { member: event.payload.memberId, assignment: event.payload.memberAssignment },
        "joined the consumer group",
      );
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (this.consumer !== consumer) return;
      const { error, restart } = event.payload;
      this.joined = false;
      this.lastCrash = error.message;
      this.health.left();
      options.metrics.consumerRestarts.inc({ reason: "crash" });
      options.log.error({ err: error, restart }, "consumer crashed");
      // kafkajs restarts a client after a retriable crash only; this one is started anew.
      if (!restart && this.running) {
        this.consumer = undefined;
        this.launching = consumer
          .disconnect()
          .catch(() => {})
          .then(() => this.launch());
      }
    });
    return consumer;
  }

  /** null while consuming as a group member, otherwise why not. */
  readiness(): string | null {
    if (!this.running) return "consumer not started";
    if (this.startFailure !== undefined) return this.startFailure;
    if (!this.joined)
      return this.lastCrash === undefined
        ? "not (yet) a member of the consumer group"
        : `not a member of the consumer group: the Kafka client restarts after a crash (${this.lastCrash})`;
    return this.health.readiness();
  }

  /**
   * Starts consuming, and resolves once the first attempt joined the group or failed: failed attempts are
   * retried in the background until Kafka and the topic are there, and /ready says why meanwhile.
   */
  async start(): Promise<void> {
    this.running = true;
    this.health.start();
    let attempted: () => void = () => {};
    const firstAttempt = new Promise<void>((resolve) => (attempted = resolve));
    this.launching = this.launch(attempted);
    await firstAttempt;
  }

  /** Starts a client, again and again with backoff until one runs or the aggregator stops. */
  private async launch(attempted: () => void = () => {}): Promise<void> {
    const { log, metrics, topic } = this.options;
    let lastError: string | undefined;
    for (let attempt = 1; this.running; attempt++) {
      const consumer = this.createConsumer();
      this.consumer = consumer;
      const step = (doing: string) =>
        (this.startFailure = `starting the consumer (attempt ${attempt}): ${doing}${lastError === undefined ? "" : `; the last attempt failed: ${lastError}`}`);
      try {
        step("connecting to Kafka");
        await consumer.connect();
        step(`subscribing to topic ${topic}`);
        await consumer.subscribe({ topic, fromBeginning: true });
        step(`joining consumer group ${this.options.groupId}`);
        if (!this.running) break;
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: this.options.partitionsConcurrently,
          eachBatch: (payload) => this.handle(payload),
        });
        this.startFailure = undefined;
        attempted();
        return;
      } catch (err) {
        if (this.consumer === consumer) this.consumer = undefined;
        await consumer.disconnect().catch(() => {});
        if (!this.running) break;
        const delay = Math.round(backoffDelay(attempt, 1_000, 30_000));
        lastError =
          (err as { type?: string }).type === "UNKNOWN_TOPIC_OR_PARTITION"
            ? `topic ${topic} does not exist (yet): ${(err as Error).message}`
            : (err as Error).message;
        this.startFailure = `the consumer could not start (attempt ${attempt}, next in ${Math.ceil(delay / 1000)} s): ${lastError}`;
        metrics.consumerRestarts.inc({ reason: "start_failed" });
        log.warn(
          { err: lastError, attempt, delay_ms: delay, topic },
          "the consumer could not start (Kafka or the topic not there yet?); retrying",
        );
        attempted();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.interrupt = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
    attempted();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.interrupt?.();
    // A start still waiting on Kafka is abandoned after a while: its client is disconnected below.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.launching, new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
    clearTimeout(timer);
    await this.consumer?.disconnect();
    await this.health.stop();
    await this.buffer.drain();
  }

  private async handle(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset } = payload;
    const { log, metrics } = this.options;
    if (batch.messages.length === 0) return;
    const results = await Promise.all(batch.messages.map((message) => this.decode(message)));

    const decoded: { result: DecodedBatch; source: WriteSource }[] = [];
    const dead: DeadLetter[] = [];
    results.forEach((result, i) => {
      const message = batch.messages[i]!;
      const source = {
        frame: message.value ?? new Uint8Array(0),
        origin: `${batch.topic}/${batch.partition}/${message.offset}`,
        key: message.key,
        headers: message.headers as IHeaders,
      };
      if (!result.ok) {
        dead.push({ ...source, source: source.origin, reason: result.reason, error: result.message });
        return;
      }
      for (const refused of result.refused)
        dead.push({
          ...source,
          source: source.origin,
          reason: refused.reason,
          error: refused.message,
          frame: refused.frame,
        });
      metrics.decodeSeconds.observe(result.decodeMs / 1000);
      decoded.push({ result, source });
    });

    // The dead letters are durable before the offsets that carried them are committed.
    await sendDeadLetters(this.options.deadLetters, dead, metrics.deadLetters, log);
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
              (err: unknown) => err,
            )
          : undefined;
      if (failed === undefined && isRunning() && !isStale()) continue;
      await this.release(heartbeat, failed !== undefined);
      // kafkajs re-joins on the group's answer, or on a coordinator that is lost (and only then emits the join that lifts the fence).
      if (failed !== undefined) throw this.rejoinFor(failed, batch.topic, batch.partition);
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
    metrics.batches.inc({ result: "stored" }, decoded.length);
    metrics.batches.inc({ result: "dead_letter" }, results.length - decoded.length);

    const last = batch.messages[batch.messages.length - 1]!;
    resolveOffset(last.offset);
    if (!(await this.commit(payload, (BigInt(last.offset) + 1n).toString()))) return;
    await heartbeat().catch(async (err: unknown) => {
      if (movedOn(err) === undefined) return;
      await this.release(heartbeat, true);
      throw this.rejoinFor(err, batch.topic, batch.partition);
    });
  }

  /**
   * The error that makes kafkajs's runner re-join after a failed heartbeat or commit: the group's own answer
   * when it moved on, otherwise a lost coordinator. The batch stays uncommitted: the partition's next owner
   * replays it, and the store's idempotency absorbs that.
   */
  private rejoinFor(err: unknown, topic: string, partition: number): unknown {
    const answer = movedOn(err);
    this.options.metrics.consumerRestarts.inc({ reason: answer === undefined ? "coordinator_lost" : "group_moved_on" });
    this.options.log.warn(
      { topic, partition, reason: answer?.type ?? (err as Error).message },
      answer === undefined
        ? "the group's coordinator is unreachable; re-joining, which finds it anew; the partition's next owner replays the batch"
        : "the group moved on; re-joining, the partition's next owner replays the batch",
    );
    return answer ?? new CoordinatorLostError(`the group's coordinator is unreachable: ${(err as Error).message}`);
  }

  /**
   * Commits `offset` for the batch's partition, one request at a time: kafkajs's own commit retries go to the
   * coordinator the generation began with, however long ago it moved. The group's answer that it moved on,
   * or failures for half the session timeout, make the member release its rows and re-join. False when the
   * partition was revoked meanwhile (its next owner replays the batch).
   */
  private async commit(payload: EachBatchPayload, offset: string): Promise<boolean> {
    const { batch, heartbeat, isRunning, isStale } = payload;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await payload.commitOffsetsIfNecessary({
          topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset }] }],
        });
        this.health.committed(batch.partition, offset);
        return true;
      } catch (err) {
        if (!isRunning() || isStale()) return false;
        if (movedOn(err) !== undefined || Date.now() - started >= this.sessionTimeoutMs / 2) {
          await this.release(heartbeat, true);
          throw this.rejoinFor(err, batch.topic, batch.partition);
        }
        this.options.log.warn(
          { topic: batch.topic, partition: batch.partition, attempt, err: (err as Error).message },
          "offset commit failed; retrying",
        );
        await new Promise((r) => setTimeout(r, backoffDelay(attempt, 200, 2_000)));
      }
    }
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
}
