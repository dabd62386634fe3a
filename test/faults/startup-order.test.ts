import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { waitFor } from "../helpers/wait.js";
import { KafkaCluster } from "../helpers/kafka-cluster.js";
import { BifrostProcess, countByNode, type Entry, Pusher, readAllEntries, sleep } from "../helpers/pipeline.js";
import { createTopics, freePort, startChdbHttp, uniqueName } from "../helpers/services.js";

// Issue 14, item 6: a collector, an aggregator and a query service started before anything they depend on:
// no ClickHouse, no Kafka, no topics. Each must say on /ready what it waits for, keep retrying, and become ready
// by itself as the store, then Kafka, then the topics appear; every entry the collector acknowledged meanwhile
// must then be stored, once.

async function readiness(p: BifrostProcess): Promise<{ status: number; body: string }> {
  const response = await fetch(`${p.url}/ready`);
  return { status: response.status, body: await response.text() };
}

describe("start-up order", () => {
  it("collector, aggregator and query started before ClickHouse, Kafka and the topics: each says why it waits, then becomes ready by itself, and nothing pushed meanwhile is lost", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-startup-"));
    const t0 = Date.now();
    const progress = (message: string) =>
      process.stderr.write(`startup-order [${((Date.now() - t0) / 1000).toFixed(1)} s] ${message}\n`);
    const [kafkaPort, chPort, queryPort, aggregatorPort, collectorPort, grpcPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const topic = uniqueName("startup");
    const shared = {
      log: { level: "warn" },
      kafka: { brokers: [`127.0.0.1:${kafkaPort}`], topic, dead_letter_topic: `${topic}.dlq` },
      clickhouse: { url: `http://127.0.0.1:${chPort}`, database: uniqueName("startup") },
      storage: { engine: "clickhouse" },
    };
    const query = BifrostProcess.write(dir, "query", "query", `http://127.0.0.1:${queryPort}`, {
      ...shared,
      query: { listen: `127.0.0.1:${queryPort}` },
    });
    const aggregator = BifrostProcess.write(dir, "aggregator", "aggregator", `http://127.0.0.1:${aggregatorPort}`, {
      ...shared,
      aggregator: {
        listen: `127.0.0.1:${aggregatorPort}`,
        group_id: uniqueName("startup-group"),
        workers: 1,
        session_timeout_ms: 6000,
        flush_ms: 200,
      },
    });
    mkdirSync(join(dir, "edge-1"));
    const collector = BifrostProcess.write(dir, "edge-1", "collector", `http://127.0.0.1:${collectorPort}`, {
      ...shared,
      node: { id: "edge-1" },
      collector: {
        listen: `127.0.0.1:${collectorPort}`,
        otlp: { grpc_listen: `127.0.0.1:${grpcPort}` },
        wal: { dir: join(dir, "edge-1", "wal") },
        batch: { max_age_ms: 200 },
      },
    });
    const processes = [query, aggregator, collector];
    const pusher = new Pusher("edge-1", collector.url, { entriesPerPush: 10, intervalMs: 200 });
    let clickhouse: Awaited<ReturnType<typeof startChdbHttp>> | undefined;
    let cluster: KafkaCluster | undefined;
    const seen: Record<string, string[]> = {};
    const note = async (stage: string) => {
      seen[stage] = [];
      for (const p of processes) {
        const { status, body } = await readiness(p);
        seen[stage].push(`${p.name} ${status}: ${body.trim().replaceAll("\n", " | ")}`);
      }
      progress(`${stage}:\n  ${seen[stage].join("\n  ")}`);
    };
    try {
      for (const p of processes) p.start();
      // Listening, not ready: every process is up before anything it depends on.
      for (const p of processes)
        await waitFor(
          `${p.name} listening`,
          () =>
            readiness(p).then(
              () => true,
              () => false,
            ),
          60_000,
          200,
        );
      pusher.start();
      await waitFor(
        "pushes acknowledged with nothing behind the collector",
        () => pusher.acked.length >= 50,
        60_000,
        200,
      );
      await sleep(5_000);
      await note("nothing there");
      const none = await Promise.all(processes.map(readiness));
      assert.equal(none[0]!.status, 503, "query without its store");
      assert.match(none[0]!.body, /store: database unreachable/);
      assert.equal(none[1]!.status, 503, "aggregator without store and Kafka");
      assert.match(none[1]!.body, /store: database unreachable/);
      assert.match(none[1]!.body, /kafka: /);
      assert.equal(none[2]!.status, 200, "the collector buffers what it accepts");
      assert.match(none[2]!.body, /shipper: delivery failing for \d+ s/);

      progress("starting ClickHouse");
      clickhouse = await startChdbHttp([], chPort);
      await waitFor(
        "the query service ready once its store is there",
        async () => (await readiness(query)).status === 200,
        180_000,
        500,
      );
      await waitFor(
        "the aggregator waiting for Kafka only",
        async () => {
          const { status, body } = await readiness(aggregator);
          return status === 503 && !body.includes("store:") && body.includes("kafka:");
        },
        180_000,
        500,
      );
      await note("ClickHouse there");

      progress("starting Kafka (one KRaft node, no automatic topic creation)");
      cluster = await KafkaCluster.start({ nodes: 1, ports: [kafkaPort] });
      await sleep(10_000);
      await note("Kafka there, no topics");
      const noTopics = await Promise.all(processes.map(readiness));
      assert.equal(noTopics[1]!.status, 503, "aggregator without its topic");
      assert.match(noTopics[1]!.body, /kafka: /);
      assert.match(noTopics[2]!.body, /shipper: delivery failing/);

      progress("creating the topics");
      await createTopics(cluster.client(), [
        { topic, numPartitions: 3 },
        { topic: `${topic}.dlq`, numPartitions: 1 },
      ]);
      for (const p of processes)
        await waitFor(`${p.name} ready by itself`, async () => (await readiness(p)).status === 200, 240_000, 500);
      await waitFor(
        "the shipper delivering",
        async () => !(await readiness(collector)).body.includes("shipper:"),
        120_000,
        500,
      );
      await note("everything there");

      await pusher.stop();
      const acked = pusher.acked.map((e) => e.line);
      progress(`load stopped after ${acked.length} acknowledged entries; reading them back`);
      await waitFor(
        "every acknowledged entry stored",
        async () => ((await countByNode(query.url).catch(() => null))?.get("edge-1") ?? 0) >= acked.length,
        240_000,
        1_000,
      );
      const read: Entry[] = await readAllEntries(
        query.url,
        '{node="edge-1"}',
        BigInt(t0 - 3_600_000) * 1_000_000n,
        BigInt(Date.now() + 3_600_000) * 1_000_000n,
      );
      const stored = new Map<string, number>();
      for (const e of read) stored.set(e.line, (stored.get(e.line) ?? 0) + 1);
      const missing = acked.filter((line) => !stored.has(line));
      const duplicated = [...stored].filter(([line, n]) => n > 1 && !pusher.inDoubt.has(line));
      const retries = aggregator
        .logTail(100_000)
        .split("\n")
        .filter((l) => l.includes("the consumer could not start")).length;
      process.stdout.write(
        [
          "",
          "=== start-up order report ===",
          ...Object.entries(seen).map(([stage, lines]) => `${stage}:\n  ${lines.join("\n  ")}`),
          `collector edge-1: acknowledged ${acked.length}, stored ${read.length}, lost ${missing.length}, duplicated ${duplicated.length}`,
          `aggregator: ${retries} failed start attempts logged, then consuming`,
          "",
        ].join("\n"),
      );
      assert.deepEqual(pusher.stats.failed, [], "pushes answered neither 2xx nor 429/503");
      assert.equal(missing.length, 0, `acknowledged entries lost, e.g. ${JSON.stringify(missing.slice(0, 3))}`);
      assert.equal(duplicated.length, 0, "entries stored twice");
      assert.ok(retries >= 1, "the aggregator retried its start");
    } finally {
      await pusher.stop();
      await Promise.all(processes.map((p) => p.stop()));
      await clickhouse?.stop();
      await cluster?.shutdown();
    }
  });
});
