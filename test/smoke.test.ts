import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { type ClickHouseClient, createClient } from "@clickhouse/client";
import { CompressionTypes, Kafka, logLevel, Partitioners } from "kafkajs";
import { type Batch, batchId } from "../proto/batch.js";
import { decodeBatch, encodeBatch } from "../proto/codec.js";
import { makeBatch } from "./helpers/batches.js";
import { CLICKHOUSE_URL, createTopics, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";

// The whole chain on this machine, with the real clients: encode -> Kafka (KRaft broker) -> consumer group ->
// decode -> ClickHouse engine (chDB) -> read back and compare.

interface Row {
  node_id: string;
  sequence: number;
  ts_ns: string;
  service: string;
  line: string;
}

function rowsOf(batch: Batch): Row[] {
  return batch.streams.flatMap((stream) =>
    stream.entries.map((entry) => ({
      node_id: batch.nodeId,
      sequence: batch.sequence,
      ts_ns: entry.timeUnixNano.toString(),
      service: stream.labels["service"] ?? "",
      line: entry.line,
    })),
  );
}

function digest(rows: Row[]): string {
  const keys = rows
    .map((r) => `${r.node_id}\u0001${r.sequence}\u0001${r.ts_ns}\u0001${r.service}\u0001${r.line}`)
    .sort();
  return createHash("sha256").update(keys.join("\u0000")).digest("hex");
}

describe("smoke: Kafka and ClickHouse on this machine", () => {
  const topic = uniqueName("smoke");
  const database = uniqueName("smoke");
  const kafka = new Kafka({ clientId: "bifrost-smoke", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  let clickhouse: ClickHouseClient;

  before(async () => {
    await createTopics(kafka, [{ topic, numPartitions: 3 }]);
    clickhouse = createClient({ url: CLICKHOUSE_URL });
    await clickhouse.command({ query: `CREATE DATABASE ${database}` });
    await clickhouse.command({
      query: `CREATE TABLE ${database}.logs (node_id LowCardinality(String), sequence UInt64, ts_ns Int64, service String, line String)
              ENGINE = MergeTree ORDER BY (node_id, ts_ns) SETTINGS non_replicated_deduplication_window = 1000`,
    });
  });

  after(async () => {
    await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await clickhouse.close();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] });
    await admin.disconnect();
  });

  it("carries encoded batches through a consumer group into ClickHouse, row for row", async () => {
    const nodes = ["edge-a", "edge-b", "edge-c"];
    const sent: Batch[] = nodes.flatMap((nodeId) =>
      Array.from({ length: 8 }, (_, i) =>
        makeBatch({ nodeId, sequence: i + 1, streams: 3, entriesPerStream: 40, series: 1 }),
      ),
    );

    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      compression: CompressionTypes.None,
      messages: sent.map((batch) => ({
        key: batch.nodeId,
        value: encodeBatch(batch),
        headers: { "bifrost-batch-id": batchId(batch) },
      })),
    });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: uniqueName("smoke-group"), sessionTimeout: 10_000 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: Batch[] = [];
    const lastSequence = new Map<string, number>();
    let orderViolations = 0;
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`received ${received.length} of ${sent.length} batches in 60 s`)),
        60_000,
      );
      void consumer.run({
        eachBatchAutoResolve: true,
        eachBatch: async ({ batch: kafkaBatch }) => {
          const decoded = kafkaBatch.messages.map((message) => decodeBatch(message.value!));
          for (const batch of decoded) {
            if ((lastSequence.get(batch.nodeId) ?? 0) >= batch.sequence) orderViolations++;
            lastSequence.set(batch.nodeId, batch.sequence);
          }
          // Offsets are committed only after ClickHouse has the rows (eachBatchAutoResolve resolves after this returns).
          for (const batch of decoded) {
            await clickhouse.insert({
              table: `${database}.logs`,
              values: rowsOf(batch),
              format: "JSONEachRow",
              clickhouse_settings: { insert_deduplication_token: batchId(batch) },
            });
          }
          received.push(...decoded);
          if (received.length >= sent.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    try {
      await done;
    } finally {
      await consumer.disconnect();
    }

    assert.equal(received.length, sent.length);
    assert.equal(orderViolations, 0, "batches of one node arrived out of order");
    assert.deepEqual(received.map(batchId).sort(), sent.map(batchId).sort());

    const expected = sent.flatMap(rowsOf);
    const stored = await (
      await clickhouse.query({
        query: `SELECT node_id, sequence, toString(ts_ns) AS ts_ns, service, line FROM ${database}.logs`,
        format: "JSONEachRow",
      })
    ).json<Row>();
    assert.equal(stored.length, expected.length);
    assert.equal(digest(stored.map((r) => ({ ...r, sequence: Number(r.sequence) }))), digest(expected));

    // A replayed batch (same id) does not add rows.
    await clickhouse.insert({
      table: `${database}.logs`,
      values: rowsOf(sent[0]!),
      format: "JSONEachRow",
      clickhouse_settings: { insert_deduplication_token: batchId(sent[0]!) },
    });
    const count = await (
      await clickhouse.query({ query: `SELECT count() AS c FROM ${database}.logs`, format: "JSONEachRow" })
    ).json<{ c: number }>();
    assert.equal(Number(count[0]!.c), expected.length);
  });
});
