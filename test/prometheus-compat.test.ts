import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { SampleKind } from "../proto/batch.js";
import { generatorURL } from "../query/ruler/group.js";
import { prometheusMissing, type RunningPrometheus, startPrometheus } from "./helpers/prometheus.js";
import { type AllInOne, runBifrost, startAllInOne, stopChild, waitForReady } from "./helpers/processes.js";
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

  it("passes `promtool check metrics` on the collector, aggregator, query and fleet roles", async () => {
    const data = mkdtempSync(join(tmpdir(), "bifrost-lint-"));
    const roles = {
      collector: await start("collector", "BIFROST_COLLECTOR__LISTEN", {
        BIFROST_COLLECTOR__WAL__DIR: join(data, "wal"),
        BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${await freePort()}`,
        BIFROST_COLLECTOR__HOST_METRICS__ENABLED: "true",
      }),
      aggregator: await start("aggregator", "BIFROST_AGGREGATOR__LISTEN", {}),
      query: await start("query", "BIFROST_QUERY__LISTEN", {}),
      fleet: await start("fleet", "BIFROST_FLEET__LISTEN", {}),
    };
    const prefixes = {
      collector: "bifrost_collector_",
      aggregator: "bifrost_aggregator_",
      query: "bifrost_notifier_",
      fleet: "bifrost_fleet_",
    };
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

  it("serves each series once over the four listeners of `bifrost all`, the process's on the query listener", async () => {
    const data = mkdtempSync(join(tmpdir(), "bifrost-lint-all-"));
    const ports = {
      query: await freePort(),
      collector: await freePort(),
      aggregator: await freePort(),
      fleet: await freePort(),
    };
    const child = runBifrost(["all"], {
      BIFROST_STORAGE__PATH: data,
      BIFROST_COLLECTOR__WAL__DIR: join(data, "wal"),
      BIFROST_QUERY__LISTEN: `127.0.0.1:${ports.query}`,
      BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${ports.collector}`,
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${await freePort()}`,
      BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${ports.aggregator}`,
      BIFROST_FLEET__LISTEN: `127.0.0.1:${ports.fleet}`,
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
    assert.equal(seen.get("bifrost_fleet_connections"), "fleet");
  });
});

async function api(base: string, path: string, init?: RequestInit): Promise<{ status: number; body: unknown }> {
  const response = await fetch(base + path, init);
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

describe("the Prometheus API beyond queries", () => {
  let bifrost: { url: string; child: AllInOne["child"] };
  before(async () => {
    const started = await startAllInOne({ BIFROST_CLICKHOUSE__PASSWORD: "hunter2-is-not-shown" });
    bifrost = { url: started.query, child: started.child };
  });
  after(() => stopChild(bifrost.child));

  it("leads from alerts' generatorURL, Prometheus' /graph link, to the instant query of the rule's expression", async () => {
    const { url } = bifrost;
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

  it("answers status/buildinfo as a Prometheus without Mimir's features, so Grafana treats it as one", async () => {
    for (const prefix of ["", "/prometheus"]) {
      const { status, body } = await api(bifrost.url, `${prefix}/api/v1/status/buildinfo`);
      assert.equal(status, 200);
      const data = (body as { status: string; data: Record<string, string> }).data;
      assert.deepEqual(Object.keys(data).sort(), [
        "branch",
        "buildDate",
        "buildUser",
        "goVersion",
        "revision",
        "version",
      ]);
      assert.equal(data["version"], "2.42.0");
      assert.match(data["revision"]!, /^bifrost-\d+\.\d+\.\d+/);
    }
  });

  it("answers status/config with the effective configuration as YAML, credentials hidden", async () => {
    const { status, body } = await api(bifrost.url, "/api/v1/status/config");
    assert.equal(status, 200);
    const { yaml } = (body as { data: { yaml: string } }).data;
    assert.ok(!yaml.includes("hunter2"), "the ClickHouse password is not shown");
    const config = parse(yaml) as { clickhouse: { password: string }; query: { listen: string } };
    assert.equal(config.clickhouse.password, "<secret>");
    assert.equal(config.query.listen, new URL(bifrost.url).host);
  });

  it("answers query_exemplars with no exemplars, and refuses bad parameters as Prometheus does", async () => {
    const cases: [string, number, unknown][] = [
      ["query=up&start=0&end=1", 200, { status: "success", data: [] }],
      ["query=rate(up%5B5m%5D)", 200, { status: "success", data: [] }],
      ["query=1", 204, undefined],
      [
        "start=abc",
        400,
        {
          status: "error",
          errorType: "bad_data",
          error: `invalid parameter "start": Invalid time value for 'start': cannot parse "abc" to a valid timestamp`,
        },
      ],
      [
        "query=up&start=5&end=1",
        400,
        { status: "error", errorType: "bad_data", error: "end timestamp must not be before start timestamp" },
      ],
      ["", 400, { status: "error", errorType: "bad_data", error: "1:1: parse error: no expression found in input" }],
    ];
    for (const [query, status, body] of cases) {
      assert.deepEqual(await api(bifrost.url, `/api/v1/query_exemplars?${query}`), { status, body }, query);
    }
  });

  describe("side by side with Debian's Prometheus", { skip: prometheusMissing() }, () => {
    let prometheus: RunningPrometheus;
    before(async () => {
      const series = [
        { name: "up", labels: { job: "x" }, kind: SampleKind.Gauge, points: [{ timeUnixMs: 0, value: 1 }] },
      ];
      prometheus = await startPrometheus(mkdtempSync(join(tmpdir(), "bifrost-compat-prom-")), series);
    });
    after(() => prometheus?.stop());

    it("formats queries for format_query as Prometheus does, one line or split past 100 bytes", async () => {
      const long = 'sum by (job) (rate(http_requests_total{job="api",code=~"5.."}[5m]))';
      const queries = [
        "sum(rate(x[5m]))by(job)",
        `${long} / sum by (job) (rate(http_requests_total{job="api"}[5m])) > 0.05 and on (job) up == 1`,
        "a+b*c",
        "(a + b) * c",
        "2 ^ 3 ^ 4",
        "x offset 5m",
        "x offset -90s",
        "x @ 100",
        "x[5m] offset 1m @ 100.5",
        "x @ start()",
        "x[1h] @ end()",
        '{__name__="x"}',
        '{__name__=~"x.*",job="a"}',
        'x{b="2",a="1",c!~"z|é"}',
        'x{a="quote \\" backslash \\\\ newline \\n"}',
        "topk(3, x)",
        'count_values("v", x)',
        "quantile(0.9, x)",
        "sum without (a, b) (x)",
        "sum by () (x)",
        "histogram_quantile(0.9, rate(a_bucket[1m:30s]))",
        "x[5m:]",
        "rate(x[5m])[30m:1m] offset 5m",
        "max_over_time(x[90m]) + max_over_time(x[1d]) + max_over_time(x[2w]) + max_over_time(x[10d]) + max_over_time(x[1y])",
        "-x",
        "-(x + 1)",
        "+x",
        "-1",
        "1 + 2",
        "a > bool 1",
        "a / on (job) group_left (instance) b",
        "a / ignoring (job) group_right b",
        "a and on () b",
        "a unless ignoring (x) b",
        'label_replace(up, "foo", "$1", "bar", "(.*)")',
        "1e6 + 0.00001 + 123456789 + 0x10 + 1.5e-7 + Inf + -Inf + NaN + 100000",
        "clamp(x, 0, 1) + time() + scalar(vector(1))",
        `topk(5, ${long} * on (job) group_left (team) max by (job, team) (team_info{cluster="eu-west-1"}))`,
        `clamp_max(${long}, scalar(max(${long})))`,
        `-(${long} + ${long})`,
        `(${long} + ${long})[30m:1m]`,
        `(${long} + ${long})`,
      ];
      for (const query of queries) {
        const path = `/api/v1/format_query?${new URLSearchParams({ query })}`;
        const [ours, theirs] = [await api(bifrost.url, path), await api(prometheus.url, path)];
        assert.deepEqual(ours, theirs, query);
      }
      const post = await fetch(`${bifrost.url}/api/v1/format_query`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ query: "sum(x)by(a)" }),
      });
      assert.deepEqual(await post.json(), { status: "success", data: "sum by (a) (x)" });
    });

    it("refuses queries format_query cannot parse as Prometheus does", async () => {
      for (const query of ["", "sum(", "x +"]) {
        const path = `/api/v1/format_query?${new URLSearchParams({ query })}`;
        assert.deepEqual(await api(bifrost.url, path), await api(prometheus.url, path), query);
      }
    });

    it("answers status/flags and status/runtimeinfo with Prometheus' names and value formats", async () => {
      const [ours, theirs] = [
        await api(bifrost.url, "/api/v1/status/flags"),
        await api(prometheus.url, "/api/v1/status/flags"),
      ];
      const flags = (ours.body as { data: Record<string, string> }).data;
      const theirFlags = (theirs.body as { data: Record<string, string> }).data;
      for (const [name, value] of Object.entries(flags)) {
        assert.ok(name in theirFlags, `Prometheus has a flag ${name}`);
        assert.equal(typeof value, "string", name);
      }
      assert.equal(flags["query.lookback-delta"], theirFlags["query.lookback-delta"]);
      assert.equal(flags["query.max-samples"], theirFlags["query.max-samples"]);
      assert.equal(flags["query.timeout"], "1m");
      assert.equal(flags["rules.alert.for-outage-tolerance"], theirFlags["rules.alert.for-outage-tolerance"]);
      assert.equal(flags["storage.tsdb.retention.time"], "15d");

      const runtime = (await api(bifrost.url, "/api/v1/status/runtimeinfo")).body as {
        data: Record<string, unknown>;
      };
      const theirRuntime = (await api(prometheus.url, "/api/v1/status/runtimeinfo")).body as {
        data: Record<string, unknown>;
      };
      assert.deepEqual(
        Object.entries(runtime.data).map(([k, v]) => [k, typeof v]),
        Object.entries(theirRuntime.data).map(([k, v]) => [k, typeof v]),
      );
      assert.equal(runtime.data["storageRetention"], "15d");
      assert.ok(Date.parse(runtime.data["startTime"] as string) <= Date.now());
      assert.match(runtime.data["lastConfigTime"] as string, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      assert.ok((runtime.data["GOMAXPROCS"] as number) >= 1);

      const buildinfo = (await api(prometheus.url, "/api/v1/status/buildinfo")).body as { data: object };
      const ourBuildinfo = (await api(bifrost.url, "/api/v1/status/buildinfo")).body as { data: object };
      assert.deepEqual(Object.keys(ourBuildinfo.data).sort(), Object.keys(buildinfo.data).sort());
      const config = (await api(prometheus.url, "/api/v1/status/config")).body as { data: object };
      assert.deepEqual(Object.keys(config.data), ["yaml"]);
    });
  });
});
