import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { batchId, nodeOfPart } from "../../proto/batch.js";
import { until } from "../helpers/aggregation.js";
import { CollectorProcess, consumeAll, LokiLoad } from "../helpers/collector-process.js";
import { deleteTopics, KAFKA_BROKERS, uniqueName } from "../helpers/services.js";

// Issue 14: a batch the collector acknowledged must be deliverable whatever the topic's max.message.bytes, which
// the broker applies to each produce request's record batch. Here the topic takes 40 KiB while the collector
// writes batches of up to 64 KiB of incompressible lines, and its shipper reads up to 50 of them per send: every
// acknowledged entry must reach the topic exactly once, no message over the limit, the disk buffer drained.

const MAX_MESSAGE_BYTES = 40 << 10;

describe("the Kafka shipper and a topic's max.message.bytes", () => {
  it("delivers batches larger than the topic takes as pieces, each acknowledged entry exactly once, without wedging", async (t) => {
    const kafka = new Kafka({ clientId: "message-size-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    const topic = uniqueName("msgsize");
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic, numPartitions: 1, configEntries: [{ name: "max.message.bytes", value: String(MAX_MESSAGE_BYTES) }] },
      ],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const dir = mkdtempSync(join(tmpdir(), "bifrost-message-size-"));
    const collector = await CollectorProcess.configure(dir, {
      nodeId: "edge-size",
      kafka: { brokers: KAFKA_BROKERS, topic },
      collector: { batch: { max_batch_bytes: 64 << 10, max_bytes: 1 << 20, max_age_ms: 200 } },
    });
    // 60 lines of ~1.6 KB of random base64 a push: ~100 KB, two batches of the contract's 64 KiB.
    const load = new LokiLoad(() => collector.url, { clients: 2, entriesPerPush: 60, tenant: "size", padBytes: 1200 });
    try {
      await collector.start();
      load.start();
      await until("entries acknowledged", () => load.acknowledged.length >= 3_000, 120_000);
      await load.stop();
      await collector.drained();
      assert.equal(await collector.metric("bifrost_collector_batches_dropped_total"), 0, "nothing dropped");
      await collector.stop();
    } finally {
      await load.stop();
      await collector.stop("SIGKILL");
    }
    const messages = await consumeAll(kafka, topic);
    await deleteTopics(kafka, [topic]);
    const oversized = messages.filter((m) => m.value.length > MAX_MESSAGE_BYTES);
    assert.equal(oversized.length, 0, "no message over the topic's limit");
    // As the store would: each batch id once (a replayed piece has the piece's id), then every line it carries.
    const seen = new Set<string>();
    const copies = new Map<string, number>();
    let pieces = 0;
    for (const { batch } of messages) {
      const id = batchId(batch);
      if (seen.has(id)) continue;
      seen.add(id);
      if (nodeOfPart(batch.nodeId) !== batch.nodeId) pieces++;
      for (const stream of batch.streams)
        for (const entry of stream.entries) copies.set(entry.line, (copies.get(entry.line) ?? 0) + 1);
    }
    const missing = load.acknowledged.filter((e) => !copies.has(e.line));
    const duplicated = [...copies].filter(([, n]) => n > 1);
    t.diagnostic(
      JSON.stringify({ acknowledged: load.acknowledged.length, messages: messages.length, batches: seen.size, pieces }),
    );
    assert.ok(pieces > 0, "batches over the limit went out as pieces");
    assert.equal(missing.length, 0, `acknowledged entries missing, e.g. ${missing[0]?.line.slice(0, 60)}`);
    assert.equal(duplicated.length, 0, "entries delivered twice under different batch ids");
  });
});
