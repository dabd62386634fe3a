import { Piscina } from "piscina";
import { kafkaClient } from "../common/kafka.js";
import type { Runtime, Running } from "../common/runtime.js";
import { startHttpComponent } from "../common/service.js";
import { Aggregator } from "./consumer.js";
import { aggregatorMetrics } from "./metrics.js";

/**
 * The regional aggregator: a Kafka consumer group member writing to the store, with `/ready` and `/metrics`.
 * In `bifrost all` there is no Kafka: the collector's shipper writes through the aggregator's decoding in
 * process (local-transport.ts), so only the listener runs here.
 */
export async function startAggregator(runtime: Runtime): Promise<Running> {
  const { config, store } = runtime;
  if (runtime.role === "all" || store === undefined) {
    return startHttpComponent(runtime, "aggregator");
  }
  const log = runtime.log.child({ component: "aggregator" });
  const pool = new Piscina({
    filename: new URL("./worker.js", import.meta.url).href,
    minThreads: config.aggregator.workers,
    maxThreads: config.aggregator.workers,
    maxQueue: config.aggregator.max_queue,
  });
  const aggregator = new Aggregator({
    kafka: kafkaClient(config.kafka, log),
    topic: config.kafka.topic,
    deadLetterTopic: config.kafka.dead_letter_topic,
    groupId: config.aggregator.group_id,
    store,
    pool,
    maxBatchBytes: config.aggregator.max_batch_bytes,
    limits: config.aggregator.limits,
    partitionsConcurrently: config.aggregator.partitions_concurrently,
    sessionTimeoutMs: config.aggregator.session_timeout_ms,
    flushRows: config.aggregator.flush_rows,
    flushMs: config.aggregator.flush_ms,
    metrics: aggregatorMetrics(runtime.registry),
    log,
  });
  const running = await startHttpComponent(runtime, "aggregator", (http) => {
    http.addReadiness("kafka", () => aggregator.readiness());
  });
  // Consume only once the schema exists; a store that never migrates keeps /ready saying why.
  const consuming = runtime.storeMigrated.then(async () => {
    if (runtime.storeReadiness() !== null) return;
    await aggregator.start();
  });
  consuming.catch((err: unknown) => log.error({ err }, "the consumer could not start"));
  return {
    ...running,
    stop: async () => {
      await consuming.catch(() => {});
      await aggregator.stop();
      await pool.destroy();
      await running.stop();
    },
  };
}
