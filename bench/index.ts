import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { Hono } from "hono";
import { Authenticator } from "../common/auth.js";
import { createLogger } from "../common/log.js";
import { configSchema } from "../config.js";
import type { LogStream } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { lokiRoutes } from "../query/loki/api.js";
import { ClickHouseDatabase } from "../storage/clickhouse-database.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBDatabase } from "../storage/duckdb-database.js";
import { DuckDBStore } from "../storage/duckdb.js";
import { Params } from "../storage/sql.js";
import { clickhouseDialect } from "../storage/clickhouse-database.js";
import { duckdbDialect } from "../storage/duckdb-sql.js";
import type { Store } from "../storage/store.js";
import { CLICKHOUSE_URL } from "../test/helpers/services.js";

// npm run bench:index — the Loki index and label endpoints Grafana calls on every Explore and Logs Drilldown
// page (/index/stats, /index/volume by series and by labels, /index/volume_range, /labels, /label/<name>/values,
// /series) over STREAMS streams with an hour of lines each, on the embedded store and on ClickHouse. Per endpoint
// and store: median and p99 latency through the Loki API answering from the in-memory index catalog
// (query/catalog/, its default staleness of a second, so a run of RUNS requests includes refreshes), beside the same
// API with the catalog off (`store_*`: a store query per request) and the store's own floor in the same run, a bare
// `SELECT 1` through the same client. Both answers are compared, and must be equal. The range is the last hour,
// ending mid-minute as Grafana's does. One JSON line on stdout, progress on stderr.

const STREAMS = Number(process.env.BENCH_INDEX_STREAMS ?? 1_000);
const LINES_PER_STREAM = Number(process.env.BENCH_INDEX_LINES_PER_STREAM ?? 60);
const RUNS = Number(process.env.BENCH_INDEX_RUNS ?? 50);
const TENANT = "bench";
const HOUR_MS = 3_600_000;
const retention = { logs_days: 30, samples_days: 30, rollups_1m_days: 90, rollups_1h_days: 400 };

const progress = (message: string) => process.stderr.write(`index bench: ${message}\n`);

const endMs = Date.now();
const startMs = endMs - HOUR_MS;

function streams(): LogStream[] {
  return Array.from({ length: STREAMS }, (_, s) => ({
    labels: labelsOf([
      ["service_name", `service-${s % 50}`],
      ["namespace", `ns-${s % 10}`],
      ["pod", `pod-${s}`],
      ["level", ["info", "warn", "error"][s % 3]!],
    ]),
    entries: Array.from({ length: LINES_PER_STREAM }, (_, i) => ({
      timeUnixNano: BigInt(startMs + Math.floor(((i + 0.5) * HOUR_MS) / LINES_PER_STREAM)) * 1_000_000n,
      line: `level=info msg="request served" stream=${s} n=${i} duration=${(s * 7 + i) % 900}ms`,
      metadata: Object.create(null),
    })),
  }));
}

const ALL = '{service_name=~".+"}';
const ENDPOINTS: Record<string, { path: string; params: Record<string, string> }> = {
  index_stats: { path: "index/stats", params: { query: ALL } },
  index_stats_one_service: { path: "index/stats", params: { query: '{service_name="service-7"}' } },
  index_volume: {
    path: "index/volume",
    params: { query: ALL, targetLabels: "service_name", aggregateBy: "series", limit: "100" },
  },
  index_volume_labels: { path: "index/volume", params: { query: ALL, aggregateBy: "labels", limit: "100" } },
  index_volume_range: {
    path: "index/volume_range",
    params: { query: ALL, targetLabels: "service_name", aggregateBy: "series", step: "60s" },
  },
  labels: { path: "labels", params: {} },
  label_values: { path: "label/service_name/values", params: {} },
  series: { path: "series", params: { "match[]": ALL } },
};

function quantile(times: number[], q: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  return Number(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!.toFixed(2));
}

