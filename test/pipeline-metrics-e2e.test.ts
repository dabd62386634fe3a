import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { runBifrost, stopChild, waitForReady } from "./helpers/processes.js";
import { freePort } from "./helpers/services.js";
import { until } from "./helpers/wait.js";

// Metrics from logs end to end in `bifrost all`: pushed lines are counted by a metrics stage and then all
// dropped by a drop stage; the counters and the histogram, shipped as the collector's own samples, answer
// through the Prometheus API with the right values, and no line is stored.
describe("metrics stage end to end", () => {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-log-metrics-"));
  let bifrost: ChildProcess | undefined;
  after(async () => {
    if (bifrost) await stopChild(bifrost);
    rmSync(dir, { recursive: true, force: true });
  });

  it("counts lines that a later drop stage drops, queryable through /api/v1/query", async () => {
    const [collector, query, aggregator] = [await freePort(), await freePort(), await freePort()];
    const config = {
      log: { level: "warn" },
      all: { demo: false },
      node: { id: "edge-metrics" },
      collector: {
        listen: `127.0.0.1:${collector}`,
        otlp: { grpc_enabled: false },
        wal: { dir: join(dir, "wal") },
        batch: { max_age_ms: 100 },
        push_pipeline_stages: [
          { logfmt: { mapping: { level: null, took: null } } },
          {
            metrics: {
              lines_total: { type: "Counter", description: "pushed lines", config: { match_all: true, action: "inc" } },
              errors_total: { type: "Counter", source: "level", config: { value: "error", action: "inc" } },
              took_seconds: { type: "Histogram", source: "took", config: { buckets: [0.1, 1] } },
            },
          },
          { drop: { expression: ".*", drop_counter_reason: "counted_only" } },
        ],
      },
      aggregator: { listen: `127.0.0.1:${aggregator}` },
      query: { listen: `127.0.0.1:${query}` },
      storage: { path: join(dir, "store") },
    };
    writeFileSync(join(dir, "bifrost.yaml"), stringify(config));
    bifrost = runBifrost(["all", "--config", join(dir, "bifrost.yaml")]);
    bifrost.stdout!.resume();
    let stderr = "";
    bifrost.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const queryUrl = `http://127.0.0.1:${query}`;
    await waitForReady(`${queryUrl}/ready`, bifrost, 200, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${stderr}`);
    });

    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const lines = Array.from({ length: 37 }, (_, i) => `level=${i % 4 === 0 ? "error" : "info"} took=${i / 10} n=${i}`);
    const push = await fetch(`http://127.0.0.1:${collector}/loki/api/v1/push`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        streams: [{ stream: { job: "app" }, values: lines.map((line, i) => [String(nowNs + BigInt(i)), line]) }],
      }),
    });
    assert.equal(push.status, 204);

    const instant = async (promql: string) => {
      const response = await fetch(`${queryUrl}/api/v1/query?${new URLSearchParams({ query: promql })}`);
      const body = (await response.json()) as {
        status: string;
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      assert.equal(body.status, "success");
      return body.data.result;
    };
    const value = async (promql: string) => (await instant(promql)).map((r) => Number(r.value[1]));
    await until("the counter queryable", async () => (await value("bifrost_custom_lines_total")).length > 0, 60_000);
    const [series] = await instant("bifrost_custom_lines_total");
    assert.equal(series!.metric["job"], "app");
    assert.equal(series!.metric["node"], "edge-metrics");
    assert.deepEqual(await value("bifrost_custom_lines_total"), [37]);
    assert.deepEqual(await value("bifrost_custom_errors_total"), [10]);
    assert.deepEqual(await value('bifrost_custom_took_seconds_bucket{le="1"}'), [11]);
    assert.deepEqual(await value("bifrost_custom_took_seconds_count"), [37]);
    assert.deepEqual(
      await value("histogram_quantile(0.5, bifrost_custom_took_seconds_bucket)").then((v) => v.length),
      1,
    );

    const logs = await fetch(
      `${queryUrl}/loki/api/v1/query_range?${new URLSearchParams({ query: '{job="app"}', start: String(nowNs - 60_000_000_000n), end: String(nowNs + 60_000_000_000n) })}`,
    );
    const logBody = (await logs.json()) as { data: { result: unknown[] } };
    assert.deepEqual(logBody.data.result, [], "every line was dropped");
  });
});
