import type { Kafka } from "kafkajs";
import { Partitioners } from "kafkajs";
import type { Batch } from "../proto/batch.js";
import { encodeBatch } from "../proto/codec.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { LOG_COLUMNS } from "../storage/log-rowbinary.js";

// Ceilings of this machine that benchmarks print beside their figures: what Kafka and the ClickHouse engine take
// when nothing of Bifrost stands in between.

const retention = { logs_days: 30, samples_days: 30, rollups_1m_days: 90, rollups_1h_days: 400 };

/** A logs table of Bifrost's schema in a database of its own, for raw inserts; `drop` removes the database. */
export async function scratchLogsTable(url: string): Promise<{ table: string; drop(): Promise<void> }> {
  const database = `bench_raw_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const store = new ClickHouseStore({ url, username: "default", password: "", database, retention });
  await store.migrate();
  await store.close();
  return {
    table: `${database}.logs`,
    drop: async () => {
      const response = await fetch(`${url}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${database}`)}`, {
        method: "POST",
      });
      await response.arrayBuffer();
    },
  };
}

/** Seconds the engine takes for the RowBinary log rows in `bodies`, one insert each, one after the other. */
export async function insertRowBinarySeconds(url: string, table: string, bodies: Uint8Array[]): Promise<number> {
  const query = `INSERT INTO ${table} (${LOG_COLUMNS.join(", ")}) FORMAT RowBinary`;
  const t0 = performance.now();
  for (const body of bodies) {
    const response = await fetch(`${url}/?query=${encodeURIComponent(query)}`, { method: "POST", body });
    if (!response.ok) throw new Error(`raw insert failed: ${await response.text()}`);
    await response.arrayBuffer();
  }
  return (performance.now() - t0) / 1000;
}

/** Log lines per second kafkajs produces (acks from all replicas, one request in flight) as collector batches to `topic`, for `seconds`. */
export async function kafkaProduceLinesPerS(
  kafka: Kafka,
  topic: string,
  batches: Batch[],
  seconds: number,
): Promise<number> {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const messages = batches.map((b) => ({ key: b.nodeId, value: encodeBatch(b) }));
  const linesPerRound = batches.reduce((n, b) => n + b.streams.reduce((m, s) => m + s.entries.length, 0), 0);
  let lines = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await producer.send({ topic, acks: -1, messages });
    lines += linesPerRound;
  }
  const elapsed = (performance.now() - t0) / 1000;
  await producer.disconnect();
  return Math.round(lines / elapsed);
}
