import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { prng } from "./helpers/batches.js";
import { checkDelivery, CollectorProcess, consumeAll, LokiLoad } from "./helpers/collector-process.js";
import { createTopics, deleteTopics, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// `kill -9` of the real collector process (`bifrost collector --config`) at random points while clients push
// Loki entries over HTTP and the shipper sends to the shared Kafka broker, restarted on the same WAL directory.
// Small segments and 20 ms batches make kills during a segment rollover or a cursor update likely.
describe("collector process: kill -9 under load", () => {
  it("loses no acknowledged entry over 5 crash rounds (at-least-once, duplicates counted, order per node kept)", async (t) => {
    const topic = uniqueName("collector_crash");
    const kafka = new Kafka({ clientId: "collector-crash-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    await createTopics(kafka, [{ topic, numPartitions: 2 }]);
    const dir = mkdtempSync(join(tmpdir(), "bifrost-collector-crash-"));
    const walDir = join(dir, "wal");
    const collector = await CollectorProcess.configure(dir, {
      nodeId: "edge-crash",
      kafka: { brokers: KAFKA_BROKERS, topic },
      collector: { wal: { segment_bytes: 2048 }, batch: { max_age_ms: 20 } },
    });
    const seed = Date.now() % 1_000_000;
    const random = prng(seed);
    const load = new LokiLoad(() => collector.url, { clients: 3, entriesPerPush: 20, tenant: "crash" });
    const kills: { afterMs: number; segments: number; cursorTmp: boolean; emptyNewestSegment: boolean; shipped: number }[] = [];
    try {
      await collector.start();
      load.start();
      for (let round = 0; round < 5; round++) {
        const afterMs = Math.round(300 + random() * 1700);
        await sleep(afterMs);
        const shipped = await collector.metric("bifrost_collector_batches_shipped_total");
        await collector.stop("SIGKILL");
        const segments = readdirSync(walDir).filter((f) => f.endsWith(".wal")).sort();
        kills.push({
          afterMs,
          segments: segments.length,
          cursorTmp: existsSync(join(walDir, "cursor.tmp")),
          emptyNewestSegment: segments.length > 0 && statSync(join(walDir, segments.at(-1)!)).size === 0,
          shipped,
        });
        await collector.start();
      }
      await sleep(1000);
      await load.stop();
      await collector.drained();
      await collector.stop();
    } finally {
      await load.stop();
      await collector.stop("SIGKILL");
    }
    const quarantined = collector.logs().filter((l) => String(l.msg).includes("quarantined"));
    assert.deepEqual(quarantined, [], "a kill -9 never leaves a corrupt segment behind");
    const delivery = checkDelivery(load, await consumeAll(kafka, topic));
    t.diagnostic(JSON.stringify({ seed, kills, statuses: Object.fromEntries(load.statuses), ...delivery }));
    assert.ok(load.acknowledged.length > 0);
    await deleteTopics(kafka, [topic]);
  });

  it("recovers from kills at chosen points of the disk buffer: a torn record, a new segment, a cursor before and after its rename", async (t) => {
    const topic = uniqueName("collector_kill_at");
    const kafka = new Kafka({ clientId: "collector-crash-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    await createTopics(kafka, [{ topic, numPartitions: 2 }]);
    const dir = mkdtempSync(join(tmpdir(), "bifrost-collector-kill-at-"));
    const walDir = join(dir, "wal");
    const collector = await CollectorProcess.configure(dir, {
      nodeId: "edge-kill-at",
      kafka: { brokers: KAFKA_BROKERS, topic },
      collector: { wal: { segment_bytes: 2048 }, batch: { max_age_ms: 20 } },
    });
    const load = new LokiLoad(() => collector.url, { clients: 2, entriesPerPush: 20, tenant: "crash" });
    const rounds: { point: string; ended: string; segments: number; newestBytes: number; cursorTmp: boolean }[] = [];
    try {
      load.start();
      for (const point of ["torn-record:12", "segment-opened:8", "cursor-written:4", "cursor-renamed:4"]) {
        await collector.start(point);
        const ended = await collector.exited();
        const segments = readdirSync(walDir).filter((f) => f.endsWith(".wal")).sort();
        rounds.push({ point, ended, segments: segments.length, newestBytes: statSync(join(walDir, segments.at(-1)!)).size, cursorTmp: existsSync(join(walDir, "cursor.tmp")) });
        assert.equal(ended, "SIGKILL", `the collector reached ${point}`);
      }
      await collector.start();
      await sleep(1000);
      await load.stop();
      await collector.drained();
      await collector.stop();
    } finally {
      await load.stop();
      await collector.stop("SIGKILL");
    }
    assert.deepEqual(collector.logs().filter((l) => String(l.msg).includes("quarantined")), [], "the torn record was truncated, not quarantined later");
    const delivery = checkDelivery(load, await consumeAll(kafka, topic));
    t.diagnostic(JSON.stringify({ rounds, statuses: Object.fromEntries(load.statuses), ...delivery }));
    assert.ok(load.acknowledged.length > 0);
    await deleteTopics(kafka, [topic]);
  });
});
