import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel, Partitioners, type Producer } from "kafkajs";
import { Registry } from "prom-client";
import type { Batch } from "../proto/batch.js";
import { encodeBatch } from "../proto/codec.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import type { Store } from "../storage/store.js";
import { createClient } from "@clickhouse/client";
import { aggregatorMetrics } from "../aggregator/metrics.js";
import { WithdrawnError, WriteBuffer } from "../aggregator/write-buffer.js";
import type { WritePart } from "../aggregator/write-part.js";
import { createLogger } from "../common/log.js";
import { batchId } from "../proto/batch.js";
import { assertRollupsMatch, counterTotal, startTestAggregator, TEST_LIMITS, until } from "./helpers/aggregation.js";
import { makeBatch } from "./helpers/batches.js";
import {
  CLICKHOUSE_URL,
  createTopics,
  deleteTopics,
  freePort,
  KAFKA_BROKERS,
  REPO_ROOT,
  startChdbHttp,
  uniqueName,
} from "./helpers/services.js";
import { T0_NS, TEST_RETENTION } from "./helpers/store-contract.js";

const HOUR_NS = 3_600_000_000_000n;
const RANGE = { startNs: T0_NS - HOUR_NS, endNs: T0_NS + 24n * HOUR_NS };

function stream(nodes: string[], perNode: number, tenant: string): Batch[] {
  return nodes.flatMap((nodeId) =>
    Array.from({ length: perNode }, (_, i) =>
      makeBatch({
        tenant,
        nodeId,
        sequence: i + 1,
        streams: 3,
        entriesPerStream: 40,
        series: 2,
        pointsPerSeries: 6,
        startNs: T0_NS,
      }),
    ),
  );
}

function createTopic(kafka: Kafka, topic: string, partitions: number): Promise<void> {
  return createTopics(kafka, [
    { topic, numPartitions: partitions },
    { topic: `${topic}.dlq`, numPartitions: 1 },
  ]);
}

async function connectedProducer(kafka: Kafka): Promise<Producer> {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return producer;
}

/** Every batch's rows are in the store exactly once, per node, and the rollups equal a clean run's. */
async function assertExactlyOnce(store: Store, batches: Batch[]): Promise<void> {
  const tenant = batches[0]!.tenant;
  for (const nodeId of new Set(batches.map((b) => b.nodeId))) {
    const expected = batches
      .filter((b) => b.nodeId === nodeId)
      .reduce((n, b) => n + b.streams.reduce((m, s) => m + s.entries.length, 0), 0);
    const counted = await store.countLogs({
      tenant,
      matchers: [{ name: "node", op: "=", value: nodeId }],
      ...RANGE,
      stepNs: RANGE.endNs - RANGE.startNs,
    });
    assert.equal(
      counted.reduce((n, s) => n + s.points[0]!.count, 0),
      expected,
      `log rows of ${nodeId}`,
    );
  }
  const samples = await store.selectSamples({
    tenant,
    matchers: [],
    startMs: Number(RANGE.startNs / 1_000_000n),
    endMs: Number(RANGE.endNs / 1_000_000n),
  });
  assert.equal(
    samples.reduce((n, s) => n + s.points.length, 0),
    batches.reduce((n, b) => n + b.series.reduce((m, s) => m + s.points.length, 0), 0),
    "samples",
  );
  await assertRollupsMatch(store, batches, Number(RANGE.startNs / 1_000_000n), Number(RANGE.endNs / 1_000_000n));
}

async function storeHasAllLogs(store: Store, batches: Batch[]): Promise<boolean> {
  const expected = batches.reduce((n, b) => n + b.streams.reduce((m, s) => m + s.entries.length, 0), 0);
  const counted = await store.countLogs({
    tenant: batches[0]!.tenant,
    matchers: [{ name: "node", op: "=~", value: ".+" }],
    ...RANGE,
    stepNs: RANGE.endNs - RANGE.startNs,
  });
  return counted.reduce((n, s) => n + s.points[0]!.count, 0) >= expected;
}

