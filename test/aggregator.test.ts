import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Kafka, logLevel, Partitioners, type Producer } from "kafkajs";
import { Registry } from "prom-client";
import type { GroupConsumer } from "../aggregator/consumer.js";
import { batchId } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { decodeBatch, encodeBatch } from "../proto/codec.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { assertRollupsMatch, counterTotal, startTestAggregator, until } from "./helpers/aggregation.js";
import { makeBatch } from "./helpers/batches.js";
import { CLICKHOUSE_URL, createTopics, deleteTopics, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";
import { T0_NS, TEST_RETENTION } from "./helpers/store-contract.js";

const MAX_BATCH_BYTES = 512 << 10;

describe("aggregator: Kafka consumer group -> workers -> store", () => {
  const topic = uniqueName("agg");
  const deadLetterTopic = `${topic}.dlq`; // where startTestAggregator sends dead letters
  const kafka = new Kafka({ clientId: "bifrost-aggregator-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  const registry = new Registry();
  let store: ClickHouseStore;
  let running: Awaited<ReturnType<typeof startTestAggregator>>;
  let aggregator: GroupConsumer;
  let producer: Producer;
  let produced = 0;

  const send = async (messages: { key: string; value: Buffer }[]) => {
    await producer.send({ topic, acks: -1, messages });
    produced += messages.length;
  };
  const handled = async () => (await counterTotal(registry, "bifrost_aggregator_batches_total")) >= produced;

  before(async () => {
    await createTopics(kafka, [
      { topic, numPartitions: 3 },
      { topic: deadLetterTopic, numPartitions: 1 },
    ]);
    producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    store = new ClickHouseStore({
      url: CLICKHOUSE_URL,
      username: "default",
      password: "",
      database: uniqueName("agg"),
      retention: TEST_RETENTION,
    });
    await store.migrate();
    running = await startTestAggregator({
      kafka,
      topic,
      groupId: uniqueName("agg-group"),
      store,
      registry,
      maxBatchBytes: MAX_BATCH_BYTES,
      workers: 2,
    });
    aggregator = running.aggregator;
  });

  after(async () => {
    await running.stop();
    await producer.disconnect();
    await store.close();
    await deleteTopics(kafka, [topic, deadLetterTopic]);
  });

  const nodes = ["edge-a", "edge-b", "edge-c"];
  const batches = nodes.flatMap((nodeId) =>
    Array.from({ length: 10 }, (_, i) =>
      makeBatch({
        nodeId,
        sequence: i + 1,
        streams: 4,
        entriesPerStream: 50,
        series: 3,
        pointsPerSeries: 8,
        startNs: T0_NS,
      }),
    ),
  );

  it("writes N batches from several nodes as exactly N batches' rows, with rollups as computed from all samples", async () => {
    await send(batches.map((b) => ({ key: b.nodeId, value: encodeBatch(b) })));
    await until("every batch handled", handled);
    assert.equal(aggregator.readiness(), null);

    const range = { startNs: T0_NS - 3_600_000_000_000n, endNs: T0_NS + 3_600_000_000_000n };
    for (const nodeId of nodes) {
      const counted = await store.countLogs({
        tenant: "fleet-a",
        matchers: [{ name: "node", op: "=", value: nodeId }],
        ...range,
        stepNs: range.endNs - range.startNs,
      });
      assert.equal(
        counted.reduce((n, s) => n + s.points[0]!.count, 0),
        10 * 4 * 50,
        nodeId,
      );
    }
    const samples = await store.selectSamples({
      tenant: "fleet-a",
      matchers: [],
      startMs: Number(range.startNs / 1_000_000n),
      endMs: Number(range.endNs / 1_000_000n),
    });
    assert.equal(
      samples.reduce((n, s) => n + s.points.length, 0),
      batches.length * 3 * 8,
    );

    await assertRollupsMatch(store, batches, Number(range.startNs / 1_000_000n), Number(range.endNs / 1_000_000n));
    assert.equal(await counterTotal(registry, "bifrost_aggregator_dead_letters_total"), 0);
  });

  it("changes no count when the same batches arrive again", async () => {
    const before = await store.countLogs({
      tenant: "fleet-a",
      matchers: [{ name: "node", op: "=~", value: "edge-.*" }],
      startNs: 0n,
      endNs: 2n ** 62n,
      stepNs: 2n ** 62n,
    });
    await send(batches.slice(0, 12).map((b) => ({ key: b.nodeId, value: encodeBatch(b) })));
    await until("replays handled", handled);
    const after = await store.countLogs({
      tenant: "fleet-a",
      matchers: [{ name: "node", op: "=~", value: "edge-.*" }],
      startNs: 0n,
      endNs: 2n ** 62n,
      stepNs: 2n ** 62n,
    });
    assert.deepEqual(after, before);
    assert.ok((await counterTotal(registry, "bifrost_aggregator_batches_total")) >= batches.length + 12);
  });

  it("sends corrupt, oversized, wrong-version and invalid messages to the dead-letter topic and writes the good ones around them", async () => {
    const good = (sequence: number) =>
      makeBatch({ nodeId: "edge-poison", sequence, streams: 1, entriesPerStream: 10, series: 0, startNs: T0_NS });
    const corrupt = encodeBatch(good(101));
    corrupt[corrupt.length - 3]! ^= 0xff;
    const wrongVersion = encodeBatch(good(102));
    wrongVersion[4] = 9;
    const oversized = encodeBatch(
      makeBatch({
        nodeId: "edge-poison",
        sequence: 103,
        streams: 1,
        entriesPerStream: 4000,
        lineBytes: 200,
        series: 0,
      }),
    );
    const badLabel = good(104);
    badLabel.streams[0]!.labels = labelsOf([["bad-label", "x"]]);
    const poison = [
      { reason: "crc_mismatch", value: corrupt },
      { reason: "unsupported_version", value: wrongVersion },
      { reason: "oversized", value: oversized },
      { reason: "invalid_label_name", value: encodeBatch(badLabel) },
      { reason: "truncated", value: encodeBatch(good(105)).subarray(0, 30) },
    ];
    const messages = [good(1), ...poison.map((p, i) => [p, good(i + 2)] as const).flat()].map((item) =>
      "reason" in item
        ? { key: "edge-poison", value: Buffer.from(item.value) }
        : { key: "edge-poison", value: encodeBatch(item) },
    );
    await send(messages);
    await until("poison handled", handled);

    const written = await store.selectLogs({
      tenant: "fleet-a",
      matchers: [{ name: "node", op: "=", value: "edge-poison" }],
      startNs: 0n,
      endNs: 2n ** 62n,
      limit: 1000,
      direction: "forward",
    });
    assert.equal(
      written.reduce((n, s) => n + s.entries.length, 0),
      6 * 10,
      "the six good batches are written",
    );

    const consumer = kafka.consumer({ groupId: uniqueName("dlq-reader") });
    await consumer.connect();
    await consumer.subscribe({ topic: deadLetterTopic, fromBeginning: true });
    const received: { reason: string; source: string; value: Buffer }[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        received.push({
          reason: String(message.headers?.["bifrost-error-reason"]),
          source: String(message.headers?.["bifrost-source"]),
          value: message.value ?? Buffer.alloc(0),
        });
      },
    });
    try {
      await until("dead letters read", () => received.length >= poison.length, 60_000);
    } finally {
      await consumer.disconnect();
    }
    assert.deepEqual(received.map((r) => r.reason).sort(), poison.map((p) => p.reason).sort());
    assert.ok(received.every((r) => r.source.startsWith(`${topic}/`)));
    const undecodable = poison.filter((p) => p.reason !== "invalid_label_name");
    assert.deepEqual(
      received
        .filter((r) => r.reason !== "invalid_label_name")
        .map((r) => r.value.length)
        .sort((a, b) => a - b),
      undecodable.map((p) => p.value.length).sort((a, b) => a - b),
      "a message that does not decode is kept as it came",
    );
    // Rows outside the limits go as a batch of their own, under an id of their own, replayable as they are.
    const refused = decodeBatch(received.find((r) => r.reason === "invalid_label_name")!.value, {
      maxBatchBytes: MAX_BATCH_BYTES,
    });
    assert.equal(batchId(refused), "fleet-a/edge-poison~invalid_label_name:104");
    assert.deepEqual(refused.streams, badLabel.streams);
    assert.equal(await counterTotal(registry, "bifrost_aggregator_dead_letters_total"), poison.length);
  });
});
