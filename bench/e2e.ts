import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { encodeLogBatch } from "../storage/log-rowbinary.js";
import { until } from "../test/helpers/aggregation.js";
import { makeBatch } from "../test/helpers/batches.js";
import { BifrostProcess, countByNode, Pusher, procUsage, readAllEntries, sleep } from "../test/helpers/pipeline.js";
import {
  CLICKHOUSE_URL,
  createTopics,
  deleteTopics,
  freePort,
  KAFKA_BROKERS,
  uniqueName,
} from "../test/helpers/services.js";
import { insertRowBinarySeconds, kafkaProduceLinesPerS, scratchLogsTable } from "./ceilings.js";

// npm run bench:e2e — the whole write path as separate processes: Loki push and OTLP/HTTP -> collector (disk
// buffer) -> Kafka -> aggregator -> ClickHouse -> queryable through the query process's Loki API.
// Phase 1: PUSHERS senders push 1000-line requests (lines of 100 B) back to back for BENCH_SECONDS; the
// sustained rate is the lines acknowledged over the time until the last of them is countable through the API.
// Phase 2: half that rate, steady, plus marker lines in a stream of their own, one push at a time (at most one
// each 100 ms; a push is answered once its batch is in the disk buffer, up to collector.batch.max_age_ms), polled
// every 100 ms through query_range: the end-to-end delay is from a marker's push to the first answer holding it.
// CPU seconds and peak RSS of each process come from /proc. Beside them, the ceilings of the two services in the
// same run: kafkajs producing collector batches, and the engine inserting the same rows as the aggregator does.
// Uses the shared Kafka and ClickHouse (a topic and database of its own), which it does not stop.
// Prints one JSON line; progress goes to stderr.

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
// Each sender waits for its answer, which comes once its lines are in the disk buffer (up to the batch age),
// so a handful of senders measures the senders; edge fleets are many clients at once.
const PUSHERS = Number(process.env.BENCH_PUSHERS ?? 48);
const LINES_PER_PUSH = 1000;
const NODE = "bench-edge";

const progress = (message: string) => process.stderr.write(`e2e bench: ${message}\n`);

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

