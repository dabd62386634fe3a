import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { Registry } from "prom-client";
import { encodeBatch } from "../proto/codec.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { counterTotal, startTestAggregator } from "./helpers/aggregation.js";
import { makeBatch } from "./helpers/batches.js";
import { createTopics, deleteTopics, freePort, KAFKA_BROKERS, startChdbHttp, uniqueName } from "./helpers/services.js";
import { T0_NS, TEST_RETENTION } from "./helpers/store-contract.js";
import { waitFor } from "./helpers/wait.js";

// Issue 14, item 7: an aggregator that cannot make progress must say so. With the store down it holds its
// partitions (nothing is skipped) and commits nothing while messages wait: its lag gauge must read the group's
// true backlog from Kafka, and after the session timeout /ready must fail with the reason and
// bifrost_aggregator_consumer_stalled read 1, until it consumes again.

const SESSION_TIMEOUT_MS = 6000;

describe("aggregator health: lag and stall from the group's offsets in Kafka", () => {
  const kafka = new Kafka({ clientId: "health-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  const topic = uniqueName("health");
  const registry = new Registry();
  let server: Awaited<ReturnType<typeof startChdbHttp>> | undefined;
  let store: ClickHouseStore | undefined;
  let running: Awaited<ReturnType<typeof startTestAggregator>> | undefined;
  let port: number;

  before(async () => {
    await createTopics(kafka, [
      { topic, numPartitions: 2 },
      { topic: `${topic}.dlq`, numPartitions: 1 },
    ]);
    port = await freePort();
    server = await startChdbHttp([], port);
    store = new ClickHouseStore({
      url: server.url,
      username: "default",
      password: "",
      database: uniqueName("health"),
      retention: TEST_RETENTION,
      attempts: 2,
    });
    await store.migrate();
    running = await startTestAggregator({
      kafka,
      topic,
      groupId: uniqueName("health-group"),
      store,
      registry,
      maxBatchBytes: 1 << 20,
      workers: 1,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
    });
  });

  after(async () => {
    await running?.stop();
    await store?.close();
    await server?.stop();
    await deleteTopics(kafka, [topic, `${topic}.dlq`]);
  });

  const gauge = async (name: string) => counterTotal(registry, name);

  it("reads the true lag while the store is down, reports the stall on /ready and in a metric, and clears both once it consumes again", async () => {
    assert.ok(server !== undefined && running !== undefined);
    const aggregator = running.aggregator;
    const producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const send = (sequences: number[]) =>
      producer.send({
        topic,
        acks: -1,
        messages: ["h1", "h2", "h3", "h4"].flatMap((nodeId) =>
          sequences.map((sequence) => {
            const batch = makeBatch({
              nodeId,
              sequence,
              streams: 2,
              entriesPerStream: 5,
              series: 1,
              pointsPerSeries: 2,
              startNs: T0_NS,
            });
            return { key: nodeId, value: encodeBatch(batch) };
          }),
        ),
      });
    try {
      await send([1, 2, 3]);
      await waitFor(
        "every batch committed: the group's lag 0",
        async () =>
          (await counterTotal(registry, "bifrost_aggregator_batches_total")) >= 12 &&
          (await gauge("bifrost_aggregator_consumer_lag")) === 0,
        60_000,
        200,
      );
      assert.equal(aggregator.readiness(), null);
      assert.ok((await gauge("bifrost_aggregator_last_commit_timestamp_seconds")) > Date.now() / 1000 - 60);

      const dataDir = server.dataDir;
      await server.stop("SIGKILL");
      await send([4, 5, 6, 7, 8]);
      // Nothing can be committed while the store is down: the lag is every message sent since.
      await waitFor(
        "the lag gauge reading the backlog",
        async () => (await gauge("bifrost_aggregator_consumer_lag")) === 20,
        60_000,
        200,
      );
      const reason = await waitFor(
        "/ready reporting the stall",
        () => aggregator.readiness() ?? undefined,
        120_000,
        200,
      );
      assert.match(
        reason,
        /^no offset committed for \d+ s on partitions? [\d, ]+ of \S+ while \d+ messages wait \(session timeout 6 s\)$/,
      );
      await waitFor(
        "the stalled gauge at 1",
        async () => (await gauge("bifrost_aggregator_consumer_stalled")) === 1,
        30_000,
        200,
      );

      server = await startChdbHttp([], port, dataDir);
      await waitFor(
        "consuming again: lag 0, ready, not stalled",
        async () =>
          (await gauge("bifrost_aggregator_consumer_lag")) === 0 &&
          aggregator.readiness() === null &&
          (await gauge("bifrost_aggregator_consumer_stalled")) === 0,
        180_000,
        200,
      );
      assert.ok((await counterTotal(registry, "bifrost_aggregator_batches_total")) >= 32, "every batch handled");
    } finally {
      await producer.disconnect();
    }
  });
});
