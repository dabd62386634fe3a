import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createClient } from "@clickhouse/client";
import { DuckDBInstance } from "@duckdb/node-api";
import { Kafka, logLevel } from "kafkajs";
import { Registry } from "prom-client";
import { type Batch, batchId } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { decodeBatch, encodeBatch } from "../proto/codec.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DUCKDB_MIGRATIONS } from "../storage/duckdb-schema.js";
import { counterTotal, startTestAggregator, until } from "./helpers/aggregation.js";
import { makeBatch } from "./helpers/batches.js";
import { runBifrost, stopChild, waitForReady } from "./helpers/processes.js";
import { createTopics, deleteTopics, freePort, KAFKA_BROKERS, startChdbHttp, uniqueName } from "./helpers/services.js";
import { T0_NS, TEST_RETENTION } from "./helpers/store-contract.js";

// One row the store refuses for good (here: a CHECK constraint an operator put on the log table, which the real
// engine enforces) among good rows of several tenants: the good rows are stored, the refused row goes to the dead
// letters with the store's reason and is counted, and nothing stays blocked, after a restart neither.

const TENANTS = ["alpha", "beta", "gamma"];
const POISON = "POISON pill";

async function metric(url: string, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match?.[1] === name && (match[2] ?? "").includes(labels)) total += Number(match[3]);
  }
  return total;
}

