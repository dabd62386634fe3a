import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { createLogger } from "../common/log.js";
import { SampleKind, type Series } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { instantQuery } from "../query/promql/evaluation/evaluator.js";
import { parsePromql } from "../query/promql/syntax/parser.js";
import { Ruler } from "../query/ruler/ruler.js";
import { TickStore } from "../query/ruler/tick-store.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { Store } from "../storage/store.js";

// npm run bench:rules — the CPU the ruler takes, as a percentage of one core, to evaluate 1000 rules (100 groups of
// 3 recording and 7 alerting rules, one node each) every 15 s over BENCH_RULE_INTERVALS intervals, on the embedded
// store and on ClickHouse. The clock is simulated: each interval's evaluations run back to back and their CPU time
// (process.cpuUsage, user + system) is divided by 15 s. Beside each figure: the floor, the same 1000 queries run
// through the PromQL engine without the ruler (no state, templates, notifications or writes) reading the store
// once per metric as the ruler does; and the same queries each reading the store on its own, as 1000 API queries
// would. ClickHouse's own CPU is not counted (it is another process, shared with other users); the embedded
// store's is (it runs in this process). The peer: Debian's `prometheus` scraping the same series from this
// process every 15 s and evaluating the same 1000 rules, its whole process's CPU over BENCH_RULE_PEER_INTERVALS
// real intervals, with and without the rules (the difference is its ruler's). Prints one JSON line; progress
// goes to stderr.

const INTERVALS = Number(process.env.BENCH_RULE_INTERVALS ?? 8);
const PEER_INTERVALS = Number(process.env.BENCH_RULE_PEER_INTERVALS ?? 4);
const NODES = 100;
const INTERVAL_MS = 15_000;
const HISTORY_MS = 30 * 60_000;
const CLICKHOUSE_URL = process.env.BIFROST_TEST_CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
const retention = { logs_days: 30, samples_days: 30, rollups_1m_days: 90, rollups_1h_days: 400 };
const START_MS = Math.floor(Date.now() / 60_000) * 60_000;
const TENANT = "bench";
const log = createLogger("silent");

function progress(message: string): void {
  process.stderr.write(`rules bench: ${message}\n`);
}

const node = (n: number) => `edge-${String(n).padStart(3, "0")}`;

function recordingRules(n: number): [string, string][] {
  const sel = `node="${node(n)}"`;
  return [
    ["node:cpu_busy:rate5m", `sum by (node) (rate(node_cpu_seconds_total{${sel},mode!="idle"}[5m]))`],
    ["node:http_requests:rate5m", `sum by (node, code) (rate(http_requests_total{${sel}}[5m]))`],
    ["node:memory_available:gb", `node_memory_MemAvailable_bytes{${sel}} / 1e9`],
  ];
}

function alertingRules(n: number): [string, string, string][] {
  const sel = `node="${node(n)}"`;
  return [
    ["HighLoad", `node_load1{${sel}} > 4`, "1m"],
    ["VeryHighLoad", `node_load1{${sel}} > 8`, "0s"],
    ["CpuBusy", `sum by (node) (rate(node_cpu_seconds_total{${sel},mode!="idle"}[5m])) > 0.8`, "5m"],
    ["Http5xx", `sum by (node) (rate(http_requests_total{${sel},code="500"}[5m])) > 0.5`, "2m"],
    [
      "HttpErrorRatio",
      `sum by (node) (rate(http_requests_total{${sel},code="500"}[5m])) / sum by (node) (rate(http_requests_total{${sel}}[5m])) > 0.05`,
      "5m",
    ],
    ["MemoryLow", `node_memory_MemAvailable_bytes{${sel}} < 2e9`, "5m"],
    ["LoadRising", `delta(node_load1{${sel}}[5m]) > 2`, "1m"],
  ];
}

function ruleFileText(): string {
  const lines = ["groups:"];
  for (let n = 0; n < NODES; n++) {
    lines.push(`  - name: ${node(n)}`, "    interval: 15s", "    rules:");
    for (const [record, expr] of recordingRules(n)) lines.push(`      - record: ${record}`, `        expr: '${expr}'`);
    for (const [alert, expr, forDuration] of alertingRules(n)) {
      lines.push(
        `      - alert: ${alert}`,
        `        expr: '${expr}'`,
        `        for: ${forDuration}`,
        "        labels: {severity: warning}",
      );
      lines.push("        annotations: {summary: '{{ $labels.node }} at {{ $value | humanize }}'}");
    }
  }
  return lines.join("\n") + "\n";
}

