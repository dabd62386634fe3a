import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { OTLPTraceExporter as GrpcTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as HttpTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { diag, DiagLogLevel } from "@opentelemetry/api";
import { startCollector } from "../collector/index.js";
import { TRACES_NOT_STORED } from "../collector/receivers/otlp-traces.js";
import { loadConfig } from "../config.js";
import { createLogger } from "../common/log.js";
import { createRegistry } from "../common/metrics.js";
import { freePort, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";

// Traces sent to the collector by the stock OpenTelemetry exporters: each export succeeds with a partial
// success that rejects every span and says why, so an SDK's flush and shutdown end cleanly instead of failing.

async function collector() {
  const config = loadConfig({
    env: {
      BIFROST_KAFKA__BROKERS: KAFKA_BROKERS.join(","),
      BIFROST_KAFKA__TOPIC: uniqueName("traces"),
      BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${await freePort()}`,
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${await freePort()}`,
      BIFROST_COLLECTOR__WAL__DIR: mkdtempSync(join(tmpdir(), "bifrost-traces-")),
    },
  });
  return startCollector({
    config,
    log: createLogger("silent"),
    registry: createRegistry(),
    storeReadiness: () => null,
    storeMigrated: Promise.resolve(),
  });
}

describe("OTLP traces at the collector", () => {
  it("the stock exporters (gRPC, HTTP protobuf, HTTP JSON) get a partial success naming OTEL_TRACES_EXPORTER=none; flush and shutdown end cleanly", async () => {
    const running = await collector();
    const warnings: string[] = [];
    diag.setLogger(
      {
        warn: (...args: unknown[]) => warnings.push(args.map(String).join(" ")),
        error: (...args: unknown[]) => warnings.push(`ERROR ${args.map(String).join(" ")}`),
        info: () => {},
        debug: () => {},
        verbose: () => {},
      },
      DiagLogLevel.WARN,
    );
    try {
      const exporters: [string, SpanExporter][] = [
        ["grpc", new GrpcTraceExporter({ url: `http://${running.otlpGrpc!.url}` })],
        ["http/protobuf", new ProtoTraceExporter({ url: `${running.address.url}/v1/traces` })],
        ["http/json", new HttpTraceExporter({ url: `${running.address.url}/v1/traces` })],
      ];
      for (const [name, exporter] of exporters) {
        const results: number[] = [];
        const export_ = exporter.export.bind(exporter);
        exporter.export = (spans, done) => export_(spans, (result) => (results.push(result.code), done(result)));
        const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
        const tracer = provider.getTracer("checkout");
        for (let i = 0; i < 3; i++) tracer.startSpan(`order ${i}`).end();
        await provider.forceFlush();
        await provider.shutdown();
        assert.deepEqual(results, [0], `${name}: the export succeeded`);
      }
      assert.equal(warnings.filter((w) => w.startsWith("ERROR")).length, 0, warnings.join("\n"));
      assert.equal(
        warnings.filter((w) => w.includes("OTEL_TRACES_EXPORTER=none")).length >= 2,
        true,
        warnings.join("\n"),
      );
      const metrics = await (await fetch(`${running.address.url}/metrics`)).text();
      assert.match(metrics, /bifrost_collector_requests_rejected_total\{reason="traces_not_stored"\} 3/);
      const bad = await fetch(`${running.address.url}/v1/traces`, {
        method: "POST",
        headers: { "Content-Type": "application/x-protobuf" },
        body: "\xff\xff\xff",
      });
      assert.equal(bad.status, 400);
      const json = await fetch(`${running.address.url}/v1/traces`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{}, {}] }] }] }),
      });
      assert.deepEqual(await json.json(), { partialSuccess: { rejectedSpans: "2", errorMessage: TRACES_NOT_STORED } });
    } finally {
      diag.disable();
      await running.stop();
    }
  });
});
