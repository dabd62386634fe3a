import { Hono } from "hono";
import { Authenticator } from "../common/auth.js";
import { configSchema } from "../config.js";
import { createLogger } from "../common/log.js";
import { lokiRoutes } from "../query/loki/api.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { Store } from "../storage/store.js";
import { peakRssMib, resetPeakRss } from "./peak-rss.js";

// The query process of bench:logql (bench/logql.ts): one per store, so that its peak RSS is the query service's
// alone. It opens the store the bench loaded, answers each query family through the Loki API RUNS times, and prints
// one JSON line with each family's latencies, series count and peak RSS (the high-water mark is reset per family
// through /proc/self/clear_refs).

export interface QueryJob {
  store: { kind: "duckdb"; path: string } | { kind: "clickhouse"; url: string; database: string };
  tenant: string;
  runs: number;
  startNs: string;
  endNs: string;
  stepSeconds: number;
  queries: { name: string; query: string }[];
}

export interface FamilyTimes {
  times_ms: number[];
  /** CPU seconds (user + system) of the query process over all runs: a figure the machine's load moves less. */
  cpu_s: number;
  series: number;
  peak_rss_mib: number;
}

const retention = { logs_days: 30, samples_days: 30, rollups_1m_days: 90, rollups_1h_days: 400 };

function openStore(job: QueryJob): Store {
  if (job.store.kind === "duckdb") return new DuckDBStore({ path: job.store.path, retention });
  return new ClickHouseStore({
    url: job.store.url,
    username: "default",
    password: "",
    database: job.store.database,
    retention,
  });
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as QueryJob;
  const store = openStore(job);
  const config = configSchema().parse({ query: { limits: { max_query_length_hours: 25, max_query_series: 100_000 } } });
  const app = new Hono();
  app.use(new Authenticator(config.auth, job.tenant).middleware());
  lokiRoutes(app, {
    store,
    limits: config.query.limits,
    pushLimits: config.collector.limits,
    log: createLogger("silent"),
  });
  const results: Record<string, FamilyTimes> = {};
  for (const { name, query } of job.queries) {
    const params = new URLSearchParams({ query, start: job.startNs, end: job.endNs, step: `${job.stepSeconds}s` });
    global.gc?.();
    resetPeakRss();
    const times: number[] = [];
    let series = 0;
    const cpu = process.cpuUsage();
    for (let run = 0; run < job.runs; run++) {
      const started = performance.now();
      const response = await app.request(`/loki/api/v1/query_range?${params}`);
      const body = await response.text();
      if (response.status !== 200) throw new Error(`${name}: ${response.status} ${body}`);
      times.push(performance.now() - started);
      series = (JSON.parse(body) as { data: { result: unknown[] } }).data.result.length;
    }
    const used = process.cpuUsage(cpu);
    const cpuS = Number(((used.user + used.system) / 1e6).toFixed(3));
    results[name] = { times_ms: times, cpu_s: cpuS, series, peak_rss_mib: Number(peakRssMib().toFixed(1)) };
    process.stderr.write(`logql bench: ${job.store.kind} ${name} ${times.map((t) => t.toFixed(0)).join(" ")} ms\n`);
  }
  await store.close();
  process.stdout.write(JSON.stringify(results) + "\n");
}

await main();
