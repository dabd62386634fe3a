import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { KafkaTransport } from "../collector/shipper/kafka-transport.js";
import { Shipper } from "../collector/shipper/shipper.js";
import { Wal } from "../collector/buffer/wal.js";
import { createLogger } from "../common/log.js";
import { decodeBatch, encodeBatch } from "../proto/codec.js";
import { until } from "./helpers/aggregation.js";
import { makeBatch } from "./helpers/batches.js";
import { createTopics, privateKafka } from "./helpers/services.js";

describe("shipper: disk buffer to Kafka through an outage", () => {
  let kafka: Awaited<ReturnType<typeof privateKafka>>;
  before(async () => {
    kafka = await privateKafka();
  });
  after(async () => {
    await kafka.run("down");
  });

  it("delivers every acknowledged batch, in order and unchanged, when Kafka is killed and restarted under steady input", async () => {
    const client = new Kafka({
      clientId: "shipper-test",
      brokers: kafka.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 2, initialRetryTime: 100 },
    });
    await createTopics(client, [{ topic: "telemetry", numPartitions: 3 }]);

    const wal = Wal.open({
      dir: mkdtempSync(join(tmpdir(), "bifrost-ship-")),
      maxBytes: 256 << 20,
      segmentBytes: 1 << 20,
      fsync: "always",
      whenFull: "block",
    });
    let retries = 0;
    const shipper = new Shipper({
      wal,
      transport: new KafkaTransport(client, "telemetry", "edge-1", (reason, message) =>
        assert.fail(`${reason}: ${message}`),
      ),
      backoff: { baseMs: 100, capMs: 1000 },
      log: createLogger("silent"),
      onRetry: () => retries++,
    });
    shipper.start();
    const sent: Buffer[] = [];
    const acknowledge = (sequence: number) => {
      const frame = encodeBatch(makeBatch({ nodeId: "edge-1", sequence, streams: 2, entriesPerStream: 20, series: 1 }));
      wal.append(frame);
      shipper.notify();
      sent.push(frame);
    };
    try {
      for (let i = 1; i <= 60; i++) {
        acknowledge(i);
        await new Promise((r) => setTimeout(r, 10));
      }
      await kafka.run("kill");
      for (let i = 61; i <= 150; i++) {
        acknowledge(i);
        await new Promise((r) => setTimeout(r, 10));
      }
      await until("the shipper noticing the outage", () => retries > 0, 60_000);
      assert.ok(wal.pending() > 0, "batches wait in the buffer while Kafka is down");
      await kafka.run("up");
      for (let i = 151; i <= 200; i++) acknowledge(i);
      await until("the buffer drained", () => wal.pending() === 0, 120_000);
    } finally {
      await shipper.stop();
      wal.close();
    }

    const consumer = client.consumer({ groupId: "verify" });
    await consumer.connect();
    await consumer.subscribe({ topic: "telemetry", fromBeginning: true });
    const received: Buffer[] = [];
    await consumer.run({ eachMessage: async ({ message }) => void received.push(message.value!) });
    const distinct = () => new Set(received.map((r) => decodeBatch(r).sequence)).size;
    try {
      await until("every batch consumed", () => distinct() >= sent.length, 60_000);
    } finally {
      await consumer.disconnect();
    }
    // At-least-once: a batch whose acknowledgement the killed broker never sent is sent again.
    const firstSeen = [...new Map(received.map((r) => [decodeBatch(r).sequence, r] as const)).values()];
    assert.deepEqual(
      firstSeen.map((r) => decodeBatch(r).sequence),
      sent.map((_, i) => i + 1),
      "order per node kept",
    );
    const hash = (frames: Buffer[]) => createHash("sha256").update(Buffer.concat(frames)).digest("hex");
    assert.equal(hash(firstSeen), hash(sent), "content unchanged");
  });
});