async function timed(run: () => Promise<void>): Promise<{ median_ms: number; p99_ms: number }> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
  }
  return { median_ms: quantile(times, 0.5), p99_ms: quantile(times, 0.99) };
}

async function measure(name: string, store: Store, floor: () => Promise<void>): Promise<Record<string, unknown>> {
  await store.migrate();
  const started = performance.now();
  await store.appendLogs([{ id: "bench:index", tenant: TENANT, streams: streams() }]);
  progress(`${name}: loaded ${STREAMS * LINES_PER_STREAM} lines in ${(performance.now() - started).toFixed(0)} ms`);
  const config = configSchema().parse({});
  const api = (enabled: boolean) => {
    const app = new Hono();
    app.use(new Authenticator(config.auth, TENANT).middleware());
    lokiRoutes(app, {
      store,
      limits: config.query.limits,
      pushLimits: config.collector.limits,
      log: createLogger("silent"),
      indexCache: { ...config.query.index_cache, enabled },
    });
    return app;
  };
  const [catalog, storeQueries] = [api(true), api(false)];
  const range = { start: `${BigInt(startMs) * 1_000_000n}`, end: `${BigInt(endMs) * 1_000_000n}` };
  const out: Record<string, unknown> = { floor_select_1: await timed(floor) };
  const floorMedian = (out["floor_select_1"] as { median_ms: number }).median_ms;
  for (const [endpoint, { path, params }] of Object.entries(ENDPOINTS)) {
    const url = `/loki/api/v1/${path}?${new URLSearchParams({ ...params, ...range })}`;
    const answers: string[] = [];
    const answer = (app: Hono) => async () => {
      const response = await app.request(url);
      const body = await response.text();
      if (response.status !== 200) throw new Error(`${endpoint}: ${response.status} ${body}`);
      answers.push(body);
    };
    const figures = await timed(answer(catalog));
    const without = await timed(answer(storeQueries));
    if (new Set(answers).size !== 1) throw new Error(`${endpoint}: the catalog's answer differs from the store's`);
    out[endpoint] = {
      ...figures,
      x_floor: Number((figures.median_ms / floorMedian).toFixed(1)),
      store_median_ms: without.median_ms,
      store_p99_ms: without.p99_ms,
    };
    progress(
      `${name} ${endpoint}: median ${figures.median_ms} ms, p99 ${figures.p99_ms} ms; store queries: median ${without.median_ms} ms`,
    );
  }
  return out;
}

const result: Record<string, unknown> = {
  bench: "index",
  streams: STREAMS,
  lines: STREAMS * LINES_PER_STREAM,
  runs: RUNS,
  load_average_at_start: loadavg().map((load) => Number(load.toFixed(2))),
};
const dir = mkdtempSync(join(tmpdir(), "bifrost-bench-index-"));
try {
  const embedded = new DuckDBStore({ path: join(dir, "bench.duckdb"), retention });
  const bare = new DuckDBDatabase(":memory:");
  try {
    result["embedded"] = await measure("embedded", embedded, () =>
      bare.serial("floor", async (c) => void (await bare.rows(c, "SELECT 1", new Params(duckdbDialect)))),
    );
  } finally {
    await embedded.close();
    await bare.close();
  }

  const database = `bench_index_${Date.now()}`;
  const options = { url: CLICKHOUSE_URL, username: "default", password: "", database };
  const clickhouse = new ClickHouseStore({ ...options, retention });
  const client = new ClickHouseDatabase(options);
  try {
    result["clickhouse"] = await measure(
      "clickhouse",
      clickhouse,
      async () => void (await client.rows("floor", "SELECT 1", new Params(clickhouseDialect))),
    );
  } finally {
    await clickhouse.close();
    await client.close();
    const admin = createClient({ url: CLICKHOUSE_URL });
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await admin.close();
  }
  result["load_average_at_end"] = loadavg().map((load) => Number(load.toFixed(2)));
  result["node"] = process.version;
  process.stdout.write(JSON.stringify(result) + "\n");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
