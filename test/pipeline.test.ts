import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { until } from "./helpers/aggregation.js";
import {
  CLICKHOUSE_URL,
  createTopics,
  deleteTopics,
  freePort,
  KAFKA_BROKERS,
  REPO_ROOT,
  uniqueName,
} from "./helpers/services.js";
import { T0_NS, TEST_RETENTION } from "./helpers/store-contract.js";

// The whole write path as separate processes: Loki push -> `bifrost collector` (batcher, disk buffer, shipper)
// -> Kafka -> `bifrost aggregator` -> ClickHouse.
describe("pipeline: collector -> Kafka -> aggregator -> ClickHouse", () => {
  it("stores every pushed entry once, with the node's identity labels", async () => {
    const topic = uniqueName("pipe");
    const database = uniqueName("pipe");
    const [collectorPort, aggregatorPort, otlpGrpcPort] = [await freePort(), await freePort(), await freePort()];
    const env = {
      ...process.env,
      BIFROST_LOG__LEVEL: "warn",
      BIFROST_NODE__ID: "gw-17",
      BIFROST_NODE__SITE: "store-17",
      BIFROST_KAFKA__BROKERS: KAFKA_BROKERS.join(","),
      BIFROST_KAFKA__TOPIC: topic,
      BIFROST_KAFKA__DEAD_LETTER_TOPIC: `${topic}.dlq`,
      BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${collectorPort}`,
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${otlpGrpcPort}`,
      BIFROST_COLLECTOR__WAL__DIR: mkdtempSync(join(tmpdir(), "bifrost-pipe-wal-")),
      BIFROST_COLLECTOR__BATCH__MAX_AGE_MS: "100",
      BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${aggregatorPort}`,
      BIFROST_AGGREGATOR__GROUP_ID: uniqueName("pipe-group"),
      BIFROST_STORAGE__ENGINE: "clickhouse",
      BIFROST_CLICKHOUSE__URL: CLICKHOUSE_URL,
      BIFROST_CLICKHOUSE__DATABASE: database,
    };
    const kafka = new Kafka({ clientId: "pipeline-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    await createTopics(kafka, [
      { topic, numPartitions: 2 },
      { topic: `${topic}.dlq`, numPartitions: 1 },
    ]);
    const start = (role: string): ChildProcess =>
      spawn(process.execPath, [join(REPO_ROOT, "dist", "cli.js"), role], { env, stdio: "ignore" });
    const processes = [start("collector"), start("aggregator")];
    const store = new ClickHouseStore({
      url: CLICKHOUSE_URL,
      username: "default",
      password: "",
      database,
      retention: TEST_RETENTION,
    });
    try {
      for (const port of [collectorPort, aggregatorPort]) {
        await until(
          `port ${port} ready`,
          async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null))?.status === 200,
          60_000,
        );
      }
      let pushed = 0;
      for (let request = 0; request < 20; request++) {
        const values = Array.from({ length: 50 }, (_, i) => [
          String(T0_NS + BigInt(request * 50 + i)),
          `request ${request} line ${i}`,
        ]);
        const response = await fetch(`http://127.0.0.1:${collectorPort}/loki/api/v1/push`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-Scope-OrgID": "shop" },
          body: JSON.stringify({
            streams: [{ stream: { app: "checkout", level: request % 2 ? "info" : "warn" }, values }],
          }),
        });
        assert.equal(response.status, 204, await response.text());
        pushed += values.length;
      }
      const range = { startNs: T0_NS - 1n, endNs: T0_NS + 10_000n };
      const count = async () =>
        (
          await store.countLogs({
            tenant: "shop",
            matchers: [{ name: "app", op: "=", value: "checkout" }],
            ...range,
            stepNs: 20_000n,
          })
        ).reduce((n, s) => n + s.points[0]!.count, 0);
      await until("every pushed entry stored", async () => (await count()) >= pushed, 90_000);
      assert.equal(await count(), pushed);
      const streams = await store.series({
        tenant: "shop",
        signal: "logs",
        selectors: [],
        startMs: Number(T0_NS / 1_000_000n) - 1000,
        endMs: Number(T0_NS / 1_000_000n) + 1000,
      });
      assert.deepEqual(
        streams.map((l) => ({ ...l })),
        [
          { app: "checkout", level: "info", node: "gw-17", service_name: "checkout", site: "store-17" },
          { app: "checkout", level: "warn", node: "gw-17", service_name: "checkout", site: "store-17" },
        ],
      );
      const metrics = await (await fetch(`http://127.0.0.1:${collectorPort}/metrics`)).text();
      assert.match(metrics, new RegExp(`^bifrost_collector_entries_accepted_total\\{tenant="shop"\\} ${pushed}$`, "m"));
    } finally {
      for (const child of processes) child.kill("SIGTERM");
      await store.close();
      await deleteTopics(kafka, [topic, `${topic}.dlq`]);
    }
  });
});
