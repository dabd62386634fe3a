#!/usr/bin/env node
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { ALL_IN_ONE, ALL_IN_ONE_STORE, applyDemo } from "./all.js";
import { type Config, loadConfig } from "./config.js";
import { ConfigError } from "./common/config.js";
import { createLogger, LogTap } from "./common/log.js";
import { createRegistry } from "./common/metrics.js";
import { VERSION } from "./common/version.js";
import type { Runtime, Running, Start } from "./runtime.js";
import { startTelemetry } from "./common/telemetry.js";

// Each role loads only its own modules: an edge collector does not carry the store engines (DuckDB's native
// library among them), the query engines or the aggregator's workers in its memory. `all` is wired in all.ts.
const ROLES: Record<"collector" | "aggregator" | "query" | "fleet" | "all", Start[]> = {
  collector: [async (runtime) => (await import("./collector/agent/index.js")).startManagedCollector(runtime)],
  aggregator: [async (runtime) => (await import("./aggregator/index.js")).startAggregator(runtime)],
  query: [async (runtime) => (await import("./query/index.js")).startQuery(runtime)],
  fleet: [async (runtime) => (await import("./fleet/index.js")).startFleet(runtime)],
  all: ALL_IN_ONE,
};
type Role = keyof typeof ROLES;

const USAGE = `Usage: bifrost <collector|aggregator|query|fleet|all> [--config file.yaml] [--check-config]
       bifrost fleet <plan|status> [options]     (bifrost fleet plan --help)
       bifrost --version

  collector   edge node: receivers, disk buffer, shipping to Kafka
  aggregator  region: Kafka consumer group, downsampling, writes to ClickHouse
  query       center: Loki and Prometheus APIs, rules, alerts, self-healing
  fleet       center: OpAMP server of the collector fleet, GitOps configuration, staged rollouts
  all         every part in one process (what \`npm start\` runs)

  --config FILE     YAML configuration (see README "Configuration"); BIFROST_<SECTION>__<KEY> overrides it
  --check-config    validate the configuration (and for query and all, the rule files), print it as JSON, and exit
`;

function fail(message: string, code = 2): never {
  process.stderr.write(`bifrost: ${message}\n`);
  process.exit(code);
}

function parseCommandLine(argv: string[]): { role: Role; configFile?: string; checkOnly: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        "check-config": { type: "boolean", default: false },
        version: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (values.version) {
    process.stdout.write(`bifrost ${VERSION}\n`);
    process.exit(0);
  }
  const [role, ...extra] = positionals;
  if (role === undefined || !(role in ROLES)) fail(`expected a role, got ${role ?? "none"}\n\n${USAGE}`);
  if (extra.length > 0) fail(`unexpected arguments: ${extra.join(" ")}\n\n${USAGE}`);
  return { role: role as Role, configFile: values.config, checkOnly: values["check-config"] };
}

