import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { Hono } from "hono";
import { Authenticator } from "../common/auth.js";
import { configSchema } from "../config.js";
import { createLogger } from "../common/log.js";
import { rollupBatch } from "../aggregator/rollup.js";
import { type LogStream, SampleKind, type Series } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { rangeQuery } from "../query/promql/evaluation/evaluator.js";
import { parsePromql } from "../query/promql/syntax/parser.js";
import { lokiRoutes } from "../query/loki/api.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { LogBatch, Store } from "../storage/store.js";
import { prometheusMissing, startPrometheus } from "../test/helpers/prometheus.js";

// npm run bench:query — latency (median, p99) of LogQL queries through the Loki API over BENCH_LOG_ROWS
// (default 10M) generated log lines spread over 24 hours, on ClickHouse and on the embedded store side by side.
// Beside each store's figures: the floor, the store's own count per stream per minute over all rows (one SQL
// query, no planner, engine or HTTP), which the first query cannot beat. Then the same PromQL range queries over
// BENCH_SAMPLE_SERIES (default 200) series of 24 hours of 15 s samples answered from raw samples and from rollups
// (query/promql/pushdown/rollups.ts), side by side, and beside them the same range queries answered by Debian's Prometheus
// over the same samples (skipped when it is not installed), with each PromQL figure's ratio to Prometheus'
// (promql_vs_prometheus). Prints one JSON line; progress goes to stderr.

const LOG_ROWS = Number(process.env.BENCH_LOG_ROWS ?? 10_000_000);
const RUNS = Number(process.env.BENCH_QUERY_RUNS ?? 7);
const BATCH_ROWS = 50_000;
const SAMPLE_SERIES = Number(process.env.BENCH_SAMPLE_SERIES ?? 200);
const SAMPLE_INTERVAL_MS = 15_000;
const NODES = 50;
const LEVELS = ["debug", "info", "warn", "error"];
const CLICKHOUSE_URL = process.env.BIFROST_TEST_CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
const retention = { logs_days: 30, samples_days: 30, rollups_1m_days: 90, rollups_1h_days: 400 };
const END_MS = Math.floor(Date.now() / 60_000) * 60_000;
const START_MS = END_MS - 24 * 3_600_000;
const NS = 1_000_000n;

function progress(message: string): void {
  process.stderr.write(`query bench: ${message}\n`);
}

/** Rows spread evenly over 24h across 200 streams; about one line in 1000 carries a rare token. */
function batch(index: number): LogBatch {
  const streams = new Map<string, LogStream>();
  const spacingNs = (BigInt(END_MS - START_MS) * NS) / BigInt(LOG_ROWS);
  for (let i = 0; i < BATCH_ROWS; i++) {
    const row = index * BATCH_ROWS + i;
    const node = `edge-${row % NODES}`;
    const level = LEVELS[Math.floor(row / NODES) % LEVELS.length]!;
    const key = `${node}/${level}`;
    let stream = streams.get(key);
    if (stream === undefined) {
      stream = {
        labels: labelsOf([
          ["service", "x"],
          ["node", node],
          ["level", level],
        ]),
        entries: [],
      };
      streams.set(key, stream);
    }
    const status = row % 97 === 0 ? 503 : 200;
    const rare = row % 1000 === 7 ? " rare-token" : "";
    stream.entries.push({
      timeUnixNano: BigInt(START_MS) * NS + BigInt(row) * spacingNs,
      line: `level=${level} method=GET path=/api/v1/orders/${row % 5000} status=${status} latency=${row % 300}ms${rare}`,
      metadata: Object.create(null),
    });
  }
  return { id: `bench:${index}`, tenant: "bench", streams: [...streams.values()] };
}

const range = (hours: number) =>
  `start=${(BigInt(END_MS - hours * 3_600_000) * NS).toString()}&end=${(BigInt(END_MS) * NS).toString()}`;

