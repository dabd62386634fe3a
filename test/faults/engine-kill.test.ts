import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createClient } from "@clickhouse/client";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { type Batch, batchId } from "../../proto/batch.js";
import { encodeBatch } from "../../proto/codec.js";
import { until } from "../helpers/aggregation.js";
import { makeBatch } from "../helpers/batches.js";
import { BifrostProcess, sleep } from "../helpers/pipeline.js";
import { createTopics, freePort, privateKafka, startChdbHttp, uniqueName } from "../helpers/services.js";

// The ClickHouse engine killed with SIGKILL, again and again, while aggregator processes write a steady stream
// from Kafka into it: afterwards every batch's rows must be stored exactly once in each table that keeps them per
// batch (raw logs, raw samples, rollup partials), whatever was in flight, acknowledged or replayed at each kill.
// During each outage a third aggregator is killed too: once its session expires the group rebalances, and
// partitions move while their old owners still hold rows they could not write, which the new owners replay.
// Last, the engine is frozen (SIGSTOP) instead of killed across such a rebalance, as a stalled disk would: the
// held writes of old and new owners then reach it together.

const NODES = ["k1", "k2", "k3", "k4", "k5", "k6"];
const KILLS = Number(process.env.BIFROST_ENGINE_KILLS ?? 6);
/** How long the engine stays down after each kill: shorter and longer than the store's own retries last. */
const DOWN_MS = [300, 2_000, 9_000];
/** Then rounds with the engine frozen instead, for longer than the aggregators' session timeout (6 s). */
const FREEZES = Number(process.env.BIFROST_ENGINE_FREEZES ?? 3);
const FREEZE_MS = 10_000;
const SHAPE = { streams: 2, entriesPerStream: 15, series: 2, pointsPerSeries: 4 };