describe("aggregator faults", () => {
  const kafka = new Kafka({ clientId: "bifrost-faults-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });

  it("kill -9 of one of two aggregators mid-stream: after the rebalance every row is stored once and rollups match a clean run", async () => {
    const topic = uniqueName("crash");
    const database = uniqueName("crash");
    await createTopic(kafka, topic, 6);
    const store = new ClickHouseStore({
      url: CLICKHOUSE_URL,
      username: "default",
      password: "",
      database,
      retention: TEST_RETENTION,
    });
    await store.migrate();
    const groupId = uniqueName("crash-group");
    // The aggregators' JSON logs, for a look when this fails.
    const logDir = mkdtempSync(join(tmpdir(), "bifrost-crash-"));
    const ports = [await freePort(), await freePort()];
    const spawnAggregator = (port: number): ChildProcess =>
      spawn(process.execPath, [join(REPO_ROOT, "dist", "cli.js"), "aggregator"], {
        env: {
          ...process.env,
          BIFROST_LOG__LEVEL: "warn",
          BIFROST_KAFKA__BROKERS: KAFKA_BROKERS.join(","),
          BIFROST_KAFKA__TOPIC: topic,
          BIFROST_KAFKA__DEAD_LETTER_TOPIC: `${topic}.dlq`,
          BIFROST_AGGREGATOR__GROUP_ID: groupId,
          BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${port}`,
          BIFROST_AGGREGATOR__WORKERS: "1",
          BIFROST_AGGREGATOR__SESSION_TIMEOUT_MS: "6000",
          BIFROST_STORAGE__ENGINE: "clickhouse",
          BIFROST_CLICKHOUSE__URL: CLICKHOUSE_URL,
          BIFROST_CLICKHOUSE__DATABASE: database,
        },
        stdio: ["ignore", openSync(join(logDir, `aggregator-${port}.log`), "a"), "ignore"],
      });
    const handledBy = async (port: number): Promise<number> => {
      try {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return [...text.matchAll(/^bifrost_aggregator_batches_total\{[^}]*\} (\d+)/gm)].reduce(
          (n, m) => n + Number(m[1]),
          0,
        );
      } catch {
        return 0;
      }
    };
    const [victim, survivor] = [spawnAggregator(ports[0]!), spawnAggregator(ports[1]!)];
    const producer = await connectedProducer(kafka);
    const batches = stream(["n1", "n2", "n3", "n4", "n5", "n6"], 30, "crash-tenant");
    try {
      for (const port of ports)
        await until(
          `aggregator on ${port} ready`,
          async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null))?.status === 200,
          60_000,
        );
      // Steady input: one batch per node at a time; the victim dies once it has written some.
      for (let i = 0; i < 30; i++) {
        await producer.send({
          topic,
          acks: -1,
          messages: batches.filter((b) => b.sequence === i + 1).map((b) => ({ key: b.nodeId, value: encodeBatch(b) })),
        });
        if (i === 10) {
          await until("the victim to handle batches", async () => (await handledBy(ports[0]!)) > 0, 60_000);
          victim.kill("SIGKILL");
        }
      }
      await until("every row stored after the rebalance", () => storeHasAllLogs(store, batches), 120_000).catch(
        (err: Error) => {
          throw new Error(`${err.message}; aggregator logs in ${logDir}`);
        },
      );
      await assertExactlyOnce(store, batches);
      assert.ok((await handledBy(ports[1]!)) > 0);
    } finally {
      victim.kill("SIGKILL");
      survivor.kill("SIGTERM");
      await producer.disconnect();
      await store.close();
      await deleteTopics(kafka, [topic, `${topic}.dlq`]);
    }
  });

  it("rows withdrawn from the write buffer while the engine is frozen: the store call in flight ends first, nothing of them is written after", async () => {
    // What an aggregator does when its partitions are revoked: the next owner replays these batches, and two
    // writers of one batch at the same time would both find it missing and both store it.
    const server = await startChdbHttp();
    const database = uniqueName("withdraw");
    const store = new ClickHouseStore({
      url: server.url,
      username: "default",
      password: "",
      database,
      retention: TEST_RETENTION,
    });
    const sql = createClient({ url: server.url });
    try {
      await store.migrate();
      const buffer = new WriteBuffer(store, {
        maxRows: 1,
        maxAgeMs: 50,
        metrics: aggregatorMetrics(new Registry()),
        log: createLogger("silent"),
        isolation: { maxBatchBytes: 1 << 20, limits: TEST_LIMITS, onRollupsLeftOut: () => {} },
        deadLetters: async (letters) => assert.deepEqual(letters, [], "nothing here is refused by the store"),
      });
      const part = (batch: Batch): WritePart => ({
        sources: [],
        logs: [{ id: batchId(batch), tenant: batch.tenant, streams: batch.streams }],
        encodedLogs: [],
        samples: [{ id: batchId(batch), tenant: batch.tenant, series: batch.series }],
        rollups: [],
        metadata: [],
        rows: 1,
      });
      const [inFlight, waiting] = stream(["w1"], 2, "withdraw-tenant");
      server.process.kill("SIGSTOP");
      // One row is a full buffer: the first part's flush starts at once, the second waits behind it.
      const outcome = (written: Promise<void>) =>
        written.then(
          () => "written",
          (err: unknown) => err,
        );
      const first = outcome(buffer.add(part(inFlight!)));
      const second = outcome(buffer.add(part(waiting!)));
      let released = false;
      const withdrawal = buffer.withdrawAll().then(() => (released = true));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(released, false, "the withdrawal waits for the store call in flight");
      server.process.kill("SIGCONT");
      await withdrawal;
      assert.ok((await first) instanceof WithdrawnError);
      assert.ok((await second) instanceof WithdrawnError);
      await buffer.drain();
      const counts = async (table: string) => {
        const result = await sql.query({
          query: `SELECT batch_id, count() AS n FROM ${database}.${table} GROUP BY batch_id ORDER BY batch_id`,
          format: "JSONEachRow",
        });
        return Object.fromEntries(
          (await result.json<{ batch_id: string; n: string }>()).map((r) => [r.batch_id, Number(r.n)]),
        );
      };
      // The logs call was in flight and wrote its rows; the samples call came after the withdrawal and had none.
      assert.deepEqual(await counts("logs"), { [batchId(inFlight!)]: 120 });
      assert.deepEqual(await counts("samples"), {});
    } finally {
      server.process.kill("SIGCONT");
      await sql.close();
      await store.close();
      await server.stop();
    }
  });

  describe("ClickHouse stopped and restarted under load", () => {
    const topic = uniqueName("chdown");
    const registry = new Registry();
    let server: Awaited<ReturnType<typeof startChdbHttp>> | undefined;
    let store: ClickHouseStore | undefined;
    let running: Awaited<ReturnType<typeof startTestAggregator>> | undefined;
    let port: number;

    before(async () => {
      await createTopic(kafka, topic, 3);
      port = await freePort();
      server = await startChdbHttp([], port);
      store = new ClickHouseStore({
        url: server.url,
        username: "default",
        password: "",
        database: uniqueName("chdown"),
        retention: TEST_RETENTION,
        attempts: 2,
      });
      await store.migrate();
      running = await startTestAggregator({
        kafka,
        topic,
        groupId: uniqueName("chdown-group"),
        store,
        registry,
        maxBatchBytes: 1 << 20,
        workers: 1,
      });
    });

    // Each part is stopped even when setup failed half-way, so that no child process keeps the run alive.
    after(async () => {
      await running?.stop();
      await store?.close();
      await server?.stop();
      await deleteTopics(kafka, [topic, `${topic}.dlq`]);
    });

    it("holds the partitions while the store is down, then writes everything once", async () => {
      assert.ok(server !== undefined && store !== undefined);
      const producer = await connectedProducer(kafka);
      const batches = stream(["d1", "d2", "d3"], 20, "down-tenant");
      const dataDir = server.dataDir;
      const clickhouse = store;
      try {
        const send = (from: number, to: number) =>
          producer.send({
            topic,
            acks: -1,
            messages: batches
              .filter((b) => b.sequence > from && b.sequence <= to)
              .map((b) => ({ key: b.nodeId, value: encodeBatch(b) })),
          });
        await send(0, 6);
        await until(
          "the first batches written",
          async () => (await counterTotal(registry, "bifrost_aggregator_batches_total")) >= 18,
        );
        await server.stop("SIGKILL");
        await send(6, 20);
        await until(
          "writes failing against the stopped store",
          async () => (await counterTotal(registry, "bifrost_aggregator_store_retries_total")) >= 2,
          60_000,
        );
        const handledWhileDown = await counterTotal(registry, "bifrost_aggregator_batches_total");
        assert.ok(handledWhileDown < batches.length, "nothing can be written while the store is down");
        server = await startChdbHttp([], port, dataDir);
        await until(
          "every batch handled after the restart",
          async () => (await counterTotal(registry, "bifrost_aggregator_batches_total")) >= batches.length,
          120_000,
        );
        await assertExactlyOnce(clickhouse, batches);
      } finally {
        await producer.disconnect();
      }
    });
  });
});