const QUERIES: { name: string; path: string }[] = [
  {
    name: "sum_by_level_count_over_time_1m_24h",
    path: `/loki/api/v1/query_range?query=${encodeURIComponent('sum by (level) (count_over_time({service="x"}[1m]))')}&${range(24)}&step=60s`,
  },
  {
    name: "line_filter_limit_1000_24h",
    path: `/loki/api/v1/query_range?query=${encodeURIComponent('{service="x"} |= "rare-token"')}&${range(24)}&limit=1000&direction=backward`,
  },
  {
    name: "sum_rate_line_filter_5m_24h",
    path: `/loki/api/v1/query_range?query=${encodeURIComponent('sum(rate({service="x"} |= "status=503" [5m]))')}&${range(24)}&step=300s`,
  },
  {
    name: "logfmt_status_filter_count_5m_1h",
    path: `/loki/api/v1/query_range?query=${encodeURIComponent('sum by (status) (count_over_time({service="x", node="edge-1"} | logfmt | status >= 500 [5m]))')}&${range(1)}&step=300s`,
  },
  {
    name: "recent_errors_limit_100_1h",
    path: `/loki/api/v1/query_range?query=${encodeURIComponent('{service="x", level="error"}')}&${range(1)}&limit=100`,
  },
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

async function measure(name: string, store: Store, floor: () => Promise<number>) {
  await store.migrate();
  const t0 = performance.now();
  for (let i = 0; i < LOG_ROWS / BATCH_ROWS; i++) {
    await store.appendLogs([batch(i)]);
    if ((i + 1) % 20 === 0) progress(`${name}: ${((i + 1) * BATCH_ROWS).toLocaleString()} rows loaded`);
  }
  progress(`${name}: loaded ${LOG_ROWS.toLocaleString()} rows in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const config = configSchema().parse({ query: { limits: { max_query_length_hours: 25 } } });
  const app = new Hono();
  app.use(new Authenticator(config.auth, "bench").middleware());
  lokiRoutes(app, {
    store,
    limits: config.query.limits,
    pushLimits: config.collector.limits,
    log: createLogger("silent"),
  });
  const results: Record<string, { median_ms: number; p99_ms: number }> = {};
  for (const query of QUERIES) {
    const times: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const started = performance.now();
      const response = await app.request(query.path);
      const body = await response.text();
      if (response.status !== 200) throw new Error(`${name} ${query.name}: ${response.status} ${body}`);
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    results[query.name] = {
      median_ms: Math.round(percentile(times, 0.5)),
      p99_ms: Math.round(percentile(times, 0.99)),
    };
    progress(`${name}: ${query.name} median ${results[query.name]!.median_ms} ms`);
  }
  const floorTimes: number[] = [];
  for (let run = 0; run < RUNS; run++) floorTimes.push(await floor());
  floorTimes.sort((a, b) => a - b);
  return {
    rows: LOG_ROWS,
    queries: results,
    floor_store_count_per_stream_minute_ms: Math.round(percentile(floorTimes, 0.5)),
    promql_raw_vs_rollups: await measurePromql(name, store),
  };
}

const PROMQL_QUERIES = [
  "max_over_time(bench_gauge[5m])",
  "count_over_time(bench_gauge[1h])",
  "sum by (node) (avg_over_time(bench_gauge[5m]))",
];

/** 24 hours of integer gauge samples every 15 s (1.5 s off the minute) per series. */
function sampleSeries(): Series[] {
  const series: Series[] = [];
  for (let i = 0; i < SAMPLE_SERIES; i++) {
    const samples = [];
    for (let t = START_MS + 1_500, k = 0; t < END_MS; t += SAMPLE_INTERVAL_MS, k++)
      samples.push({ timeUnixMs: t, value: (k * 7 + i) % 1000 });
    series.push({
      name: "bench_gauge",
      labels: labelsOf([
        ["node", `edge-${i % NODES}`],
        ["series", String(i)],
      ]),
      kind: SampleKind.Gauge,
      points: samples,
    });
  }
  return series;
}

/** The samples of sampleSeries() with their rollups, ten series per batch. */
async function loadSamples(store: Store): Promise<number> {
  const all = sampleSeries();
  for (let first = 0; first < all.length; first += 10) {
    const series = all.slice(first, first + 10);
    await store.appendSamples([{ id: `bench:samples:${first}`, tenant: "bench", series }]);
    await store.appendRollups([{ id: `bench:samples:${first}`, tenant: "bench", partials: rollupBatch(series) }]);
  }
  return all.reduce((n, one) => n + one.points.length, 0);
}

/** The peer: Debian's Prometheus answering the same range queries over the same samples (imported with promtool). */
async function measurePrometheus(dir: string) {
  const missing = prometheusMissing();
  if (missing !== false) {
    progress(`prometheus: skipped, ${missing}`);
    return null;
  }
  const home = join(dir, "prometheus");
  mkdirSync(home);
  const prometheus = await startPrometheus(home, sampleSeries());
  try {
    const results: Record<string, { median_ms: number }> = {};
    for (const query of PROMQL_QUERIES) {
      const params = new URLSearchParams({
        query,
        start: String((START_MS + 3_600_000) / 1000),
        end: String(END_MS / 1000),
        step: "300",
      });
      const times: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const started = performance.now();
        const response = await fetch(`${prometheus.url}/api/v1/query_range?${params}`);
        const body = await response.text();
        if (response.status !== 200) throw new Error(`prometheus ${query}: ${response.status} ${body}`);
        times.push(performance.now() - started);
      }
      results[query] = {
        median_ms: Math.round(
          percentile(
            times.sort((a, b) => a - b),
            0.5,
          ),
        ),
      };
      progress(`prometheus: ${query} ${results[query]!.median_ms} ms`);
    }
    return { queries: results };
  } finally {
    await prometheus.stop();
  }
}

/**
 * Median milliseconds of each PromQL query over 24 h at a 5-minute step: from raw samples as the engine reads them
 * by default (with the store's per-slice sums where they are exact), from raw samples read one by one (slices
 * off), and from rollups.
 */
async function measurePromql(name: string, store: Store) {
  const samples = await loadSamples(store);
  progress(`${name}: loaded ${samples.toLocaleString()} samples and their rollups`);
  const results: Record<
    string,
    { raw_median_ms: number; raw_samples_median_ms: number; rollup_median_ms: number; speedup: number }
  > = {};
  for (const query of PROMQL_QUERIES) {
    const expr = parsePromql(query);
    const median = async (options: { rollups: boolean; slices: boolean }) => {
      const times: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const started = performance.now();
        await rangeQuery({ store, tenant: "bench", ...options }, expr, START_MS + 3_600_000, END_MS, 300_000);
        times.push(performance.now() - started);
      }
      return percentile(
        times.sort((a, b) => a - b),
        0.5,
      );
    };
    const raw = await median({ rollups: false, slices: true });
    const rawSamples = await median({ rollups: false, slices: false });
    const rollup = await median({ rollups: true, slices: true });
    results[query] = {
      raw_median_ms: Math.round(raw),
      raw_samples_median_ms: Math.round(rawSamples),
      rollup_median_ms: Math.round(rollup),
      speedup: Math.round((raw / rollup) * 10) / 10,
    };
    progress(
      `${name}: ${query} raw ${results[query]!.raw_median_ms} ms (sample by sample ${results[query]!.raw_samples_median_ms} ms), rollups ${results[query]!.rollup_median_ms} ms`,
    );
  }
  return { samples, queries: results };
}

type PromqlResult = Awaited<ReturnType<typeof measurePromql>>;

/** Each PromQL figure over Prometheus' for the same query in the same run (below 1: faster than Prometheus). */
function versusPrometheus(result: PromqlResult, prometheus: Awaited<ReturnType<typeof measurePrometheus>>) {
  if (prometheus === null) return null;
  const ratio = (ms: number, peer: number) => Math.round((ms / peer) * 100) / 100;
  return Object.fromEntries(
    Object.entries(result.queries).map(([query, figures]) => {
      const peer = prometheus.queries[query]!.median_ms;
      return [
        query,
        {
          raw: ratio(figures.raw_median_ms, peer),
          raw_samples: ratio(figures.raw_samples_median_ms, peer),
          rollups: ratio(figures.rollup_median_ms, peer),
        },
      ];
    }),
  );
}

/** The floor: the store's one count query per stream per minute over all rows, with no planner, engine or HTTP. */
async function countFloor(store: Store): Promise<number> {
  const started = performance.now();
  await store.countLogs({
    tenant: "bench",
    matchers: [{ name: "service", op: "=", value: "x" }],
    startNs: BigInt(START_MS) * NS,
    endNs: BigInt(END_MS) * NS + 1n,
    stepNs: 60_000_000_000n,
  });
  return performance.now() - started;
}

const dir = mkdtempSync(join(tmpdir(), "bifrost-bench-query-"));
try {
  const database = `benchq_${Date.now()}`;
  const clickhouse = new ClickHouseStore({
    url: CLICKHOUSE_URL,
    username: "default",
    password: "",
    database,
    retention,
  });
  const clickhouseResult = await measure("clickhouse", clickhouse, () => countFloor(clickhouse));
  await clickhouse.close();
  const admin = createClient({ url: CLICKHOUSE_URL });
  await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await admin.close();
  const embedded = new DuckDBStore({ path: join(dir, "bench.duckdb"), retention });
  const embeddedResult = await measure("embedded", embedded, () => countFloor(embedded));
  await embedded.close();
  const prometheusResult = await measurePrometheus(dir);
  for (const result of [clickhouseResult, embeddedResult])
    Object.assign(result, {
      promql_vs_prometheus: versusPrometheus(result.promql_raw_vs_rollups, prometheusResult),
    });
  process.stdout.write(
    JSON.stringify({
      bench: "query",
      clickhouse: clickhouseResult,
      embedded: embeddedResult,
      prometheus_promql: prometheusResult,
      node: process.version,
    }) + "\n",
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
