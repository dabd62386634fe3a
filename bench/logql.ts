import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { Store } from "../storage/store.js";
import { CLICKHOUSE_URL } from "../test/helpers/services.js";
import {
  type DataSet,
  dataSet,
  entry,
  FAMILIES,
  type Family,
  linesOf,
  STREAM_LABELS,
  streamsOf,
} from "./logql-data.js";
import { lokiBinary, pushToLoki, queryLoki, startLoki } from "./logql-loki.js";
import type { QueryJob } from "./logql-query.js";

// npm run bench:logql [-- --lines 1M] — LogQL metric query families (plain counts, logfmt / JSON parsers grouped by
// an extracted label, unwrap, drop/keep, line_format/label_format, line filters) over a generated data set of 30
// streams of mixed logfmt, JSON, access-log and plain lines spread over two hours (bench/logql-data.ts), on the
// embedded store and on ClickHouse. Per family and store: the median latency through the Loki API, the lines the
// query read and parsed per second, and the peak RSS of the query process (a child process per store,
// bench/logql-query.ts). Beside them in the same run: a real Grafana Loki fed the same lines when LOKI_BIN names
// its binary, and always the physical floor, a bare JS loop that splits the same lines and counts by one field.
// Size: --lines N or BENCH_LOGQL_LINES (100k default; 1M, 10M accepted). One JSON line on stdout, with each store's
// lines per second over Loki's per family (ratio_to_loki) when Loki ran.

const RUNS = Number(process.env.BENCH_LOGQL_RUNS ?? 5);
const LOAD_BATCH = 50_000;
const LOKI_BATCH = 10_000;
const STEP_SECONDS = 60;
const TENANT = "bench";
const retention = { logs_days: 30, samples_days: 30, rollups_1m_days: 90, rollups_1h_days: 400 };

const progress = (message: string) => process.stderr.write(`logql bench: ${message}\n`);

function sizeArgument(): number {
  const flag = process.argv.indexOf("--lines");
  const text = flag >= 0 ? process.argv[flag + 1] : process.env.BENCH_LOGQL_LINES;
  if (text === undefined) return 100_000;
  const match = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text);
  if (match === null) throw new Error(`--lines: expected a count such as 100k, 1M or 10M, got ${text}`);
  const scale = { "": 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6 }[match[2]!]!;
  return Math.round(Number(match[1]) * scale);
}

async function load(name: string, store: Store, data: DataSet): Promise<number> {
  await store.migrate();
  const started = performance.now();
  for (let first = 0, id = 0; first < data.lines; first += LOAD_BATCH, id++) {
    await store.appendLogs([{ id: `bench:logql:${id}`, tenant: TENANT, streams: streamsOf(data, first, LOAD_BATCH) }]);
    if (id % 10 === 9) progress(`${name}: ${Math.min(first + LOAD_BATCH, data.lines).toLocaleString()} lines loaded`);
  }
  return (performance.now() - started) / 1000;
}

const median = (times: number[]) => [...times].sort((a, b) => a - b)[Math.floor((times.length - 1) / 2)]!;

interface FamilyFigures {
  median_ms: number;
  lines_per_s: number;
  /** Lines read per CPU second of the query process (Bifrost's stores only; the store's own CPU is apart). */
  lines_per_cpu_s?: number;
  series: number;
  peak_rss_mib: number;
}

function figures(
  data: DataSet,
  raw: Record<string, { times_ms: number[]; cpu_s?: number; series: number; peak_rss_mib: number }>,
): Record<string, FamilyFigures> {
  const out: Record<string, FamilyFigures> = {};
  for (const family of FAMILIES) {
    const one = raw[family.name]!;
    const ms = median(one.times_ms);
    const read = linesOf(data, family.apps);
    out[family.name] = {
      median_ms: Math.round(ms),
      lines_per_s: Math.round(read / (ms / 1000)),
      ...(one.cpu_s === undefined ? {} : { lines_per_cpu_s: Math.round((read * one.times_ms.length) / one.cpu_s) }),
      series: one.series,
      peak_rss_mib: one.peak_rss_mib,
    };
  }
  return out;
}

/**
 * Each store's lines per second over Loki's, per family (above 1: faster than Loki on the same lines): the figure
 * the target (within 1x of Loki) is read from.
 */
function ratiosToLoki(
  result: Record<string, unknown>,
  loki: Record<string, FamilyFigures>,
): Record<string, Record<string, number>> {
  const ratios: Record<string, Record<string, number>> = {};
  for (const store of ["embedded", "clickhouse"]) {
    const ours = result[store] as Record<string, FamilyFigures>;
    ratios[store] = Object.fromEntries(
      FAMILIES.map(({ name }) => [name, Number((ours[name]!.lines_per_s / loki[name]!.lines_per_s).toFixed(2))]),
    );
  }
  return ratios;
}

