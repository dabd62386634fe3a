import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Hono } from "hono";
import { Batcher } from "../collector/buffer/batcher.js";
import { DeltaRefusal, DeltaToCumulative } from "../collector/receivers/otlp-delta.js";
import { otlpHttpRoutes } from "../collector/receivers/otlp-http.js";
import { otlpMetricsOptions } from "../collector/receivers/otlp-metrics.js";
import { Wal } from "../collector/buffer/wal.js";
import { Authenticator } from "../common/auth.js";
import { TenantLimits } from "../common/limits.js";
import { TenantRateLimiter } from "../common/rate-limit.js";
import { configSchema } from "../config.js";
import { decodeBatch } from "../proto/codec.js";
import { receiverContract } from "./helpers/contract.js";

// Delta temporality made cumulative (collector/receivers/otlp-delta.ts), as the OpenTelemetry Collector's
// deltatocumulative processor defines it, and its interplay with refused exports: a refused export is sent
// again, so its deltas must not stay counted.

const S = 1_000_000_000n;

function sum(result: ReturnType<DeltaToCumulative["addNumber"]>): number | string {
  return result instanceof DeltaRefusal ? result.kind : result.value;
}

describe("delta to cumulative", () => {
  it("sums a series' deltas from its first point, refusing points older than the series or not newer than its last", () => {
    const state = new DeltaToCumulative({ maxStreams: 10, maxStaleMs: 60_000 });
    assert.equal(sum(state.addNumber("a", 10n * S, 20n * S, 3)), 3);
    assert.equal(sum(state.addNumber("a", 20n * S, 30n * S, 4)), 7);
    // A gap between deltas (nothing measured meanwhile) still adds up.
    assert.equal(sum(state.addNumber("a", 40n * S, 50n * S, 1)), 8);
    assert.equal(sum(state.addNumber("a", 40n * S, 50n * S, 1)), "delta_out_of_order", "a resent point");
    assert.equal(sum(state.addNumber("a", 5n * S, 60n * S, 1)), "delta_out_of_order", "starts before the series");
    assert.equal(sum(state.addNumber("b", 10n * S, 20n * S, 2)), 2, "series are apart");
    assert.equal(sum(state.addNumber("a", 50n * S, 60n * S, 2)), 10);
  });

  it("adds histogram buckets, count and sum, and starts over when the bounds change", () => {
    const state = new DeltaToCumulative({ maxStreams: 10, maxStaleMs: 60_000 });
    const h = (bounds: number[], counts: number[], total: number, s: number | undefined) => ({
      bounds,
      counts,
      count: total,
      sum: s,
    });
    state.addHistogram("h", 0n, 10n * S, h([1, 5], [1, 2, 0], 3, 6));
    const second = state.addHistogram("h", 10n * S, 20n * S, h([1, 5], [0, 1, 1], 2, 9));
    assert.ok(!(second instanceof DeltaRefusal));
    assert.deepEqual(second.value, h([1, 5], [1, 3, 1], 5, 15));
    const withoutSum = state.addHistogram("h", 20n * S, 30n * S, h([1, 5], [1, 0, 0], 1, undefined));
    assert.ok(!(withoutSum instanceof DeltaRefusal));
    assert.deepEqual(withoutSum.value, h([1, 5], [2, 3, 1], 6, undefined), "a sum missing once is unknown after");
    const rebucketed = state.addHistogram("h", 30n * S, 40n * S, h([2], [4, 1], 5, 7));
    assert.ok(!(rebucketed instanceof DeltaRefusal));
    assert.deepEqual(rebucketed.value, h([2], [4, 1], 5, 7));
  });

  it("holds at most maxStreams series, forgets idle ones after maxStaleMs, and a forgotten series starts over", () => {
    let now = 0;
    const state = new DeltaToCumulative({ maxStreams: 2, maxStaleMs: 60_000, now: () => now });
    state.addNumber("a", 0n, 1n * S, 5);
    state.addNumber("b", 0n, 1n * S, 1);
    const refused = state.addNumber("c", 0n, 1n * S, 1);
    assert.ok(refused instanceof DeltaRefusal && refused.kind === "delta_streams_full");
    now = 30_000;
    assert.equal(sum(state.addNumber("a", 1n * S, 2n * S, 1)), 6, "a known series is not refused");
    now = 70_000;
    assert.equal(sum(state.addNumber("c", 0n, 3n * S, 1)), 1, "b went idle and made room");
    assert.equal(state.size, 2);
    now = 200_000;
    state.expire();
    assert.equal(state.size, 0);
    assert.equal(sum(state.addNumber("a", 2n * S, 4n * S, 2)), 2, "after expiry a series starts over");
  });

  it("takes a point back out: the state before it, or only its delta when a later point came since", () => {
    const state = new DeltaToCumulative({ maxStreams: 10, maxStaleMs: 60_000 });
    const first = state.addNumber("a", 0n, 1n * S, 5);
    assert.ok(!(first instanceof DeltaRefusal));
    first.undo();
    assert.equal(state.size, 0, "a series made by the point is gone");
    state.addNumber("a", 0n, 1n * S, 5);
    const refusedLater = state.addNumber("a", 1n * S, 2n * S, 3);
    assert.ok(!(refusedLater instanceof DeltaRefusal));
    refusedLater.undo();
    assert.equal(sum(state.addNumber("a", 1n * S, 2n * S, 3)), 8, "the same point again counts once");
    const undone = state.addNumber("a", 2n * S, 3n * S, 10);
    assert.ok(!(undone instanceof DeltaRefusal));
    state.addNumber("a", 3n * S, 4n * S, 1);
    undone.undo();
    assert.equal(sum(state.addNumber("a", 4n * S, 5n * S, 0)), 9, "5 + 3 + 1 without the 10");
  });
});

