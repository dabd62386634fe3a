import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { VERSION } from "../common/version.js";
import { until } from "./helpers/aggregation.js";
import { output, runBifrost, waitForReady } from "./helpers/processes.js";
import { freePort, REPO_ROOT } from "./helpers/services.js";

/** The lines of a LogQL log query over the last ten minutes. */
async function logLines(api: string, query: string): Promise<string[]> {
  const now = BigInt(Date.now()) * 1_000_000n;
  const url = `${api}/loki/api/v1/query_range?query=${encodeURIComponent(query)}&start=${now - 600_000_000_000n}&end=${now + 60_000_000_000n}`;
  const body = (await (await fetch(url)).json()) as { data: { result: { values: [string, string][] }[] } };
  return body.data.result.flatMap((s) => s.values.map(([, line]) => line));
}

/** Pushes one line as the stream {app} to the collector, and waits until the query API reads lines of that stream. */
async function pushAndReadBack(collector: string, api: string, app: string, line: string): Promise<string[]> {
  const pushed = await fetch(`${collector}/loki/api/v1/push`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ streams: [{ stream: { app }, values: [[String(BigInt(Date.now()) * 1_000_000n), line]] }] }),
  });
  assert.equal(pushed.status, 204);
  let lines: string[] = [];
  await until("the pushed line through the Loki API", async () => {
    lines = await logLines(api, `{app="${app}"}`);
    return lines.length > 0;
  });
  return lines;
}