describe("ClickHouse engine killed under load", () => {
  it(`engine killed ${KILLS} times and frozen ${FREEZES} times mid-stream, each time across a rebalance: every batch stored exactly once`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-engine-kill-"));
    const t0 = Date.now();
    const progress = (message: string) =>
      process.stderr.write(`engine-kill [${((Date.now() - t0) / 1000).toFixed(1)} s] ${message}\n`);
    const chPort = await freePort();
    let [kafka, clickhouse] = await Promise.all([privateKafka(), startChdbHttp([], chPort)]);
    const client = new Kafka({ clientId: "engine-kill-test", brokers: kafka.brokers, logLevel: logLevel.NOTHING });
    const producer = client.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    const database = uniqueName("enginekill");
    const sql = createClient({ url: clickhouse.url, request_timeout: 60_000 });
    const aggregators: BifrostProcess[] = [];
    try {
      const topic = uniqueName("enginekill");
      await createTopics(client, [
        { topic, numPartitions: 6 },
        { topic: `${topic}.dlq`, numPartitions: 1 },
      ]);
      const groupId = uniqueName("enginekill-group");
      for (const name of ["aggregator-1", "aggregator-2", "aggregator-3"]) {
        const port = await freePort();
        aggregators.push(
          BifrostProcess.write(dir, name, "aggregator", `http://127.0.0.1:${port}`, {
            log: { level: "warn" },
            kafka: { brokers: kafka.brokers, topic, dead_letter_topic: `${topic}.dlq` },
            clickhouse: { url: clickhouse.url, database },
            storage: { engine: "clickhouse" },
            aggregator: {
              listen: `127.0.0.1:${port}`,
              group_id: groupId,
              workers: 1,
              session_timeout_ms: 6000,
              flush_ms: 200,
            },
          }),
        );
      }
      const [first, second, third] = aggregators as [BifrostProcess, BifrostProcess, BifrostProcess];
      first.start();
      second.start();
      await Promise.all([first.ready(), second.ready()]);
      await producer.connect();
      progress(`aggregators ${first.pid}, ${second.pid} up; logs in ${dir}`);

      // One batch per node every 100 ms, as collectors ship them, with timestamps of now.
      const sent: Batch[] = [];
      const startNs = BigInt(Date.now()) * 1_000_000n;
      let producing = true;
      const production = (async () => {
        for (let sequence = 1; producing; sequence++) {
          const batches = NODES.map((nodeId) =>
            makeBatch({ ...SHAPE, tenant: "kill-tenant", nodeId, sequence, startNs }),
          );
          await producer.send({
            topic,
            acks: -1,
            messages: batches.map((b) => ({ key: b.nodeId, value: encodeBatch(b) })),
          });
          sent.push(...batches);
          await sleep(100);
        }
      })();

      const stored = async (): Promise<number> => {
        const result = await sql.query({
          query: `SELECT uniqExact(batch_id) AS n FROM ${database}.logs`,
          format: "JSONEachRow",
        });
        return Number((await result.json<{ n: string }>())[0]!.n);
      };
      for (let round = 0; round < KILLS + FREEZES; round++) {
        await until(
          "batches stored since the last fault",
          async () => (await stored().catch(() => 0)) >= sent.length - 4 * NODES.length,
          120_000,
        );
        if (!third.running) {
          third.start();
          await third.ready();
        }
        await sleep(500 + Math.random() * 2_000);
        if (round < KILLS) {
          const downMs = DOWN_MS[round % DOWN_MS.length]!;
          progress(
            `round ${round + 1}: SIGKILL of the engine (pid ${clickhouse.process.pid}) with ${sent.length} batches sent; down for ${downMs} ms`,
          );
          await clickhouse.stop("SIGKILL");
          await third.stop("SIGKILL");
          await sleep(downMs);
          clickhouse = await startChdbHttp([], chPort, clickhouse.dataDir);
        } else {
          // Requests wait instead of failing: when the engine resumes, the writes that were held across the
          // rebalance all reach it at once.
          progress(
            `round ${round + 1}: engine (pid ${clickhouse.process.pid}) frozen with SIGSTOP for ${FREEZE_MS} ms with ${sent.length} batches sent`,
          );
          clickhouse.process.kill("SIGSTOP");
          await third.stop("SIGKILL");
          await sleep(FREEZE_MS);
          clickhouse.process.kill("SIGCONT");
        }
      }
      producing = false;
      await production;
      progress(`load stopped after ${sent.length} batches; waiting for every batch`);
      await until("every batch stored", async () => (await stored().catch(() => 0)) >= sent.length, 240_000);
      // Stopped before the count, so that nothing is written while it runs.
      await Promise.all(aggregators.map((a) => a.stop()));

      const expected = new Map(sent.map((b) => [batchId(b), b]));
      const perBatch = { logs: SHAPE.streams * SHAPE.entriesPerStream, samples: SHAPE.series * SHAPE.pointsPerSeries };
      const report: string[] = [];
      for (const [table, rows] of Object.entries(perBatch)) {
        const result = await sql.query({
          query: `SELECT batch_id, count() AS n, groupUniqArray(_part) AS parts FROM ${database}.${table} GROUP BY batch_id HAVING n != ${rows} ORDER BY batch_id`,
          format: "JSONEachRow",
        });
        const wrong = await result.json<{ batch_id: string; n: string; parts: string[] }>();
        report.push(
          `${table}: ${wrong.length} batches of ${expected.size} stored other than once${wrong.length > 0 ? `, e.g. ${JSON.stringify(wrong.slice(0, 5))}` : ""}`,
        );
      }
      const partials = await sql.query({
        query: `SELECT batch_id, count() AS n, uniqExact(fingerprint, bucket, resolution) AS keys FROM ${database}.rollup_partials GROUP BY batch_id HAVING n != keys`,
        format: "JSONEachRow",
      });
      const doubledPartials = await partials.json<{ batch_id: string }>();
      report.push(`rollup_partials: ${doubledPartials.length} batches with a partial stored twice`);
      process.stdout.write(`\n=== engine kill report ===\n${report.join("\n")}\n`);
      for (const line of report) assert.match(line, /: 0 batches/, line);
    } finally {
      producer.disconnect().catch(() => {});
      await Promise.all(aggregators.map((a) => a.stop()));
      await sql.close();
      await clickhouse.stop();
      await kafka.run("down");
    }
  });
});