interface MessageType {
  fromObject(o: object): object;
  encode(m: object): { finish(): Uint8Array };
}
const MetricsRequest = (
  createRequire(import.meta.url)("otlp-transformer-protobufjs/build/src/generated/root.js") as {
    opentelemetry: { proto: { collector: { metrics: { v1: Record<string, MessageType> } } } };
  }
).opentelemetry.proto.collector.metrics.v1["ExportMetricsServiceRequest"]!;

/** One delta counter point, and optionally a gauge whose label value breaks the limit. */
function deltaExport(startS: number, timeS: number, value: number, badGauge = false): Uint8Array {
  const point = (t: number) => ({ startTimeUnixNano: `${startS}000000000`, timeUnixNano: `${t}000000000` });
  const metrics: object[] = [
    {
      name: "jobs",
      sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: [{ ...point(timeS), asInt: value }] },
    },
  ];
  if (badGauge)
    metrics.push({
      name: "g",
      gauge: {
        dataPoints: [
          { ...point(timeS), asDouble: 1, attributes: [{ key: "a", value: { stringValue: "x".repeat(3000) } }] },
        ],
      },
    });
  const request = {
    resourceMetrics: [
      {
        resource: { attributes: [{ key: "service.name", value: { stringValue: "worker" } }] },
        scopeMetrics: [{ metrics }],
      },
    ],
  };
  return MetricsRequest.encode(MetricsRequest.fromObject(request)).finish();
}

describe("delta exports the receiver refuses", () => {
  it("leave the state as before, so that the export sent again is counted once", async () => {
    const config = configSchema().parse({ collector: { limits: { rate_entries_per_s: 1, burst_entries: 1 } } });
    const wal = Wal.open({
      dir: mkdtempSync(join(tmpdir(), "bifrost-delta-")),
      maxBytes: 1 << 20,
      segmentBytes: 1 << 16,
      fsync: "never",
      whenFull: "block",
    });
    const batcher = new Batcher({
      node: { id: "n", site: "", region: "" },
      wal,
      maxEntries: 1,
      maxBytes: 1 << 20,
      maxAgeMs: 10,
      maxBatchBytes: 3 << 20,
    });
    const app = new Hono();
    app.use(new Authenticator(config.auth, "fake").middleware());
    otlpHttpRoutes(app, {
      batcher,
      ...receiverContract({ collector: { limits: { rate_entries_per_s: 1, burst_entries: 1 } } }),
      rate: new TenantRateLimiter(new TenantLimits(config)),
      metrics: otlpMetricsOptions(config.collector.otlp),
      maxBodyBytes: 1 << 20,
    });
    const post = (body: Uint8Array) =>
      app.request("/v1/metrics", { method: "POST", body, headers: { "Content-Type": "application/x-protobuf" } });
    const written = () =>
      wal
        .read(100)
        .flatMap((r) => decodeBatch(r.payload).series)
        .filter((s) => s.name === "jobs_total")
        .flatMap((s) => s.points.map((p) => p.value));

    assert.equal((await post(deltaExport(0, 10, 3, true))).status, 400, "a label over the limit refuses it all");
    assert.equal((await post(deltaExport(0, 10, 3))).status, 200);
    assert.deepEqual(written(), [3], "the refused export's delta is not in the sum");
    assert.equal((await post(deltaExport(10, 20, 4))).status, 429, "over the rate");
    let status = 429;
    for (let attempt = 0; status === 429 && attempt < 50; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await post(deltaExport(10, 20, 4))).status;
    }
    assert.equal(status, 200, "the retry once the rate allows it");
    assert.deepEqual(written(), [3, 7], "the rate-limited delta counted once");
    wal.close();
  });
});