describe("poison isolation in bifrost all (embedded DuckDB, in-process transport)", () => {
  it("stores every tenant's good lines, dead-letters the line the store refuses with its reason, and is not blocked again after a restart", async () => {
    const data = mkdtempSync(join(tmpdir(), "bifrost-poison-"));
    // The log table as the store's first migration makes it, with the operator's constraint; the migration's
    // CREATE TABLE IF NOT EXISTS keeps it.
    const ddl = DUCKDB_MIGRATIONS[0]!.statements[0]!;
    assert.match(ddl, /^CREATE TABLE IF NOT EXISTS logs \([\s\S]*\n\)$/);
    const instance = await DuckDBInstance.create(join(data, "bifrost.duckdb"));
    const connection = await instance.connect();
    await connection.run(ddl.replace(/\n\)$/, `,\n  CHECK (line NOT LIKE '%POISON%')\n)`));
    connection.closeSync();
    instance.closeSync();

    const [query, collector, grpc, aggregator] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const collectorUrl = `http://127.0.0.1:${collector}`;
    const queryUrl = `http://127.0.0.1:${query}`;
    const aggregatorUrl = `http://127.0.0.1:${aggregator}`;
    const env = {
      BIFROST_LOG__LEVEL: "warn",
      BIFROST_STORAGE__PATH: data,
      BIFROST_COLLECTOR__WAL__DIR: join(data, "wal"),
      BIFROST_COLLECTOR__BATCH__MAX_AGE_MS: "50",
      BIFROST_AGGREGATOR__DEAD_LETTER_DIR: join(data, "dead-letters"),
      BIFROST_QUERY__LISTEN: `127.0.0.1:${query}`,
      BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${collector}`,
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${grpc}`,
      BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${aggregator}`,
    };
    const start = async () => {
      const child = runBifrost(["all"], env);
      child.stdout!.resume();
      child.stderr!.resume();
      for (const url of [collectorUrl, queryUrl]) await waitForReady(`${url}/ready`, child, 200, 120_000);
      return child;
    };
    const expected = new Map<string, string[]>(TENANTS.map((t) => [t, []]));
    let sent = 0;
    /** One push per tenant, sent back to back so that the shipper writes them together; `poisoned` adds the poison line. */
    const pushRound = async (poisoned: string) => {
      for (const tenant of TENANTS) {
        const lines = Array.from({ length: 10 }, (_, i) => `${tenant} line ${sent + i}`);
        if (tenant === poisoned) lines.splice(5, 0, POISON);
        const now = BigInt(Date.now()) * 1_000_000n;
        const response = await fetch(`${collectorUrl}/loki/api/v1/push`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-Scope-OrgID": tenant },
          body: JSON.stringify({
            streams: [
              { stream: { job: "poison-test" }, values: lines.map((line, i) => [String(now + BigInt(i)), line]) },
            ],
          }),
        });
        assert.equal(response.status, 204, await response.text());
        expected.get(tenant)!.push(...lines.filter((line) => line !== POISON));
      }
      sent += 10;
    };
    const stored = async (tenant: string) => {
      const params = new URLSearchParams({
        query: '{job="poison-test"}',
        start: String(BigInt(Date.now() - 3_600_000) * 1_000_000n),
        end: String(BigInt(Date.now() + 60_000) * 1_000_000n),
        limit: "5000",
        direction: "forward",
      });
      const response = await fetch(`${queryUrl}/loki/api/v1/query_range?${params}`, {
        headers: { "X-Scope-OrgID": tenant },
      });
      assert.equal(response.status, 200);
      const body = (await response.json()) as { data: { result: { values: [string, string][] }[] } };
      return body.data.result.flatMap((s) => s.values.map(([, line]) => line)).sort();
    };
    const allStored = async () => {
      for (const tenant of TENANTS) if ((await stored(tenant)).length < expected.get(tenant)!.length) return false;
      return true;
    };
    const letters = () =>
      readFileSync(join(data, "dead-letters", "batches.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map(
          (line) =>
            JSON.parse(line) as {
              reason: string;
              error: string;
              tenant: string;
              batch_id: string;
              streams: { stream: Record<string, string>; values: string[][] }[];
            },
        );

    let child: ChildProcess = await start();
    try {
      await pushRound("beta");
      await until("every tenant's good lines queryable", allStored, 60_000);
      for (const tenant of TENANTS) assert.deepEqual(await stored(tenant), expected.get(tenant)!.sort(), tenant);
      // One letter: the log line about it, stored as `bifrost all` stores its own logs, is not refused in turn.
      const [first, ...others] = letters();
      assert.deepEqual(others, []);
      assert.equal(first!.reason, "store_rejected");
      assert.match(first!.error, /CHECK constraint failed/);
      assert.equal(first!.tenant, "beta");
      assert.match(
        first!.batch_id,
        /^beta\/.+~[ab]+(@[\w-]+)?:\d+$/,
        "the refused row is a piece of its batch, under an id of its own",
      );
      assert.deepEqual(
        first!.streams.map((s) => [s.stream.job, s.values.map((v) => v[1])]),
        [["poison-test", [POISON]]],
      );
      // Each listener of `bifrost all` serves its own component's metrics; the dead letters are counted once over all.
      let deadLetters = 0;
      for (const url of [collectorUrl, aggregatorUrl, queryUrl])
        deadLetters += await metric(url, "bifrost_aggregator_dead_letters_total", 'reason="store_rejected"');
      assert.equal(deadLetters, 1);

      // A restart finds nothing left to retry; what comes after, poisoned again, is stored around the poison.
      assert.equal(await stopChild(child), 0);
      child = await start();
      await pushRound("gamma");
      await until("the second round's good lines queryable", allStored, 60_000);
      for (const tenant of TENANTS) assert.deepEqual(await stored(tenant), expected.get(tenant)!.sort(), tenant);
      assert.deepEqual(
        letters().map((l) => [l.reason, l.tenant, l.streams.flatMap((s) => s.values.map((v) => v[1]))]),
        [
          ["store_rejected", "beta", [POISON]],
          ["store_rejected", "gamma", [POISON]],
        ],
      );
    } finally {
      await stopChild(child);
    }
  });
});

describe("poison isolation on Kafka + ClickHouse", () => {
  it("stores every tenant's good rows, sends refused and invalid rows to the dead-letter topic with their reasons, and a replay changes no count", async () => {
    // An engine of the test's own: the test puts constraints on its tables.
    const chdb = await startChdbHttp();
    const database = uniqueName("poison");
    const topic = uniqueName("poison");
    const kafka = new Kafka({ clientId: "bifrost-poison-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    const store = new ClickHouseStore({
      url: chdb.url,
      username: "default",
      password: "",
      database,
      retention: TEST_RETENTION,
    });
    const sql = createClient({ url: chdb.url });
    const running: Awaited<ReturnType<typeof startTestAggregator>>[] = [];
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    try {
      await store.migrate();
      await sql.command({
        query: `ALTER TABLE ${database}.logs ADD CONSTRAINT poison CHECK positionCaseInsensitive(line, 'POISON') = 0`,
      });
      await sql.command({ query: `ALTER TABLE ${database}.samples ADD CONSTRAINT poison CHECK value != -666` });
      await createTopics(kafka, [
        { topic, numPartitions: 1 },
        { topic: `${topic}.dlq`, numPartitions: 1 },
      ]);
      await producer.connect();

      const batches: Batch[] = TENANTS.map((tenant) =>
        makeBatch({ tenant, nodeId: `edge-${tenant}`, streams: 2, entriesPerStream: 10, series: 2, startNs: T0_NS }),
      );
      const beta = batches[1]!;
      beta.streams[0]!.entries[3]!.line = POISON;
      beta.series[1]!.points[4]!.value = -666;
      // From a sender that does not check times (an older collector): refused by the aggregator's limits.
      beta.streams[1]!.entries.push({
        timeUnixNano: 9_999_999_999_999_999_999n,
        line: "from the far future",
        metadata: labelsOf([]),
      });
      // A batch after them in the same partition: nothing holds it back.
      batches.push(
        makeBatch({ tenant: "alpha", nodeId: "edge-alpha", sequence: 2, streams: 2, series: 2, startNs: T0_NS }),
      );
      await producer.send({
        topic,
        acks: -1,
        messages: batches.map((b) => ({ key: b.nodeId, value: encodeBatch(b) })),
      });

      const registry = new Registry();
      const aggregate = async (groupId: string, registry: Registry) => {
        running.push(
          await startTestAggregator({ kafka, topic, groupId, store, registry, maxBatchBytes: 1 << 20, workers: 1 }),
        );
        await until(
          "every batch handled",
          async () => (await counterTotal(registry, "bifrost_aggregator_batches_total")) >= batches.length,
          90_000,
        );
      };
      const counts = async () => {
        const result = await sql.query({
          query: `SELECT * FROM (
                    SELECT 'logs' AS t, tenant, count() AS n FROM ${database}.logs GROUP BY tenant
                    UNION ALL SELECT 'samples' AS t, tenant, count() AS n FROM ${database}.samples GROUP BY tenant
                  ) ORDER BY t, tenant`,
          format: "JSONEachRow",
        });
        return (await result.json<{ t: string; tenant: string; n: string }>()).map((r) => `${r.t} ${r.tenant} ${r.n}`);
      };
      await aggregate(uniqueName("poison-group"), registry);
      const expected = [
        "logs alpha 40",
        "logs beta 19",
        "logs gamma 20",
        "samples alpha 40",
        "samples beta 19",
        "samples gamma 20",
      ];
      assert.deepEqual(await counts(), expected);
      const poisonLine = await sql.query({
        query: `SELECT toString(count()) AS n FROM ${database}.logs WHERE line = {line:String}`,
        query_params: { line: POISON },
        format: "JSONEachRow",
      });
      assert.deepEqual(await poisonLine.json(), [{ n: "0" }]);

      const consumer = kafka.consumer({ groupId: uniqueName("poison-dlq") });
      const letters: { reason: string; error: string; batch: Batch }[] = [];
      await consumer.connect();
      await consumer.subscribe({ topic: `${topic}.dlq`, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          letters.push({
            reason: String(message.headers?.["bifrost-error-reason"]),
            error: String(message.headers?.["bifrost-error"]),
            batch: decodeBatch(message.value!, { maxBatchBytes: 1 << 20 }),
          });
        },
      });
      try {
        await until("three dead letters", () => letters.length >= 3, 60_000);
      } finally {
        await consumer.disconnect();
      }
      const summary = letters
        .map(
          ({ reason, batch }) =>
            `${reason} ${batch.tenant} ${batch.streams.flatMap((s) => s.entries.map((e) => e.line)).join("|")}` +
            `${batch.series.flatMap((s) => s.points.map((p) => p.value)).join("|")}`,
        )
        .sort();
      assert.deepEqual(summary, [
        "store_rejected beta -666",
        `store_rejected beta ${POISON}`,
        "timestamp_out_of_range beta from the far future",
      ]);
      for (const letter of letters) {
        assert.equal(letter.batch.nodeId.split("~")[0], "edge-beta");
        assert.notEqual(batchId(letter.batch), batchId(beta), "the refused rows are a batch of their own");
        if (letter.reason === "store_rejected") assert.match(letter.error, /VIOLATED_CONSTRAINT|Constraint `poison`/);
      }
      assert.equal(await counterTotal(registry, "bifrost_aggregator_dead_letters_total"), 3);

      // Another group reads the topic again (as after a lost commit): the same pieces, found stored.
      await aggregate(uniqueName("poison-replay"), new Registry());
      assert.deepEqual(await counts(), expected);
    } finally {
      for (const r of running) await r.stop();
      await producer.disconnect();
      await deleteTopics(kafka, [topic, `${topic}.dlq`]);
      await sql.close();
      await store.close();
      await chdb.stop();
    }
  });
});