/** Samples of every node for [fromMs, toMs) every 15 s: a few nodes loaded, some erroring, so that alerts come and go. */
function samples(fromMs: number, toMs: number): Series[] {
  const out: Series[] = [];
  for (let n = 0; n < NODES; n++) {
    const labels = (...more: [string, string][]) => labelsOf([["node", node(n)], ...more]);
    const series = (
      name: string,
      kind: SampleKind,
      l: ReturnType<typeof labels>,
      value: (t: number) => number,
    ): Series => {
      const points = [];
      for (let t = fromMs; t < toMs; t += INTERVAL_MS) points.push({ timeUnixMs: t, value: value(t) });
      return { name, labels: l, kind, points };
    };
    const step = (t: number) => (t - (START_MS - HISTORY_MS)) / INTERVAL_MS;
    out.push(
      series("node_load1", SampleKind.Gauge, labels(), (t) => (n % 10 === 0 ? 5 + (step(t) % 8) : 1 + (n % 3))),
      series(
        "node_cpu_seconds_total",
        SampleKind.Counter,
        labels(["cpu", "0"], ["mode", "idle"]),
        (t) => step(t) * 15 * (n % 10 === 0 ? 0.1 : 0.9),
      ),
      series(
        "node_cpu_seconds_total",
        SampleKind.Counter,
        labels(["cpu", "0"], ["mode", "user"]),
        (t) => step(t) * 15 * (n % 10 === 0 ? 0.9 : 0.1),
      ),
      series("node_memory_MemAvailable_bytes", SampleKind.Gauge, labels(), () => (n % 7 === 0 ? 1e9 : 8e9)),
      series("http_requests_total", SampleKind.Counter, labels(["code", "200"]), (t) => step(t) * 150),
      series(
        "http_requests_total",
        SampleKind.Counter,
        labels(["code", "500"]),
        (t) => step(t) * (n % 5 === 0 ? 30 : 0.1),
      ),
    );
  }
  return out;
}

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

const percent = (ms: number) => Math.round((ms / (INTERVALS * INTERVAL_MS)) * 1000) / 10;

async function measure(name: string, store: Store, rulesFile: string) {
  await store.migrate();
  progress(`${name}: writing ${NODES * 6} series of 30 minutes`);
  await store.appendSamples([
    { id: `bench-rules:history`, tenant: TENANT, series: samples(START_MS - HISTORY_MS, START_MS) },
  ]);
  await store.appendSamples([
    { id: `bench-rules:future`, tenant: TENANT, series: samples(START_MS, START_MS + (INTERVALS + 2) * INTERVAL_MS) },
  ]);

  let now = START_MS;
  const ruler = new Ruler({
    store,
    log,
    ruleFiles: [rulesFile],
    tenants: [TENANT],
    defaultIntervalMs: INTERVAL_MS,
    pollIntervalMs: 0,
    outageToleranceMs: 3_600_000,
    externalURL: "http://bench",
    maxSeries: 500,
    now: () => now,
  });
  let notices = 0;
  ruler.addSink({ send: (alerts) => void (notices += alerts.length) });
  const problems = ruler.reload();
  if (problems.length > 0) throw new Error(problems.join("\n"));
  const rules = ruler.groups(TENANT).reduce((sum, runner) => sum + runner.group.rules.length, 0);
  // The first evaluation also restores alert state; warm up with it.
  await ruler.evaluateDue();
  progress(`${name}: ${rules} rules, ${INTERVALS} intervals`);
  let rulerMs = 0;
  const wallStarted = performance.now();
  for (let i = 1; i <= INTERVALS; i++) {
    now = START_MS + i * INTERVAL_MS;
    const before = cpuMs();
    await ruler.evaluateDue();
    rulerMs += cpuMs() - before;
  }
  const wallMs = performance.now() - wallStarted;
  const firing = ruler
    .groups(TENANT)
    .reduce(
      (sum, runner) =>
        sum +
        [...runner.states.values()].reduce(
          (s, states) => s + states.list().filter((a) => a.state === "firing").length,
          0,
        ),
      0,
    );

  const exprs = ruler.groups(TENANT).flatMap((runner) => runner.group.rules.map((rule) => parsePromql(rule.expr.text)));
  const queriesOnly = async (shared: boolean, intervals: number) => {
    let ms = 0;
    for (let i = 1; i <= intervals; i++) {
      const before = cpuMs();
      const view = shared ? new TickStore(store) : store;
      for (const expr of exprs) await instantQuery({ store: view, tenant: TENANT }, expr, START_MS + i * INTERVAL_MS);
      ms += cpuMs() - before;
    }
    return ms;
  };
  const floorMs = await queriesOnly(true, INTERVALS);
  // A thousand separate store reads per interval are slow; two intervals tell their cost.
  const separateIntervals = Math.min(INTERVALS, 2);
  const separateMs = ((await queriesOnly(false, separateIntervals)) * INTERVALS) / separateIntervals;
  return {
    rules,
    intervals: INTERVALS,
    ruler_cpu_percent_of_one_core: percent(rulerMs),
    floor_same_queries_without_ruler_cpu_percent: percent(floorMs),
    same_queries_each_reading_the_store_cpu_percent: percent(separateMs),
    wall_ms_per_interval: Math.round(wallMs / INTERVALS),
    firing_alerts: firing,
    notices_sent: notices,
  };
}