const dir = mkdtempSync(join(tmpdir(), "bifrost-bench-e2e-"));
const kafka = new Kafka({ clientId: "bifrost-bench-e2e", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
const topic = uniqueName("bench_e2e");
const database = uniqueName("bench_e2e");
await createTopics(kafka, [
  { topic, numPartitions: 6 },
  { topic: `${topic}.dlq`, numPartitions: 1 },
]);
const shared = {
  log: { level: "warn" },
  kafka: { brokers: KAFKA_BROKERS, topic, dead_letter_topic: `${topic}.dlq` },
  clickhouse: { url: CLICKHOUSE_URL, database },
  storage: { engine: "clickhouse" },
};
const [queryPort, aggregatorPort, collectorPort, grpcPort] = [
  await freePort(),
  await freePort(),
  await freePort(),
  await freePort(),
];
const query = BifrostProcess.write(dir, "query", "query", `http://127.0.0.1:${queryPort}`, {
  ...shared,
  query: { listen: `127.0.0.1:${queryPort}` },
});
const aggregator = BifrostProcess.write(dir, "aggregator", "aggregator", `http://127.0.0.1:${aggregatorPort}`, {
  ...shared,
  aggregator: { listen: `127.0.0.1:${aggregatorPort}`, group_id: uniqueName("bench-e2e") },
});
const collector = BifrostProcess.write(dir, "collector", "collector", `http://127.0.0.1:${collectorPort}`, {
  ...shared,
  node: { id: NODE },
  collector: {
    listen: `127.0.0.1:${collectorPort}`,
    otlp: { grpc_listen: `127.0.0.1:${grpcPort}` },
    wal: { dir: join(dir, "wal") },
  },
});
const processes = [collector, aggregator, query];
for (const p of processes) p.start();

try {
  await Promise.all(processes.map((p) => p.ready()));
  progress(`pipeline up (logs in ${dir}); phase 1: ${PUSHERS} senders back to back for ${SECONDS} s`);

  const usage0 = new Map(processes.map((p) => [p.name, p.usage().cpu_s]));
  const t0 = performance.now();
  const saturating = Array.from({ length: PUSHERS }, (_, i) =>
    new Pusher(`s${i}`, collector.url, {
      entriesPerPush: LINES_PER_PUSH,
      intervalMs: 0,
      lineBytes: 100,
      keep: false,
    }).start(),
  );
  await sleep(SECONDS * 1000);
  await Promise.all(saturating.map((p) => p.stop()));
  const pushed = saturating.reduce((n, p) => n + p.stats.acceptedEntries, 0);
  const pushSeconds = (performance.now() - t0) / 1000;
  progress(`phase 1: ${pushed} lines acknowledged in ${pushSeconds.toFixed(1)} s; waiting until all are queryable`);
  await until(
    "every acknowledged line countable",
    async () => ((await countByNode(query.url)).get(NODE) ?? 0) >= pushed,
    600_000,
  );
  const queryableSeconds = (performance.now() - t0) / 1000;
  const sustained = Math.round(pushed / queryableSeconds);
  const phase1Cpu = Object.fromEntries(
    processes.map((p) => [p.name, Number(((p.usage().cpu_s - usage0.get(p.name)!) / queryableSeconds).toFixed(2))]),
  );

  // Phase 2: half the sustained rate in steady requests, and markers whose delay is measured.
  const steadyPushers = 2;
  const intervalMs = Math.max(1, Math.round((steadyPushers * LINES_PER_PUSH * 1000) / Math.max(1, sustained / 2)));
  progress(
    `phase 2: ${Math.round(sustained / 2)} lines/s steady (${steadyPushers} senders, one request each ${intervalMs} ms), and markers`,
  );
  const steady = Array.from({ length: steadyPushers }, (_, i) =>
    new Pusher(`d${i}`, collector.url, {
      entriesPerPush: LINES_PER_PUSH,
      intervalMs,
      lineBytes: 100,
      keep: false,
    }).start(),
  );
  const sentAt = new Map<string, number>();
  const markerStartNs = BigInt(Date.now() - 1000) * 1_000_000n;
  const markers = new Pusher("marker", collector.url, {
    entriesPerPush: 1,
    intervalMs: 100,
    kinds: ["loki-protobuf"],
    labels: { app: "marker" },
    onAcked: (entries, at) => sentAt.set(entries[0]!.line, at),
  }).start();
  const seenAt = new Map<string, number>();
  let polling = true;
  const poller = (async () => {
    while (polling || seenAt.size < sentAt.size) {
      const found = await readAllEntries(
        query.url,
        '{app="marker"}',
        markerStartNs,
        BigInt(Date.now() + 60_000) * 1_000_000n,
      ).catch(() => []);
      const now = Date.now();
      for (const e of found) if (!seenAt.has(e.line)) seenAt.set(e.line, now);
      await sleep(100);
    }
  })();
  await sleep(SECONDS * 1000);
  await Promise.all([...steady, markers].map((p) => p.stop()));
  progress(`phase 2: ${sentAt.size} markers sent; waiting until all are seen`);
  await until("every marker seen", () => [...sentAt.keys()].every((line) => seenAt.has(line)), 300_000);
  polling = false;
  await poller;
  const delays = [...sentAt].map(([line, at]) => seenAt.get(line)! - at).sort((a, b) => a - b);
  const usage = Object.fromEntries(
    processes.map((p) => [p.name, { ...p.usage(), cpu_cores_phase1: phase1Cpu[p.name] }]),
  );
  const loadgen = procUsage(process.pid);

  progress("ceilings: kafkajs produce, engine insert");
  // Batches of the size the collector ships and the aggregator writes (about 1 MiB), not of one push.
  const ceilingLines = 10 * LINES_PER_PUSH;
  const batches = Array.from({ length: 10 }, (_, i) =>
    makeBatch({
      tenant: "fake",
      nodeId: NODE,
      sequence: i + 1,
      streams: 1,
      entriesPerStream: ceilingLines,
      lineBytes: 100,
      series: 0,
    }),
  );
  const kafkaLimit = await kafkaProduceLinesPerS(kafka, topic, batches, 5);
  const scratch = await scratchLogsTable(CLICKHOUSE_URL);
  const bodies = batches.map((b, i) => encodeLogBatch({ id: `raw-${i}`, tenant: b.tenant, streams: b.streams }).buffer);
  const engineSeconds = await insertRowBinarySeconds(CLICKHOUSE_URL, scratch.table, [...bodies, ...bodies, ...bodies]);
  await scratch.drop();
  const engineLimit = Math.round((3 * batches.length * ceilingLines) / engineSeconds);

  process.stdout.write(
    JSON.stringify({
      bench: "e2e",
      path: "loki push + otlp/http -> collector -> kafka -> aggregator -> clickhouse -> loki query_range",
      phase1_seconds_pushing: Number(pushSeconds.toFixed(1)),
      phase1_lines_acknowledged: pushed,
      acknowledged_lines_per_s: Math.round(pushed / pushSeconds),
      sustained_queryable_lines_per_s: sustained,
      phase2_lines_per_s: Math.round(sustained / 2),
      markers: delays.length,
      delay_push_to_queryable_ms: {
        p50: quantile(delays, 0.5),
        p99: quantile(delays, 0.99),
        max: delays[delays.length - 1] ?? NaN,
      },
      processes: { ...usage, loadgen },
      limit_kafkajs_produce_lines_per_s: kafkaLimit,
      limit_engine_insert_lines_per_s: engineLimit,
      sustained_vs_engine_limit: Number((sustained / engineLimit).toFixed(3)),
      shared_services: true,
      node: process.version,
    }) + "\n",
  );
} finally {
  await Promise.all(processes.map((p) => p.stop()));
  await deleteTopics(kafka, [topic, `${topic}.dlq`]).catch(() => {});
  await fetch(`${CLICKHOUSE_URL}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${database}`)}`, {
    method: "POST",
  }).then(
    (r) => r.arrayBuffer(),
    () => undefined,
  );
}
