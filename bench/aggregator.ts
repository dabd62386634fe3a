import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { createClient } from "@clickhouse/client";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { Piscina } from "piscina";
import { Registry } from "prom-client";
import { GroupConsumer } from "../aggregator/consumer.js";
import { KafkaDeadLetters } from "../aggregator/dead-letters.js";
import { aggregatorMetrics } from "../aggregator/metrics.js";
import { createLogger } from "../common/log.js";
import { encodeBatch } from "../proto/codec.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { encodeLogBatch } from "../storage/log-rowbinary.js";
import { counterTotal } from "../test/helpers/aggregation.js";
import { makeBatch } from "../test/helpers/batches.js";
import { startChdbHttp } from "../test/helpers/services.js";
import { insertRowBinarySeconds, scratchLogsTable } from "./ceilings.js";

// npm run bench:aggregator — sustained throughput from Kafka into ClickHouse through the aggregator (consumer
// group, piscina workers, idempotent store writes, offset commits) with 1 and 2 workers, on a topic filled
// beforehand with BENCH_BATCHES collector batches of 10k log lines (200 B) and 1000 samples each. Beside it,
// in the same run, the two ceilings of this machine: kafkajs reading the same topic without processing, and
// the engine taking the same log rows as the aggregator's RowBinary inserts, nothing else. CPU is this process (main and worker
// threads) plus the ClickHouse engine process, a private chDB front end started for the bench, so that other
// users of the shared one neither disturb the figures nor see the schema. After each run, the cost of a Loki
// line filter for a rare token over all the lines written. Prints one JSON line; progress goes to stderr.

const BATCHES = Number(process.env.BENCH_BATCHES ?? 100);
const LINES_PER_BATCH = 10_000;
const SAMPLES_PER_BATCH = 1_000;
/** Batches per store write with the aggregator's default flush of 50k rows. */
const FLUSH_BATCHES = 5;
const KAFKA_BROKERS = (process.env.BIFROST_TEST_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const retention = { logs_days: 30, samples_days: 30, rollups_1m_days: 90, rollups_1h_days: 400 };
const START_NS = BigInt(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 6 * 3_600_000) * 1_000_000n;

const progress = (message: string) => process.stderr.write(`aggregator bench: ${message}\n`);
const kafka = new Kafka({ clientId: "bifrost-bench", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });

const engine = await startChdbHttp();
const CLICKHOUSE_URL = engine.url;

/** CPU seconds used so far by the engine process. */
function engineCpuSeconds(): number {
  const fields = readFileSync(`/proc/${engine.process.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function processCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** Batch i of the topic; made when needed, so that the bench holds no decoded batches while the aggregator runs. */
function batch(i: number) {
  return makeBatch({
    tenant: "bench",
    nodeId: `edge-${i % 12}`,
    sequence: Math.floor(i / 12) + 1,
    streams: 20,
    entriesPerStream: LINES_PER_BATCH / 20,
    lineBytes: 200,
    series: 20,
    pointsPerSeries: SAMPLES_PER_BATCH / 20,
    startNs: START_NS,
  });
}

async function fillTopic(topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [
      { topic, numPartitions: 6 },
      { topic: `${topic}.dlq`, numPartitions: 1 },
    ],
    waitForLeaders: true,
  });
  await admin.disconnect();
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  for (let i = 0; i < BATCHES; i += 10) {
    const messages = Array.from({ length: Math.min(10, BATCHES - i) }, (_, k) => batch(i + k)).map((b) => ({
      key: b.nodeId,
      value: encodeBatch(b),
    }));
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();
}

async function runAggregator(topic: string, workers: number) {
  const database = `bench_agg_${Date.now()}`;
  const store = new ClickHouseStore({ url: CLICKHOUSE_URL, username: "default", password: "", database, retention });
  await store.migrate();
  const registry = new Registry();
  const pool = new Piscina({
    filename: new URL("../aggregator/worker.js", import.meta.url).href,
    minThreads: workers,
    maxThreads: workers,
  });
  const deadLetters = new KafkaDeadLetters(kafka, `${topic}.dlq`);
  const aggregator = new GroupConsumer({
    kafka,
    topic,
    deadLetters,
    groupId: `bench-${workers}-${Date.now()}`,
    store,
    pool,
    maxBatchBytes: 16 << 20,
    limits: { max_labels: 30, max_label_name_bytes: 1024, max_label_value_bytes: 2048, max_line_bytes: 262144 },
    partitionsConcurrently: 6,
    metrics: aggregatorMetrics(registry),
    log: createLogger("warn"),
  });
  const [cpu0, engine0, t0] = [processCpuSeconds(), engineCpuSeconds(), performance.now()];
  await aggregator.start();
  while ((await counterTotal(registry, "bifrost_aggregator_batches_total")) < BATCHES) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const seconds = (performance.now() - t0) / 1000;
  const engineCpu = engineCpuSeconds() - engine0;
  const cpu = processCpuSeconds() - cpu0 + engineCpu;
  await aggregator.stop();
  await deadLetters.close();
  // After the stop: a batch is counted before its offsets are committed and its partition's lag is set.
  const lag = await counterTotal(registry, "bifrost_aggregator_consumer_lag");
  const lines = await counterTotal(registry, "bifrost_aggregator_rows_written_total");
  await pool.destroy();
  const filter = await lineFilterSeconds(store);
  await store.close();
  const admin = createClient({ url: CLICKHOUSE_URL });
  await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await admin.close();
  const rows = BATCHES * (LINES_PER_BATCH + SAMPLES_PER_BATCH);
  progress(
    `${workers} worker(s): ${BATCHES} batches in ${seconds.toFixed(1)} s, ${Math.round((BATCHES * LINES_PER_BATCH) / seconds)} lines/s`,
  );
  return {
    seconds: Number(seconds.toFixed(2)),
    lines_per_s: Math.round((BATCHES * LINES_PER_BATCH) / seconds),
    samples_per_s: Math.round((BATCHES * SAMPLES_PER_BATCH) / seconds),
    cpu_seconds_per_million_rows: Number(((cpu / rows) * 1e6).toFixed(2)),
    node_cpu_seconds_per_million_rows: Number((((cpu - engineCpu) / rows) * 1e6).toFixed(2)),
    engine_cpu_seconds_per_million_rows: Number(((engineCpu / rows) * 1e6).toFixed(2)),
    // What the CPU cost allows when the aggregator and the engine have this machine's two cores to themselves.
    lines_per_s_on_two_idle_cores: Math.round((2 / cpu) * BATCHES * LINES_PER_BATCH),
    consumer_lag_at_end: lag,
    rows_written: lines,
    line_filter_query_ms: Math.round(filter.seconds * 1000),
    line_filter_matches: filter.matches,
  };
}

/** A trace id that occurs once among all the lines: what a needle-in-a-haystack `|=` filter looks for. */
const RARE = /trace_id=(\w+)/.exec(batch(Math.floor(BATCHES / 2)).streams[7]!.entries[123]!.line)![1]!;

/** The best of three runs of `{service=~".+"} |= RARE` over everything written, as the query service would read it. */
async function lineFilterSeconds(store: ClickHouseStore): Promise<{ seconds: number; matches: number }> {
  let best = Infinity;
  let matches = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const streams = await store.selectLogs({
      tenant: "bench",
      matchers: [{ name: "service", op: "=~", value: ".+" }],
      startNs: START_NS,
      endNs: START_NS + 86_400_000_000_000n,
      lineFilters: [{ op: "|=", values: [RARE] }],
      limit: 100,
      direction: "backward",
    });
    best = Math.min(best, (performance.now() - t0) / 1000);
    matches = streams.reduce((n, s) => n + s.entries.length, 0);
  }
  return { seconds: best, matches };
}

/** Ceiling 1: kafkajs fetching every message of the topic, doing nothing with them. */
async function rawConsume(topic: string): Promise<number> {
  const consumer = kafka.consumer({ groupId: `bench-raw-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        seen += batch.messages.length;
        if (seen >= BATCHES) resolve();
      },
    });
  });
  const seconds = (performance.now() - t0) / 1000;
  await consumer.disconnect();
  return Math.round((BATCHES * LINES_PER_BATCH) / seconds);
}

