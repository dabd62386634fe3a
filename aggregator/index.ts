import { Piscina } from "piscina";
import { kafkaClient } from "../common/kafka.js";
import { type Runtime, type Running, startHttpComponent } from "../runtime.js";
import { takesEncodedLogs } from "../storage/log-rowbinary.js";
import { GroupConsumer } from "./consumer.js";
import { type DeadLetters, FileDeadLetters, KafkaDeadLetters } from "./dead-letters.js";
import { Decoder } from "./decoder.js";
import { batchesRoute } from "./http-ingest.js";
import { aggregatorMetrics } from "./metrics.js";

/**
 * The regional aggregator: a Kafka consumer group member and, with `http_ingest`, the endpoint of collectors
 * that cannot reach Kafka, both writing to the store, with `/ready` and `/metrics`. With neither (as in
 * `bifrost all`, where the collector's shipper writes through the aggregator's decoding in process,
 * store-transport.ts) only the listener runs.
 */
export async function startAggregator(runtime: Runtime): Promise<Running> {
  const { config, store } = runtime;
  const a = config.aggregator;
  if (store === undefined || (!a.consume_kafka && !a.http_ingest.enabled)) {
    return startHttpComponent(runtime, "aggregator");
  }
  const log = runtime.log.child({ component: "aggregator" });
  const pool = new Piscina({
    filename: new URL("./worker.js", import.meta.url).href,
    minThreads: a.workers,
    maxThreads: a.workers,
    maxQueue: a.max_queue,
  });
  const decoder = new Decoder(pool, {
    maxBatchBytes: a.max_batch_bytes,
    limits: a.limits,
    encodeLogs: takesEncodedLogs(store),
  });
  const metrics = aggregatorMetrics(runtime.registry);
  const kafka = a.consume_kafka ? kafkaClient(config.kafka, log, 8, 5_000) : undefined;
  // One destination for the consumer's and the HTTP endpoint's dead letters: the topic when there is Kafka.
  const deadLetters: DeadLetters = kafka
    ? new KafkaDeadLetters(kafka, config.kafka.dead_letter_topic)
    : new FileDeadLetters(a.dead_letter_dir);
  const consumer = kafka
    ? new GroupConsumer({
        kafka,
        topic: config.kafka.topic,
        deadLetters,
        groupId: a.group_id,
        store,
        pool,
        decoder,
        maxBatchBytes: a.max_batch_bytes,
        limits: a.limits,
        partitionsConcurrently: a.partitions_concurrently,
        sessionTimeoutMs: a.session_timeout_ms,
        flushRows: a.flush_rows,
        flushMs: a.flush_ms,
        metrics,
        log,
      })
    : undefined;
  const running = await startHttpComponent(runtime, "aggregator", (http) => {
    if (consumer)
      http.addReadiness("kafka", () =>
        runtime.storeReadiness() === null ? consumer.readiness() : "the consumer starts once the store is ready",
      );
    if (a.http_ingest.enabled) {
      batchesRoute(http.app, {
        decoder,
        store,
        storeReadiness: runtime.storeReadiness,
        authEnabled: config.auth.enabled,
        maxBodyBytes: a.http_ingest.max_body_bytes,
        deadLetters,
        maxBatchBytes: a.max_batch_bytes,
        limits: a.limits,
        metrics,
        log,
      });
    }
  });
  // Consume only once the schema exists; a store that never migrates keeps /ready saying why.
  const consuming = runtime.storeMigrated.then(async () => {
    if (runtime.storeReadiness() !== null) return;
    await consumer?.start();
  });
  consuming.catch((err: unknown) => log.error({ err }, "the consumer could not start"));
  return {
    ...running,
    stop: async () => {
      await running.stop();
      await consuming.catch(() => {});
      await consumer?.stop();
      await deadLetters.close();
      await pool.destroy();
    },
  };
}
