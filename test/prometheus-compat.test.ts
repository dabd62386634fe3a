import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generatorURL } from "../query/ruler/group.js";
import { prometheusMissing } from "./helpers/prometheus.js";
import { runBifrost, stopChild, waitForReady } from "./helpers/processes.js";
import { CLICKHOUSE_URL, freePort, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";

// What Prometheus' own tools and clients see of Bifrost: promtool's lint of every role's /metrics, the listeners
// of `bifrost all` scraped together, and the links alerts carry.

/** `promtool check metrics` over an exposition: its exit code and what it printed. */
function promtoolCheck(exposition: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile("promtool", ["check", "metrics"], (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    );
    child.stdin!.end(exposition);
  });
}

/** Metric family names of an exposition, from its TYPE lines. */
function families(exposition: string): string[] {
  return [...exposition.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
}

describe("/metrics of every role under promtool", { skip: prometheusMissing() }, () => {
  const children: ReturnType<typeof runBifrost>[] = [];
  after(async () => {
    for (const child of children) await stopChild(child);
  });

  async function start(role: string, listenKey: string, env: Record<string, string>): Promise<string> {
    const port = await freePort();
    const child = runBifrost([role], {
      BIFROST_KAFKA__BROKERS: KAFKA_BROKERS.join(","),
      BIFROST_KAFKA__TOPIC: uniqueName("metrics_lint"),
      BIFROST_CLICKHOUSE__URL: CLICKHOUSE_URL,
      BIFROST_CLICKHOUSE__DATABASE: uniqueName("metrics_lint"),
      [listenKey]: `127.0.0.1:${port}`,
      ...env,
    });
    children.push(child);
    const url = `http://127.0.0.1:${port}`;
    await waitForReady(`${url}/metrics`, child);
    return url;
  }

  it("passes `promtool check metrics` on the collector, aggregator and query roles", async () => {
    const data = mkdtempSync(join(tmpdir(), "bifrost-lint-"));
    const roles = {
      collector: await start("collector", "BIFROST_COLLECTOR__LISTEN", {
        BIFROST_COLLECTOR__WAL__DIR: join(data, "wal"),
        BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${await freePort()}`,
        BIFROST_COLLECTOR__HOST_METRICS__ENABLED: "true",
      }),
      aggregator: await start("aggregator", "BIFROST_AGGREGATOR__LISTEN", {}),
      query: await start("query", "BIFROST_QUERY__LISTEN", {}),
    };
    const prefixes = { collector: "bifrost_collector_", aggregator: "bifrost_aggregator_", query: "bifrost_notifier_" };
    for (const [role, url] of Object.entries(roles)) {
      const exposition = await (await fetch(`${url}/metrics`)).text();
      assert.match(exposition, /^# TYPE bifrost_process_cpu_user_seconds_total counter$/m, role);
      const prefix = prefixes[role as keyof typeof prefixes];
      assert.ok(
        families(exposition).some((name) => name.startsWith(prefix)),
        `${role} serves its own metrics`,
      );
      assert.deepEqual(await promtoolCheck(exposition), { code: 0, output: "" }, role);
    }
  });

  it("serves each series once over the three listeners of `bifrost all`, the process's on the query listener", async () => {
    const data = mkdtempSync(join(tmpdir(), "bifrost-lint-all-"));
    const ports = { query: await freePort(), collector: await freePort(), aggregator: await freePort() };
    const child = runBifrost(["all"], {
      BIFROST_STORAGE__PATH: data,
      BIFROST_COLLECTOR__WAL__DIR: join(data, "wal"),
      BIFROST_QUERY__LISTEN: `127.0.0.1:${ports.query}`,
      BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${ports.collector}`,
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${await freePort()}`,
      BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${ports.aggregator}`,
    });
    children.push(child);
    const seen = new Map<string, string>();
    for (const [role, port] of Object.entries(ports)) {
      await waitForReady(`http://127.0.0.1:${port}/ready`, child);
      const exposition = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.deepEqual(await promtoolCheck(exposition), { code: 0, output: "" }, role);
      for (const name of families(exposition)) {
        assert.equal(seen.get(name), undefined, `${name} on the ${role} listener and the ${seen.get(name)} one`);
        seen.set(name, role);
        if (name.startsWith("bifrost_collector_") || name.startsWith("bifrost_input_"))
          assert.equal(role, "collector", name);
      }
    }
    assert.equal(seen.get("bifrost_process_cpu_user_seconds_total"), "query");
    assert.equal(seen.get("bifrost_nodejs_active_handles"), "query");
    assert.equal(seen.get("bifrost_collector_batches_written_total"), "collector");
    assert.equal(seen.get("bifrost_notifier_notifications_sent_total"), "query");
  });
});

describe("alerts' generatorURL", () => {
  let url: string;
  let child: ReturnType<typeof runBifrost>;
  before(async () => {
    const data = mkdtempSync(join(tmpdir(), "bifrost-graph-"));
    const port = await freePort();
    child = runBifrost(["all"], {
      BIFROST_ALL__DEMO: "false",
      BIFROST_STORAGE__PATH: data,
      BIFROST_COLLECTOR__WAL__DIR: join(data, "wal"),
      BIFROST_QUERY__LISTEN: `127.0.0.1:${port}`,
      BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${await freePort()}`,
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${await freePort()}`,
      BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${await freePort()}`,
    });
    url = `http://127.0.0.1:${port}`;
    await waitForReady(`${url}/ready`, child);
  });
  after(() => stopChild(child));

  it("leads from Prometheus' /graph link to the instant query of the rule's expression", async () => {
    // `+` and `&` in the expression survive both links.
    const promql = await fetch(generatorURL(url, "vector(40) + 2 and on() vector(1)"), { redirect: "manual" });
    assert.equal(promql.status, 303);
    const location = new URL(promql.headers.get("location")!, url);
    assert.equal(location.pathname, "/api/v1/query");
    const answer = (await (await fetch(location)).json()) as {
      status: string;
      data: { resultType: string; result: { value: [number, string] }[] };
    };
    assert.equal(answer.status, "success");
    assert.equal(answer.data.result[0]!.value[1], "42");

    const logql = await fetch(generatorURL(url, 'sum(count_over_time({app="x"}[5m]))', "logql"), {
      redirect: "manual",
    });
    assert.equal(logql.status, 303);
    const logqlLocation = new URL(logql.headers.get("location")!, url);
    assert.equal(logqlLocation.pathname, "/loki/api/v1/query");
    assert.equal(logqlLocation.searchParams.get("query"), 'sum(count_over_time({app="x"}[5m]))');
    const logqlAnswer = (await (await fetch(logqlLocation)).json()) as { status: string; data: { resultType: string } };
    assert.deepEqual([logqlAnswer.status, logqlAnswer.data.resultType], ["success", "vector"]);

    const prefixed = await fetch(`${url}/prometheus/graph?g0.expr=up&g0.tab=1`, { redirect: "manual" });
    assert.equal(prefixed.headers.get("location"), "/prometheus/api/v1/query?query=up");
    assert.equal((await fetch(`${url}/graph`, { redirect: "manual" })).status, 400);
  });
});
