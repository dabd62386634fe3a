import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { prng } from "./helpers/batches.js";
import {
  checkDelivery,
  CollectorProcess,
  consumeAll,
  type DeliveryCheck,
  LokiLoad,
} from "./helpers/collector-process.js";
import { createTopics, deleteTopics, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the disk buffer directory looks like right after a kill. */
function walState(walDir: string) {
  const segments = readdirSync(walDir)
    .filter((f) => f.endsWith(".wal"))
    .sort();
  return {
    segments: segments.length,
    newestBytes: segments.length > 0 ? statSync(join(walDir, segments.at(-1)!)).size : 0,
    cursorTmp: existsSync(join(walDir, "cursor.tmp")),
  };
}

/**
 * Runs `crashes` (which leave no collector running) against a collector process on the shared broker while
 * `clients` push steadily, then lets a last process drain the buffer, and checks what reached the topic. Small segments and 20 ms batches make a
 * segment rollover and a cursor update happen on nearly every batch.
 */
async function underLoad(
  clients: number,
  crashes: (collector: CollectorProcess, walDir: string) => Promise<void>,
  config: { fsync?: "always" | "interval"; maxAgeMs?: number } = {},
): Promise<DeliveryCheck & { statuses: Record<string, number> }> {
  const topic = uniqueName("collector_crash");
  const kafka = new Kafka({ clientId: "collector-crash-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  await createTopics(kafka, [{ topic, numPartitions: 2 }]);
  const dir = mkdtempSync(join(tmpdir(), "bifrost-collector-crash-"));
  const collector = await CollectorProcess.configure(dir, {
    nodeId: "edge-crash",
    kafka: { brokers: KAFKA_BROKERS, topic },
    collector: {
      wal: { segment_bytes: 2048, ...(config.fsync ? { fsync: config.fsync } : {}) },
      batch: { max_age_ms: config.maxAgeMs ?? 20 },
    },
  });
  const load = new LokiLoad(() => collector.url, { clients, entriesPerPush: 20, tenant: "crash" });
  try {
    load.start();
    await crashes(collector, join(dir, "wal"));
    await collector.start();
    await sleep(1000);
    await load.stop();
    await collector.drained();
    await collector.stop();
  } finally {
    await load.stop();
    await collector.stop("SIGKILL");
  }
  // A record cut short must be truncated on the next start; left in place, a later start would find it
  // inside an older segment and report it as corruption.
  assert.deepEqual(
    collector.logs().filter((l) => String(l.msg).includes("corrupt")),
    [],
    "no corruption found",
  );
  const delivery = checkDelivery(load, await consumeAll(kafka, topic));
  assert.ok(load.acknowledged.length > 0);
  await deleteTopics(kafka, [topic]);
  return { statuses: Object.fromEntries(load.statuses), ...delivery };
}

// `kill -9` of the real collector process (`bifrost collector --config`) while clients push Loki entries over
// HTTP and the shipper sends to Kafka, each time restarted on the same WAL directory.
describe("collector process: kill -9 under load", () => {
  it("loses no acknowledged entry over 5 kills at random moments (at-least-once, duplicates counted, order per node kept)", async (t) => {
    const seed = Date.now() % 1_000_000;
    const random = prng(seed);
    const kills: object[] = [];
    const delivery = await underLoad(3, async (collector, walDir) => {
      for (let round = 0; round < 5; round++) {
        await collector.start();
        const afterMs = Math.round(300 + random() * 1700);
        await sleep(afterMs);
        const shipped = await collector.metric("bifrost_collector_batches_shipped_total");
        await collector.stop("SIGKILL");
        kills.push({ afterMs, shipped, ...walState(walDir) });
      }
    });
    t.diagnostic(JSON.stringify({ seed, kills, ...delivery }));
  });

  it("recovers from kills at chosen points of the disk buffer: a torn record, a new segment, a cursor before and after its rename", async (t) => {
    const rounds: object[] = [];
    const delivery = await underLoad(2, async (collector, walDir) => {
      for (const point of ["torn-record:12", "segment-opened:8", "cursor-written:4", "cursor-renamed:4"]) {
        await collector.start(point);
        const ended = await collector.exited();
        rounds.push({ point, ended, ...walState(walDir) });
        assert.equal(ended, "SIGKILL", `the collector reached ${point}`);
      }
    });
    t.diagnostic(JSON.stringify({ rounds, ...delivery }));
  });

  // Group commit: a push is answered once its own entries are durable, not when its batch is full or
  // max_age_ms old (here an hour, so that an answer waiting for it would never come and the test would time out).
  for (const fsync of ["interval", "always"] as const) {
    it(`keeps every push it acknowledged at once, killed right after an answer (fsync ${fsync})`, async (t) => {
      const rounds: object[] = [];
      const delivery = await underLoad(
        3,
        async (collector, walDir) => {
          for (const point of ["acknowledged:1", "acknowledged:7", "acknowledged:30"]) {
            await collector.start(point);
            const ended = await collector.exited();
            rounds.push({ point, ended, ...walState(walDir) });
            assert.equal(ended, "SIGKILL", `the collector reached ${point}`);
          }
        },
        { fsync, maxAgeMs: 3_600_000 },
      );
      t.diagnostic(JSON.stringify({ rounds, ...delivery }));
    });
  }
});