/** Runs bench/logql-query.js in a child process (its progress on our stderr) and returns its JSON line. */
async function queryProcess(job: QueryJob) {
  const child = spawn(
    process.execPath,
    ["--expose-gc", join(import.meta.dirname, "logql-query.js"), JSON.stringify(job)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`query process for ${job.store.kind} exited with ${code}`);
  return JSON.parse(stdout) as Record<
    string,
    { times_ms: number[]; cpu_s: number; series: number; peak_rss_mib: number }
  >;
}

/**
 * The floor: the lines a family reads, already in memory, split on spaces and counted by the value after its
 * field, the least any engine does to group parsed lines; median lines per second over RUNS passes.
 */
function floor(data: DataSet, family: Family): number {
  const wanted = new Set(STREAM_LABELS.flatMap((labels, s) => (family.apps.includes(labels["app"]!) ? [s] : [])));
  const lines: string[] = [];
  for (let i = 0; i < data.lines; i++) if (wanted.has(i % STREAM_LABELS.length)) lines.push(entry(data, i).line);
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const counts = new Map<string, number>();
    const started = performance.now();
    for (const line of lines) {
      for (const token of line.split(" ")) {
        const at = token.indexOf(family.floorField);
        if (at < 0) continue;
        const value = token.slice(at + family.floorField.length);
        counts.set(value, (counts.get(value) ?? 0) + 1);
      }
    }
    times.push(performance.now() - started);
  }
  return Math.round(lines.length / (median(times) / 1000));
}

const lines = sizeArgument();
const data = dataSet(lines, Math.floor(Date.now() / 60_000) * 60_000);
const queries = FAMILIES.map(({ name, query }) => ({ name, query }));
const range = {
  startNs: (BigInt(data.startMs) * 1_000_000n).toString(),
  endNs: (BigInt(data.endMs) * 1_000_000n).toString(),
  stepSeconds: STEP_SECONDS,
};
const dir = mkdtempSync(join(tmpdir(), "bifrost-bench-logql-"));
const result: Record<string, unknown> = { bench: "logql", lines, streams: STREAM_LABELS.length, runs: RUNS };
try {
  const path = join(dir, "bench.duckdb");
  const embedded = new DuckDBStore({ path, retention });
  progress(
    `embedded: loaded ${lines.toLocaleString()} lines in ${(await load("embedded", embedded, data)).toFixed(0)} s`,
  );
  await embedded.close();
  result["embedded"] = figures(
    data,
    await queryProcess({ store: { kind: "duckdb", path }, tenant: TENANT, runs: RUNS, queries, ...range }),
  );

  const database = `bench_logql_${Date.now()}`;
  const clickhouse = new ClickHouseStore({
    url: CLICKHOUSE_URL,
    username: "default",
    password: "",
    database,
    retention,
  });
  try {
    progress(
      `clickhouse: loaded ${lines.toLocaleString()} lines in ${(await load("clickhouse", clickhouse, data)).toFixed(0)} s`,
    );
    await clickhouse.close();
    result["clickhouse"] = figures(
      data,
      await queryProcess({
        store: { kind: "clickhouse", url: CLICKHOUSE_URL, database },
        tenant: TENANT,
        runs: RUNS,
        queries,
        ...range,
      }),
    );
  } finally {
    const admin = createClient({ url: CLICKHOUSE_URL });
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await admin.close();
  }

  const bin = lokiBinary();
  if (bin === undefined) {
    progress("loki: skipped, LOKI_BIN does not name a Loki binary");
    result["loki"] = null;
  } else {
    const loki = await startLoki(bin);
    try {
      const started = performance.now();
      await pushToLoki(loki, TENANT, data, LOKI_BATCH);
      progress(
        `loki: pushed ${lines.toLocaleString()} lines in ${((performance.now() - started) / 1000).toFixed(0)} s`,
      );
      const lokiFigures = figures(data, await queryLoki(loki, TENANT, queries, range, RUNS));
      result["loki"] = lokiFigures;
      result["ratio_to_loki"] = ratiosToLoki(result, lokiFigures);
    } finally {
      await loki.stop();
    }
  }
  result["floor_split_scan_lines_per_s"] = Object.fromEntries(
    FAMILIES.map((family) => [family.name, floor(data, family)]),
  );
  result["node"] = process.version;
  // The machine is shared: its load (1, 5 and 15 minute averages) at the end of the run says what the figures met.
  result["load_average"] = loadavg().map((load) => Number(load.toFixed(2)));
  process.stdout.write(JSON.stringify(result) + "\n");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
