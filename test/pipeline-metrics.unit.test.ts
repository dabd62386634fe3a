import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LogMetrics } from "../collector/processing/pipeline/log-metrics.js";
import { SampleKind } from "../proto/batch.js";
import { NOW_MS, stagePipeline } from "./helpers/stages.js";

// The metrics stage as Promtail documents it: counters (inc, add, match_all, count_entry_bytes, value), gauges
// (set, inc, dec, add, sub), histograms (buckets), named with the prefix, one series per stream label set, and
// written as samples: the changed series with each batch, all live ones on resend, idle ones forgotten.

function withMetrics(stages: unknown[]) {
  let now = NOW_MS;
  const logMetrics = new LogMetrics(() => now);
  const p = stagePipeline(stages, { logMetrics, now: () => now });
  const values = (all = false) => {
    const out: Record<string, number> = {};
    for (const [tenant, write] of logMetrics.take(all))
      for (const s of write.series) {
        const labels = Object.entries(s.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(",");
        out[`${tenant}/${s.name}{${labels}}`] = s.points[0]!.value;
      }
    return out;
  };
  return { ...p, logMetrics, values, advance: (ms: number) => (now += ms) };
}

describe("metrics stage", () => {
  it("counters: match_all inc, count_entry_bytes, inc on a value, add a number; per stream", async () => {
    const m = withMetrics([
      { logfmt: { mapping: { level: null, bytes: null } } },
      {
        metrics: {
          lines_total: { type: "Counter", description: "all lines", config: { match_all: true, action: "inc" } },
          line_bytes_total: { type: "counter", config: { match_all: true, count_entry_bytes: true, action: "add" } },
          errors_total: { type: "Counter", source: "level", config: { value: "error", action: "inc" } },
          sent_bytes_total: { type: "Counter", source: "bytes", prefix: "app_", config: { action: "add" } },
        },
      },
      { drop: { expression: ".*" } },
    ]);
    const out = m.run([
      { line: "level=error bytes=10", labels: { job: "a" } },
      { line: "level=info bytes=5", labels: { job: "a" } },
      { line: "level=error bytes=x", labels: { job: "b" } },
    ]);
    assert.equal(out.length, 0, "the drop stage after it drops every line");
    assert.deepEqual(m.values(), {
      "fake/bifrost_custom_lines_total{job=a}": 2,
      "fake/bifrost_custom_lines_total{job=b}": 1,
      "fake/bifrost_custom_line_bytes_total{job=a}": 38,
      "fake/bifrost_custom_line_bytes_total{job=b}": 19,
      "fake/bifrost_custom_errors_total{job=a}": 1,
      "fake/bifrost_custom_errors_total{job=b}": 1,
      "fake/app_sent_bytes_total{job=a}": 15,
    });
    assert.equal((await m.counts())["metrics/failed/not_a_number"], 1, "bytes=x is not a number");
    assert.deepEqual(m.values(), {}, "nothing changed since");
    m.run([{ line: "level=info", labels: { job: "a" } }]);
    assert.deepEqual(m.values(), {
      "fake/bifrost_custom_lines_total{job=a}": 3,
      "fake/bifrost_custom_line_bytes_total{job=a}": 48,
    });
  });

  it("gauges: set, inc, dec, add, sub", () => {
    const m = withMetrics([
      { logfmt: { mapping: { temp: null, queue: null } } },
      {
        metrics: {
          temperature: { type: "Gauge", source: "temp", config: { action: "set" } },
          queue_depth: { type: "Gauge", source: "queue", config: { action: "add" } },
          in_flight: { type: "Gauge", source: "queue", config: { value: "start", action: "inc" } },
          drained: { type: "Gauge", source: "queue", config: { action: "sub" } },
        },
      },
    ]);
    m.run([
      { line: "temp=21.5 queue=4" },
      { line: "temp=19 queue=3" },
      { line: "queue=start" },
      { line: "queue=start" },
    ]);
    assert.deepEqual(m.values(), {
      "fake/bifrost_custom_temperature{job=test}": 19,
      "fake/bifrost_custom_queue_depth{job=test}": 7,
      "fake/bifrost_custom_in_flight{job=test}": 2,
      "fake/bifrost_custom_drained{job=test}": -7,
    });
  });

  it("histograms: cumulative buckets, sum and count, as the batcher's histogram kinds", () => {
    const m = withMetrics([
      { regex: { expression: "took=(?P<took>\\S+)" } },
      { metrics: { request_seconds: { type: "Histogram", source: "took", config: { buckets: [0.1, 1, 10] } } } },
    ]);
    m.run([{ line: "took=0.05" }, { line: "took=0.5" }, { line: "took=0.7" }, { line: "took=20" }]);
    const write = m.logMetrics.take().get("fake");
    const byName = write!.series.map((s) => [s.name, s.labels["le"] ?? "", s.kind, s.points[0]!.value]);
    assert.deepEqual(byName, [
      ["bifrost_custom_request_seconds_bucket", "0.1", SampleKind.HistogramBucket, 1],
      ["bifrost_custom_request_seconds_bucket", "1", SampleKind.HistogramBucket, 3],
      ["bifrost_custom_request_seconds_bucket", "10", SampleKind.HistogramBucket, 3],
      ["bifrost_custom_request_seconds_bucket", "+Inf", SampleKind.HistogramBucket, 4],
      ["bifrost_custom_request_seconds_sum", "", SampleKind.HistogramSum, 21.25],
      ["bifrost_custom_request_seconds_count", "", SampleKind.HistogramCount, 4],
    ]);
    assert.deepEqual(write!.metadata, [
      { name: "bifrost_custom_request_seconds", type: "histogram", help: "", unit: "" },
    ]);
  });

  it("resends every live series; forgets one idle for max_idle_duration", () => {
    const m = withMetrics([
      {
        metrics: {
          seen_total: { type: "Counter", max_idle_duration: "1m", config: { match_all: true, action: "inc" } },
        },
      },
    ]);
    m.run([{ line: "a", labels: { job: "a" } }]);
    m.values();
    m.advance(30_000);
    m.run([{ line: "b", labels: { job: "b" } }]);
    m.values();
    m.advance(40_000);
    assert.deepEqual(m.values(true), { "fake/bifrost_custom_seen_total{job=b}": 1 }, "job a idle for 70 s");
  });

  it("refuses what Promtail refuses", () => {
    const bad = (metric: unknown, message: RegExp) =>
      assert.throws(() => stagePipeline([{ metrics: { m: metric } }]), message);
    bad({ type: "Counter", config: { action: "set" } }, /a counter's action is inc or add/);
    bad({ type: "Counter", config: { match_all: true, value: "x", action: "inc" } }, /exclude each other/);
    bad(
      { type: "Counter", config: { match_all: true, count_entry_bytes: true, action: "inc" } },
      /needs match_all and action add/,
    );
    bad({ type: "Gauge", config: {} }, /a gauge's action/);
    bad({ type: "Histogram", config: { buckets: [1, 0.5] } }, /increasing order/);
    bad({ type: "Summary", config: {} }, /type/);
    assert.throws(
      () =>
        withMetrics([
          { metrics: { x: { type: "Counter", config: { action: "inc" } } } },
          { metrics: { x: { type: "Gauge", config: { action: "set" } } } },
        ]),
      /already a counter/,
    );
  });
});
