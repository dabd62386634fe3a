import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { BifrostProcess } from "./pipeline.js";
import { waitFor } from "./wait.js";
import { CLICKHOUSE_URL, createTopics, deleteTopics, freePort, KAFKA_BROKERS, uniqueName } from "./services.js";

// The two paths from a push to a store, for tests that hold every receiver to "acknowledged => stored exactly
// once" on both: `bifrost all` (in-process queue, the embedded DuckDB store) and the distributed pipeline (a
// collector shipping to Kafka, an aggregator writing to ClickHouse, a query service reading it).

export interface IngestPipeline {
  /** The collector's HTTP listener, its OTLP/gRPC address (host:port), and the query API. */
  collector: string;
  grpc: string;
  query: string;
  /** The process whose memory the collector's receivers use. */
  collectorPid: number;
  stop(): Promise<void>;
}

/** Settings both paths share: a short batch age so that what is pushed is soon shipped. */
const COLLECTOR = { batch: { max_age_ms: 100 } };

export async function allInOnePipeline(): Promise<IngestPipeline> {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-ingest-all-"));
  const [query, collector, grpc, aggregator] = await Promise.all(Array.from({ length: 4 }, freePort));
  const all = BifrostProcess.write(dir, "all", "all", `http://127.0.0.1:${collector}`, {
    log: { level: "warn" },
    all: { demo: false },
    storage: { path: join(dir, "store") },
    query: { listen: `127.0.0.1:${query}` },
    aggregator: { listen: `127.0.0.1:${aggregator}`, dead_letter_dir: join(dir, "dead-letters") },
    collector: {
      ...COLLECTOR,
      listen: `127.0.0.1:${collector}`,
      otlp: { grpc_listen: `127.0.0.1:${grpc}` },
      wal: { dir: join(dir, "wal") },
    },
  });
  all.start();
  await all.ready();
  await waitFor(
    "the query service ready",
    // Not listening yet is not ready yet.
    () =>
      fetch(`http://127.0.0.1:${query}/ready`).then(
        (r) => r.ok,
        () => false,
      ),
    120_000,
    200,
  );
  return {
    collector: all.url,
    grpc: `127.0.0.1:${grpc}`,
    query: `http://127.0.0.1:${query}`,
    collectorPid: all.pid,
    stop: () => all.stop(),
  };
}

export async function kafkaClickHousePipeline(): Promise<IngestPipeline> {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-ingest-kafka-"));
  const [query, aggregator, collector, grpc] = await Promise.all(Array.from({ length: 4 }, freePort));
  const topic = uniqueName("ingest");
  const kafka = new Kafka({ clientId: "ingest-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  await createTopics(kafka, [
    { topic, numPartitions: 2 },
    { topic: `${topic}.dlq`, numPartitions: 1 },
  ]);
  const shared = {
    log: { level: "warn" },
    kafka: { brokers: KAFKA_BROKERS, topic, dead_letter_topic: `${topic}.dlq` },
    clickhouse: { url: CLICKHOUSE_URL, database: uniqueName("ingest") },
    storage: { engine: "clickhouse" },
  };
  const processes = [
    BifrostProcess.write(dir, "query", "query", `http://127.0.0.1:${query}`, {
      ...shared,
      query: { listen: `127.0.0.1:${query}` },
    }),
    BifrostProcess.write(dir, "aggregator", "aggregator", `http://127.0.0.1:${aggregator}`, {
      ...shared,
      aggregator: {
        listen: `127.0.0.1:${aggregator}`,
        group_id: uniqueName("ingest-group"),
        workers: 1,
        flush_ms: 200,
        dead_letter_dir: join(dir, "dead-letters"),
      },
    }),
  ];
  mkdirSync(join(dir, "edge"));
  const edge = BifrostProcess.write(dir, "edge", "collector", `http://127.0.0.1:${collector}`, {
    ...shared,
    node: { id: "edge" },
    collector: {
      ...COLLECTOR,
      listen: `127.0.0.1:${collector}`,
      otlp: { grpc_listen: `127.0.0.1:${grpc}` },
      wal: { dir: join(dir, "edge", "wal") },
    },
  });
  processes.push(edge);
  for (const p of processes) p.start();
  await Promise.all(processes.map((p) => p.ready()));
  return {
    collector: edge.url,
    grpc: `127.0.0.1:${grpc}`,
    query: `http://127.0.0.1:${query}`,
    collectorPid: edge.pid,
    stop: async () => {
      await Promise.all(processes.map((p) => p.stop()));
      await deleteTopics(kafka, [topic, `${topic}.dlq`]);
    },
  };
}

/** Both paths, named as the tests name them. */
export const INGEST_PIPELINES: [string, () => Promise<IngestPipeline>][] = [
  ["bifrost all, embedded DuckDB", allInOnePipeline],
  ["collector -> Kafka -> aggregator -> ClickHouse", kafkaClickHousePipeline],
];