function banner(config: Config, role: Role, started: Running[], storage: string, demo: string[]): string {
  const at = (role: string) => started.find((r) => r.role === role)?.address.url;
  const lines = [`Bifrost ${VERSION} is running.`];
  const query = at("query");
  const collector = at("collector");
  if (query) {
    lines.push(
      `  query API      ${query}   (Grafana: a Loki data source with URL ${query}, a Prometheus one with ${query}/prometheus)`,
    );
    lines.push(`  ready, metrics ${query}/ready  ${query}/metrics`);
  }
  if (collector) {
    const routes = [
      "POST /loki/api/v1/push",
      ...(config.collector.otlp.http_enabled ? ["/v1/logs", "/v1/metrics"] : []),
    ];
    lines.push(`  collector      ${collector}   (${[...routes, "/ready", "/metrics"].join(", ")})`);
  }
  const otlpGrpc = started.find((r) => r.role === "collector")?.otlpGrpc;
  if (otlpGrpc) lines.push(`  OTLP gRPC      ${otlpGrpc.url}   (logs, metrics)`);
  const aggregator = at("aggregator");
  if (aggregator) lines.push(`  aggregator     ${aggregator}   (/ready, /metrics)`);
  const fleetUrl = at("fleet");
  if (fleetUrl)
    lines.push(
      `  fleet (OpAMP)  ${fleetUrl}   (agents: ${fleetUrl.replace(/^http/, "ws")}/v1/opamp; bifrost fleet status)`,
    );
  if (storage) lines.push(`  data           ${storage}`);
  if (role === "collector" || role === "aggregator")
    lines.push(`  Kafka          ${config.kafka.brokers.join(", ")}, topic ${config.kafka.topic}`);
  if (demo.length > 0) {
    lines.push(`  demo           ${demo.join("; ")} (BIFROST_ALL__DEMO=false turns it off)`);
  }
  if (role === "all" && query && collector) {
    const tenant = config.auth.enabled ? ` -H 'X-Scope-OrgID: <tenant>' -u '<tenant>:<token>'` : "";
    lines.push(
      "Try it:",
      `  curl -s${tenant} -XPOST ${collector}/loki/api/v1/push -H 'Content-Type: application/json' \\`,
      `    -d '{"streams":[{"stream":{"app":"hello"},"values":[["'"$(date +%s%N)"'","hello, Bifrost"]]}]}'`,
      `  curl -sG${tenant} ${query}/loki/api/v1/query_range --data-urlencode 'query={app="hello"}'`,
      `  curl -sG${tenant} ${query}/api/v1/query --data-urlencode 'query=node_load1'`,
      `  curl -s${tenant} ${query}/api/v1/rules`,
    );
  }
  return lines.join("\n") + "\n";
}

async function main(): Promise<void> {
  const [first, second] = process.argv.slice(2);
  if (first === "fleet" && (second === "plan" || second === "status")) {
    process.exitCode = await (await import("./fleet/cli.js")).fleetCommand(process.argv.slice(4), second);
    return;
  }
  const { role, configFile, checkOnly } = parseCommandLine(process.argv.slice(2));
  let config: Config;
  try {
    config = loadConfig({ file: configFile });
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  if (checkOnly) {
    if (role === "query" || role === "all") {
      const problems = (await import("./query/ruler/check.js")).checkRuleFiles(config);
      if (problems.length > 0) fail(`invalid rule files:\n  - ${problems.join("\n  - ")}`);
    }
    process.stdout.write(JSON.stringify(config, null, 2) + "\n");
    return;
  }
  const demo = role === "all" && config.all.demo ? applyDemo(config) : [];
  const ownLogs = demo.length > 0 ? new LogTap() : undefined;
  const log = createLogger(config.log.level, { role }, ownLogs);
  const runtime: Runtime = {
    config,
    configFile,
    log,
    registry: createRegistry(),
    storeReadiness: () => null,
    storeMigrated: Promise.resolve(),
    ...(ownLogs ? { ownLogs } : {}),
  };
  let storage = "";
  const cleanups: (() => Promise<void> | void)[] = [];
  if (role !== "collector") {
    const { openStore, scheduleRetention, StoreStartup } = await import("./storage/open.js");
    const opened = openStore(
      config,
      role === "all" ? ALL_IN_ONE_STORE : "clickhouse",
      log.child({ component: "store" }),
    );
    const startup = new StoreStartup(opened.store, log.child({ component: "store" }));
    runtime.store = opened.store;
    runtime.storeReadiness = () => startup.readiness();
    runtime.storeMigrated = startup.done;
    storage =
      opened.engine === "embedded"
        ? `embedded store (DuckDB) at ${resolve(opened.where)}`
        : `ClickHouse at ${opened.where}`;
    if (opened.engine === "embedded") {
      void startup.done.then(() => {
        if (startup.readiness() === null) cleanups.push(scheduleRetention(opened.store, log));
      });
    }
    cleanups.push(
      () => startup.stop(),
      () => opened.store.close(),
    );
  }
  const telemetry = await startTelemetry(config.telemetry, role, log);
  const started: Running[] = [];
  const stop = async (signal: string) => {
    log.info({ signal }, "stopping");
    for (const component of started.reverse()) await component.stop();
    for (const cleanup of cleanups.reverse()) await cleanup();
    await telemetry.shutdown();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
  for (const start of ROLES[role]) started.push(await start(runtime));
  process.stderr.write(banner(config, role, started, storage, demo));
}

main().catch((err: unknown) => {
  process.stderr.write(`bifrost: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