describe("bifrost CLI", () => {
  it("`all` serves every listener, carries a push through to the Loki API, and stops cleanly on SIGTERM", async () => {
    const [query, collector, aggregator, grpc] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const data = mkdtempSync(join(tmpdir(), "bifrost-all-"));
    const child = runBifrost(["all"], {
      BIFROST_STORAGE__PATH: data,
      BIFROST_COLLECTOR__WAL__DIR: join(data, "wal"),
      BIFROST_QUERY__LISTEN: `127.0.0.1:${query}`,
      BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${collector}`,
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${grpc}`,
      BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${aggregator}`,
    });
    const result = output(child);
    try {
      for (const port of [query, collector, aggregator]) {
        const ready = await waitForReady(`http://127.0.0.1:${port}/ready`, child);
        assert.equal(ready.status, 200);
        assert.equal(await ready.text(), "ready\n");
        const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
        assert.equal(metrics.status, 200);
        assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
        // The process's own metrics on the query listener only (test/prometheus-compat.test.ts checks the rest).
        const processMetrics = /^# TYPE bifrost_process_cpu_user_seconds_total counter$/m.test(await metrics.text());
        assert.equal(processMetrics, port === query);
      }
      const buildinfo = await (await fetch(`http://127.0.0.1:${query}/loki/api/v1/status/buildinfo`)).json();
      assert.equal((buildinfo as { version: string }).version, VERSION);
      assert.deepEqual(
        await pushAndReadBack(
          `http://127.0.0.1:${collector}`,
          `http://127.0.0.1:${query}`,
          "cli-test",
          "hello from the all-in-one mode",
        ),
        ["hello from the all-in-one mode"],
      );
    } finally {
      child.kill("SIGTERM");
    }
    const { code, stdout, stderr } = await result;
    assert.equal(code, 0, stderr);
    assert.match(stderr, new RegExp(`Grafana: a Loki data source with URL http://127\\.0\\.0\\.1:${query}`));
    assert.ok(stderr.includes(`data           embedded store (DuckDB) at ${join(data, "bifrost.duckdb")}`), stderr);
    const logs = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(logs.some((l) => l.msg === "listening" && l.component === "query"));
    assert.ok(logs.some((l) => l.msg === "stopping" && l.signal === "SIGTERM"));
  });

  it("`npm install && npm start` in a fresh clone shows pushed logs, the demo's host metrics and its sample rules", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-clone-"));
    await promisify(execFile)("git", ["clone", "--quiet", REPO_ROOT, dir]);
    const [query, collector, aggregator, grpc] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    // Only the ports differ from a newcomer's run, so that other tests on this machine do not collide with it.
    const child = spawn("bash", ["-c", "npm install --no-audit --no-fund --prefer-offline && npm start"], {
      cwd: dir,
      env: {
        ...process.env,
        BIFROST_QUERY__LISTEN: `127.0.0.1:${query}`,
        BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${collector}`,
        BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${grpc}`,
        BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${aggregator}`,
      },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group: npm, its scripts and bifrost are stopped together.
      detached: true,
    });
    const result = output(child);
    const api = `http://127.0.0.1:${query}`;
    try {
      // npm install fetches from the registry or the local cache, and npm start compiles first.
      const ready = await waitForReady(`${api}/ready`, child, 200, 900_000);
      assert.equal(ready.status, 200);
      assert.deepEqual(await pushAndReadBack(`http://127.0.0.1:${collector}`, api, "newcomer", "hello, Bifrost"), [
        "hello, Bifrost",
      ]);
      let memory: { metric: Record<string, string>; value: [number, string] }[] = [];
      await until("the demo's host metrics through the Prometheus API", async () => {
        const body = (await (await fetch(`${api}/api/v1/query?query=node_memory_MemTotal_bytes`)).json()) as {
          data: { result: typeof memory };
        };
        memory = body.data.result;
        return memory.length > 0;
      });
      assert.equal(memory.length, 1);
      assert.equal(memory[0]!.metric["node"], "local");
      assert.ok(Number(memory[0]!.value[1]) > 0);
      const rules = (await (await fetch(`${api}/api/v1/rules`)).json()) as {
        data: { groups: { name: string; rules: { name: string; type: string }[] }[] };
      };
      assert.deepEqual(
        rules.data.groups.map((g) => [g.name, g.rules.map((r) => r.name)]),
        [
          ["demo-host", ["node:cpu_busy:ratio_rate1m", "node:memory_available:ratio", "DemoMemoryLow"]],
          ["demo-logs", ["bifrost:log_lines:rate1m", "BifrostLogsErrors"]],
        ],
      );
      await until(
        "Bifrost's own logs through the Loki API",
        async () => (await logLines(api, '{job="bifrost", component="query"} |= "listening"')).length > 0,
      );
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, "SIGTERM");
    }
    const { stderr } = await result;
    // The clone holds a whole node_modules; a process of the group may still be finishing its last write into it.
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    assert.ok(
      stderr.includes(`data           embedded store (DuckDB) at ${join(dir, ".bifrost", "data", "bifrost.duckdb")}`),
      stderr,
    );
    assert.match(stderr, new RegExp(`Grafana: a Loki data source with URL ${api.replaceAll(".", "\\.")}`));
    assert.match(
      stderr,
      /demo {11}host metrics of this machine every 15 s; Bifrost's own logs as \{job="bifrost"\}; rules of .*demo\.yaml \(BIFROST_ALL__DEMO=false turns it off\)/,
    );
    assert.match(stderr, /^Try it:$/m);
  });

  it("`query` against an unreachable ClickHouse starts, says why it is not ready, and stops cleanly", async () => {
    const port = await freePort();
    const child = runBifrost(["query"], {
      BIFROST_QUERY__LISTEN: `127.0.0.1:${port}`,
      BIFROST_CLICKHOUSE__URL: `http://127.0.0.1:${await freePort()}`,
    });
    const result = output(child);
    try {
      const ready = await waitForReady(`http://127.0.0.1:${port}/ready`, child, 503);
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), /^not ready:\nstore: (schema migration has not finished|database unreachable)/);
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal((await result).code, 0);
  });

  it("refuses a bad configuration, naming the key and the variable that set it", async () => {
    const { code, stderr } = await output(
      runBifrost(["query", "--check-config"], { BIFROST_KAFKA__BROKERS: "no-port" }),
    );
    assert.equal(code, 2);
    assert.match(stderr, /kafka\.brokers\[0\]: expected host:port.*\(set by BIFROST_KAFKA__BROKERS\)/);
  });

  it("prints the effective configuration with --check-config", async () => {
    const { code, stdout } = await output(runBifrost(["collector", "--check-config"], { BIFROST_NODE__ID: "edge-7" }));
    assert.equal(code, 0);
    assert.equal((JSON.parse(stdout) as { node: { id: string } }).node.id, "edge-7");
  });

  it("explains its usage when the role is missing or unknown", async () => {
    for (const args of [[], ["frobnicate"], ["all", "extra"], ["all", "--no-such-flag"]]) {
      const { code, stderr } = await output(runBifrost(args));
      assert.equal(code, 2, args.join(" "));
      assert.match(stderr, /Usage: bifrost <collector\|aggregator\|query\|fleet\|all>/);
    }
  });
});