/** The series' exposition at the current time, as a node's exporters would serve them. */
function exposition(): string {
  const lines: string[] = [];
  for (const s of samples(Date.now(), Date.now() + 1)) {
    const labels = Object.entries(s.labels)
      .map(([k, v]) => `${k}="${v}"`)
      .join(",");
    lines.push(`${s.name}{${labels}} ${s.points[0]!.value}`);
  }
  return lines.join("\n") + "\n";
}

/** utime + stime of a process in ms, from /proc. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function prometheusPeer(dir: string, rulesFile: string) {
  if (spawnSync("prometheus", ["--version"]).error !== undefined)
    return { skipped: "prometheus is not installed (deploy/local/services.sh install)" };
  const server = createServer((_, res) => res.end(exposition()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const run = async (withRules: boolean) => {
    const data = join(dir, `prometheus-${withRules}`);
    const config = join(dir, `prometheus-${withRules}.yml`);
    writeFileSync(
      config,
      [
        "global: {scrape_interval: 15s, evaluation_interval: 15s}",
        ...(withRules ? [`rule_files: ['${rulesFile}']`] : []),
        `scrape_configs: [{job_name: edge, static_configs: [{targets: ['${target}']}]}]`,
      ].join("\n"),
    );
    const child = spawn(
      "prometheus",
      [`--config.file=${config}`, `--storage.tsdb.path=${data}`, "--web.listen-address=127.0.0.1:0"],
      { stdio: "ignore" },
    );
    try {
      // Start-up, first scrapes and first evaluations are not counted.
      await new Promise((resolve) => setTimeout(resolve, 2 * INTERVAL_MS));
      const before = processCpuMs(child.pid!);
      await new Promise((resolve) => setTimeout(resolve, PEER_INTERVALS * INTERVAL_MS));
      return processCpuMs(child.pid!) - before;
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
  };
  try {
    progress(`prometheus: ${PEER_INTERVALS} real intervals with the rules, then without`);
    const withRules = await run(true);
    const without = await run(false);
    const share = (ms: number) => Math.round((ms / (PEER_INTERVALS * INTERVAL_MS)) * 1000) / 10;
    return {
      version: spawnSync("prometheus", ["--version"], { encoding: "utf8" }).stdout.split("\n")[0],
      intervals: PEER_INTERVALS,
      process_cpu_percent_with_rules: share(withRules),
      process_cpu_percent_without_rules: share(without),
      rules_cpu_percent_of_one_core: share(withRules - without),
    };
  } finally {
    server.close();
  }
}

const dir = mkdtempSync(join(tmpdir(), "bifrost-bench-rules-"));
try {
  const rulesFile = join(dir, "rules.yaml");
  writeFileSync(rulesFile, ruleFileText());
  const embedded = new DuckDBStore({ path: join(dir, "bench.duckdb"), retention, log });
  const embeddedResult = await measure("embedded", embedded, rulesFile);
  await embedded.close();
  const database = `benchr_${Date.now()}`;
  const clickhouse = new ClickHouseStore({
    url: CLICKHOUSE_URL,
    username: "default",
    password: "",
    database,
    retention,
    log,
  });
  const clickhouseResult = await measure("clickhouse", clickhouse, rulesFile);
  await clickhouse.close();
  const admin = createClient({ url: CLICKHOUSE_URL });
  await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await admin.close();
  const peer = await prometheusPeer(dir, rulesFile);
  process.stdout.write(
    JSON.stringify({
      bench: "rules",
      target_cpu_percent: 20,
      embedded: embeddedResult,
      clickhouse: clickhouseResult,
      prometheus: peer,
      node: process.version,
    }) + "\n",
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
