import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { SampleKind, type Series } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { LogBatch, SampleBatch, Store } from "../storage/store.js";
import { makeBatch } from "../test/helpers/batches.js";

// npm run bench:store — the two Store implementations side by side in one run: insert rows/s for logs and
// samples in 10k-row batches, then `count by stream per minute` (countLogs, step 1m) over all log rows
// (BENCH_LOG_ROWS, default 10M). ClickHouse is the engine started by deploy/local/services.sh (chDB behind
// its HTTP front end, so insert figures include that Python hop); the embedded store is DuckDB in-process.
// Prints one JSON line; progress goes to stderr.

const LOG_ROWS = Number(process.env.BENCH_LOG_ROWS ?? 10_000_000);
const SAMPLE_ROWS = Number(process.env.BENCH_SAMPLE_ROWS ?? 1_000_000);
const BATCH_ROWS = 10_000;
const STREAMS_PER_BATCH = 20;
const QUERY_RUNS = Number(process.env.BENCH_QUERY_RUNS ?? 3);
const CLICKHOUSE_URL = process.env.BIFROST_TEST_CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
const retention = { logs_days: 30, samples_days: 30, rollups_1m_days: 90, rollups_1h_days: 400 };
const START_MS = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 24 * 3_600_000;

function progress(message: string): void {
  process.stderr.write(`store bench: ${message}\n`);
}

/** 10k log rows: 20 streams (nodes x services) of 500 lines of 100 bytes, one second apart per stream. */
function logBatch(index: number): LogBatch {
  const batch = makeBatch({
    nodeId: `edge-${index % 50}`,
    sequence: index + 1,
    streams: STREAMS_PER_BATCH,
    entriesPerStream: BATCH_ROWS / STREAMS_PER_BATCH,
    lineBytes: 100,
    series: 0,
  });
  const base = BigInt(START_MS) * 1_000_000n + BigInt(Math.floor(index / 50)) * 500_000_000_000n;
  for (const stream of batch.streams)
    stream.entries.forEach((entry, i) => (entry.timeUnixNano = base + BigInt(i) * 1_000_000_000n));
  return { id: `edge-${index % 50}:${index + 1}`, tenant: "bench", streams: batch.streams };
}

/** 10k samples: 100 series of 100 points 15 s apart. */
function sampleBatch(index: number): SampleBatch {
  const series: Series[] = Array.from({ length: 100 }, (_, s) => ({
    name: s % 2 === 0 ? "node_cpu_seconds_total" : "node_memory_available_bytes",
    labels: labelsOf([
      ["node", `edge-${index % 50}`],
      ["cpu", String(s)],
    ]),
    kind: s % 2 === 0 ? SampleKind.Counter : SampleKind.Gauge,
    points: Array.from({ length: 100 }, (_, p) => ({
      timeUnixMs: START_MS + Math.floor(index / 50) * 1_500_000 + p * 15_000,
      value: index * 100 + p,
    })),
  }));
  return { id: `edge-${index % 50}:s${index + 1}`, tenant: "bench", series };
}

async function timed<T>(run: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const result = await run();
  return [result, (performance.now() - t0) / 1000];
}

async function measure(name: string, store: Store) {
  await store.migrate();
  let logSeconds = 0;
  let rows = 0;
  const batches = LOG_ROWS / BATCH_ROWS;
  for (let i = 0; i < batches; i++) {
    const batch = logBatch(i);
    const [result, seconds] = await timed(() => store.appendLogs([batch]));
    logSeconds += seconds;
    rows += result.rows;
    if ((i + 1) % 100 === 0)
      progress(`${name}: ${rows.toLocaleString()} log rows, ${Math.round(rows / logSeconds).toLocaleString()} rows/s`);
  }
  let sampleSeconds = 0;
  let samples = 0;
  for (let i = 0; i < SAMPLE_ROWS / BATCH_ROWS; i++) {
    const batch = sampleBatch(i);
    const [result, seconds] = await timed(() => store.appendSamples([batch]));
    sampleSeconds += seconds;
    samples += result.rows;
  }
  progress(
    `${name}: ${samples.toLocaleString()} samples, ${Math.round(samples / sampleSeconds).toLocaleString()} samples/s`,
  );
  const endNs = BigInt(START_MS + 26 * 3_600_000) * 1_000_000n;
  const queryTimes: number[] = [];
  let counted = 0;
  let series = 0;
  for (let run = 0; run < QUERY_RUNS; run++) {
    const [result, seconds] = await timed(() =>
      store.countLogs({
        tenant: "bench",
        matchers: [{ name: "service", op: "=~", value: ".+" }],
        startNs: BigInt(START_MS) * 1_000_000n,
        endNs,
        stepNs: 60_000_000_000n,
      }),
    );
    queryTimes.push(seconds);
    counted = result.reduce((n, s) => n + s.points.reduce((m, p) => m + p.count, 0), 0);
    series = result.length;
  }
  if (counted !== rows)
    throw new Error(`${name}: count by stream per minute saw ${counted} rows, ${rows} were written`);
  queryTimes.sort((a, b) => a - b);
  const median = queryTimes[Math.floor(queryTimes.length / 2)]!;
  progress(
    `${name}: count by stream per minute over ${counted.toLocaleString()} rows in ${median.toFixed(2)} s (${series} streams)`,
  );
  return {
    log_rows: rows,
    log_insert_rows_per_s: Math.round(rows / logSeconds),
    samples,
    sample_insert_rows_per_s: Math.round(samples / sampleSeconds),
    count_by_stream_per_minute_s: Number(median.toFixed(3)),
    count_rows_per_s: Math.round(counted / median),
    streams: series,
  };
}

const dir = mkdtempSync(join(tmpdir(), "bifrost-bench-store-"));
try {
  const database = `bench_${Date.now()}`;
  const clickhouse = new ClickHouseStore({
    url: CLICKHOUSE_URL,
    username: "default",
    password: "",
    database,
    retention,
  });
  const embedded = new DuckDBStore({ path: join(dir, "bench.duckdb"), retention });
  const results = {
    clickhouse: await measure("clickhouse", clickhouse),
    embedded: await measure("embedded", embedded),
  };
  await clickhouse.close();
  await embedded.close();
  const admin = createClient({ url: CLICKHOUSE_URL });
  await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await admin.close();
  process.stdout.write(
    JSON.stringify({
      bench: "store",
      batch_rows: BATCH_ROWS,
      ...results,
      log_insert_ratio_embedded_vs_clickhouse: Number(
        (results.embedded.log_insert_rows_per_s / results.clickhouse.log_insert_rows_per_s).toFixed(2),
      ),
      count_speed_ratio_embedded_vs_clickhouse: Number(
        (results.clickhouse.count_by_stream_per_minute_s / results.embedded.count_by_stream_per_minute_s).toFixed(2),
      ),
      node: process.version,
    }) + "\n",
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
