import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { startEmbeddedCollector } from "../all.js";
import { loadConfig } from "../config.js";
import { createLogger } from "../common/log.js";
import { createRegistry } from "../common/metrics.js";
import type { Running } from "../runtime.js";
import { batchId } from "../proto/batch.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { Store } from "../storage/store.js";
import { hmacKey } from "./helpers/actions.js";
import { CollectorProcess, consumeAll } from "./helpers/collector-process.js";
import { LinePusher } from "./helpers/line-pusher.js";
import { BifrostProcess, readAllEntries } from "./helpers/pipeline.js";
import { CLICKHOUSE_URL, createTopics, deleteTopics, freePort, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";
import { TEST_RETENTION } from "./helpers/store-contract.js";
import { until } from "./helpers/wait.js";

// Issue 14, item 4: batch ids used to be tenant/node:sequence with sequences starting over at 1 in a new disk
// buffer, so a wiped buffer (or a reimaged node, or a second collector with the same node id, the default being
// `local`) had its first batches discarded by the stores as duplicates of the earlier ones. Every acknowledged
// line must be stored exactly once, on the all-in-one path (embedded store) and on Kafka + ClickHouse.

const SELECTOR = '{app="identity"}';

/** Every line of `SELECTOR` readable through the Loki API, once `expected` many are there, sorted. */
async function storedLines(queryUrl: string, expected: number, startNs: bigint): Promise<string[]> {
  const read = async () =>
    (await readAllEntries(queryUrl, SELECTOR, startNs, BigInt(Date.now() + 60_000) * 1_000_000n)).map((e) => e.line);
  await until(`${expected} lines stored`, async () => (await read()).length >= expected, 90_000);
  return (await read()).sort();
}

async function linesInStore(store: Store, startNs: bigint): Promise<string[]> {
  const streams = await store.selectLogs({
    tenant: "fake",
    matchers: [{ name: "app", op: "=", value: "identity" }],
    startNs,
    endNs: BigInt(Date.now() + 60_000) * 1_000_000n,
    limit: 1_000_000,
    direction: "forward",
  });
  return streams.flatMap((s) => s.entries.map((e) => e.line)).sort();
}

describe("batch identity: all-in-one (embedded store)", () => {
  it("bifrost all with the default node id: a wiped disk buffer loses nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-identity-all-"));
    const [collectorPort, queryPort, aggregatorPort] = [await freePort(), await freePort(), await freePort()];
    const walDir = join(dir, "wal");
    const all = BifrostProcess.write(dir, "all", "all", `http://127.0.0.1:${queryPort}`, {
      log: { level: "info" },
      all: { demo: false },
      storage: { path: join(dir, "data") },
      collector: {
        listen: `127.0.0.1:${collectorPort}`,
        otlp: { grpc_enabled: false },
        wal: { dir: walDir },
        batch: { max_age_ms: 50 },
      },
      aggregator: { listen: `127.0.0.1:${aggregatorPort}` },
      query: { listen: `127.0.0.1:${queryPort}` },
    });
    const collectorUrl = `http://127.0.0.1:${collectorPort}`;
    const pusher = new LinePusher({ app: "identity" });
    const startNs = BigInt(Date.now()) * 1_000_000n;
    try {
      await all.start().ready();
      for (let i = 0; i < 10; i++) await pusher.push(collectorUrl, 20, `before wipe push=${i}`);
      assert.equal((await storedLines(all.url, pusher.acknowledged.length, startNs)).length, 200);
      await all.stop();
      rmSync(walDir, { recursive: true, force: true });
      await all.start().ready();
      for (let i = 0; i < 10; i++) await pusher.push(collectorUrl, 20, `after wipe push=${i}`);
      assert.deepEqual(
        await storedLines(all.url, pusher.acknowledged.length, startNs),
        [...pusher.acknowledged].sort(),
      );
    } finally {
      await all.stop();
    }
  });

  it("two collectors with one node id writing into one embedded store lose nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-identity-embedded-"));
    const store = new DuckDBStore({ path: join(dir, "bifrost.duckdb"), retention: TEST_RETENTION });
    await store.migrate();
    // As `bifrost all` starts its collector: the shipper writes into the process's store.
    const start = async (name: string): Promise<Running> => {
      mkdirSync(join(dir, name));
      const env = {
        BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${await freePort()}`,
        BIFROST_COLLECTOR__WAL__DIR: join(dir, name, "wal"),
        BIFROST_COLLECTOR__OTLP__GRPC_ENABLED: "false",
        BIFROST_COLLECTOR__BATCH__MAX_AGE_MS: "20",
      };
      return startEmbeddedCollector({
        config: loadConfig({ env }),
        log: createLogger("silent"),
        registry: createRegistry(),
        store,
        storeReadiness: () => null,
        storeMigrated: Promise.resolve(),
      });
    };
    const collectors = [await start("a"), await start("b")];
    const pusher = new LinePusher({ app: "identity" });
    const startNs = BigInt(Date.now()) * 1_000_000n;
    try {
      for (let i = 0; i < 10; i++)
        for (const [c, collector] of collectors.entries())
          await pusher.push(collector.address.url, 20, `collector=${c} push=${i}`);
      const expected = [...pusher.acknowledged].sort();
      await until("every line stored", async () => (await linesInStore(store, startNs)).length >= expected.length);
      assert.deepEqual(await linesInStore(store, startNs), expected);
    } finally {
      for (const collector of collectors) await collector.stop();
      await store.close();
    }
  });
});

describe("batch identity: collectors -> Kafka -> aggregator -> ClickHouse -> query", () => {
  it("two collector processes with one node id, one of them then wiped, lose nothing; the query service reports the shared node id", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-identity-kafka-"));
    const topic = uniqueName("identity");
    const database = uniqueName("identity");
    const kafka = new Kafka({ clientId: "batch-identity-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    await createTopics(kafka, [
      { topic, numPartitions: 2 },
      { topic: `${topic}.dlq`, numPartitions: 1 },
    ]);
    const [aggregatorPort, queryPort] = [await freePort(), await freePort()];
    const store = { storage: { engine: "clickhouse" }, clickhouse: { url: CLICKHOUSE_URL, database } };
    const aggregator = BifrostProcess.write(dir, "aggregator", "aggregator", `http://127.0.0.1:${aggregatorPort}`, {
      log: { level: "info" },
      ...store,
      kafka: { brokers: KAFKA_BROKERS, topic, dead_letter_topic: `${topic}.dlq` },
      aggregator: { listen: `127.0.0.1:${aggregatorPort}`, group_id: uniqueName("identity"), flush_ms: 100 },
    });
    const query = BifrostProcess.write(dir, "query", "query", `http://127.0.0.1:${queryPort}`, {
      log: { level: "info" },
      ...store,
      query: {
        listen: `127.0.0.1:${queryPort}`,
        actions: { enabled: true, keys: [hmacKey("act")], heartbeat_keys: [hmacKey("hb")] },
      },
    });
    const node = "edge-twin";
    const collectorConfig = {
      actions: {
        enabled: true,
        keys: [hmacKey("act")],
        heartbeat: { url: `${query.url}/bifrost/v1/heartbeat`, interval_ms: 200, key: hmacKey("hb") },
      },
    };
    const configure = (name: string) => {
      mkdirSync(join(dir, name));
      return CollectorProcess.configure(join(dir, name), {
        nodeId: node,
        kafka: { brokers: KAFKA_BROKERS, topic },
        collector: collectorConfig,
      });
    };
    const twins = [await configure("a"), await configure("b")];
    const pusher = new LinePusher({ app: "identity" });
    const startNs = BigInt(Date.now()) * 1_000_000n;
    try {
      aggregator.start();
      query.start();
      await Promise.all([aggregator.ready(), query.ready()]);
      for (const twin of twins) await twin.start();
      const round = async (tag: string) => {
        for (const [t, twin] of twins.entries()) await pusher.push(twin.url, 20, `${tag} twin=${t}`);
      };
      for (let i = 0; i < 5; i++) await round(`both push=${i}`);

      const reported = async () =>
        (await (await fetch(`${query.url}/metrics`)).text()).includes(
          `bifrost_query_duplicate_node_id_collectors{node_id="${node}"} 2`,
        );
      await until("the query service reporting two collectors with one node id", reported, 30_000);
      const lines = readFileSync(join(dir, "query.log"), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { level: string; msg: string; node?: string; collectors?: { url: string }[] });
      const conflict = lines.filter((l) => l.msg.startsWith("two live collectors present one node id"));
      assert.equal(conflict.length, 1);
      assert.equal(conflict[0]!.level, "error");
      assert.equal(conflict[0]!.node, node);
      assert.deepEqual(conflict[0]!.collectors!.map((c) => c.url).sort(), twins.map((t) => t.url).sort());

      // One twin's disk buffer is wiped (a reimage): its sequences start over at 1 again.
      await twins[0]!.drained();
      await twins[0]!.stop();
      rmSync(join(dir, "a", "wal"), { recursive: true, force: true });
      await twins[0]!.start();
      for (let i = 0; i < 5; i++) await round(`after wipe push=${i}`);

      assert.deepEqual(
        await storedLines(query.url, pusher.acknowledged.length, startNs),
        [...pusher.acknowledged].sort(),
      );
      for (const twin of twins) await twin.drained();

      // What the ids kept apart: batches of one node with one sequence, from different incarnations.
      const batches = (await consumeAll(kafka, topic)).map((m) => m.batch).filter((b) => b.nodeId === node);
      const bySequence = new Map<number, Set<string>>();
      for (const b of batches) bySequence.set(b.sequence, (bySequence.get(b.sequence) ?? new Set()).add(b.incarnation));
      const incarnations = new Set(batches.map((b) => b.incarnation));
      assert.ok(incarnations.size >= 3, `two twins and the wiped one's new start: ${incarnations.size}`);
      assert.ok(
        [...bySequence.values()].filter((s) => s.size >= 2).length >= 5,
        "sequences counted by more than one incarnation",
      );
      const contentById = new Map<string, string>();
      for (const b of batches) {
        const content = JSON.stringify(b.streams.map((s) => s.entries.map((e) => e.line)));
        const seen = contentById.get(batchId(b));
        assert.ok(seen === undefined || seen === content, `batch id ${batchId(b)} names two different batches`);
        contentById.set(batchId(b), content);
      }
    } finally {
      for (const twin of twins) await twin.stop("SIGKILL");
      await Promise.all([aggregator.stop(), query.stop()]);
      await deleteTopics(kafka, [topic, `${topic}.dlq`]);
    }
  });
});