/**
 * Ceiling 2: the engine taking the log rows as the aggregator sends them (RowBinary, the rows of FLUSH_BATCHES
 * batches per insert, as one default flush holds), nothing else.
 */
async function rawInsert(): Promise<{ lines_per_s: number; cpu_seconds_per_million_rows: number }> {
  const scratch = await scratchLogsTable(CLICKHOUSE_URL);
  const bodies = Array.from({ length: Math.ceil(Math.min(BATCHES, 30) / FLUSH_BATCHES) }, (_, k) =>
    Buffer.concat(
      Array.from({ length: FLUSH_BATCHES }, (_, j) => {
        const b = batch(k * FLUSH_BATCHES + j);
        return encodeLogBatch({ id: `raw-${k * FLUSH_BATCHES + j}`, tenant: b.tenant, streams: b.streams }).buffer;
      }),
    ),
  );
  const engine0 = engineCpuSeconds();
  const seconds = await insertRowBinarySeconds(CLICKHOUSE_URL, scratch.table, bodies);
  const cpu = engineCpuSeconds() - engine0;
  await scratch.drop();
  const rows = bodies.length * FLUSH_BATCHES * LINES_PER_BATCH;
  return {
    lines_per_s: Math.round(rows / seconds),
    cpu_seconds_per_million_rows: Number(((cpu / rows) * 1e6).toFixed(2)),
  };
}

const loadBefore = loadavg()[0]!;
const topic = `bench_agg_${Date.now()}`;
progress(`producing ${BATCHES} batches (${(BATCHES * LINES_PER_BATCH).toLocaleString()} lines) to ${topic}`);
await fillTopic(topic);
const one = await runAggregator(topic, 1);
const two = await runAggregator(topic, 2);
const kafkaCeiling = await rawConsume(topic);
const engineCeiling = await rawInsert();
const admin = kafka.admin();
await admin.connect();
await admin.deleteTopics({ topics: [topic, `${topic}.dlq`] });
await admin.disconnect();
await engine.stop();
progress(`ceilings: kafkajs fetch ${kafkaCeiling} lines/s, engine insert ${engineCeiling.lines_per_s} lines/s`);
process.stdout.write(
  JSON.stringify({
    bench: "aggregator",
    batches: BATCHES,
    lines: BATCHES * LINES_PER_BATCH,
    samples: BATCHES * SAMPLES_PER_BATCH,
    workers_1: one,
    workers_2: two,
    limit_kafka_fetch_lines_per_s: kafkaCeiling,
    limit_engine_insert_lines_per_s: engineCeiling.lines_per_s,
    limit_engine_insert_cpu_seconds_per_million_rows: engineCeiling.cpu_seconds_per_million_rows,
    best_vs_engine_limit: Number((Math.max(one.lines_per_s, two.lines_per_s) / engineCeiling.lines_per_s).toFixed(2)),
    target_lines_per_s: 100_000,
    // Other users of this machine slow the lines/s figures; the CPU seconds per row hold.
    load_average_1m: { before: loadBefore, after: loadavg()[0]!, cores: cpus().length },
    node: process.version,
  }) + "\n",
);
