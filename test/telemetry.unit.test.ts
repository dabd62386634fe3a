import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { metrics } from "@opentelemetry/api";
import { createLogger } from "../common/log.js";
import { startTelemetry } from "../common/telemetry.js";

// A bare gRPC server on the OTLP metrics service path stands in for an OpenTelemetry Collector: it records the
// raw request bytes, which is enough to prove that the SDK exported over OTLP/gRPC to the configured endpoint.
function otlpSink(): Promise<{ endpoint: string; requests: Buffer[]; stop(): void }> {
  const identity = (b: Buffer) => b;
  const method = (path: string) => ({
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  });
  const requests: Buffer[] = [];
  const server = new grpc.Server();
  const record: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    requests.push(call.request);
    callback(null, Buffer.alloc(0));
  };
  server.addService(
    { Export: method("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export") },
    { Export: record },
  );
  return new Promise((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      resolve({ endpoint: `http://127.0.0.1:${port}`, requests, stop: () => server.forceShutdown() });
    });
  });
}

describe("self-telemetry", () => {
  it("is off, and loads nothing, without an endpoint", async () => {
    const telemetry = await startTelemetry(
      { otlp_endpoint: "", service_name: "bifrost", export_interval_ms: 1000 },
      "query",
      createLogger("silent"),
    );
    await telemetry.shutdown();
  });

  it("exports Bifrost's metrics over OTLP/gRPC to the configured endpoint", async () => {
    const sink = await otlpSink();
    try {
      const telemetry = await startTelemetry(
        { otlp_endpoint: sink.endpoint, service_name: "bifrost-under-test", export_interval_ms: 200 },
        "collector",
        createLogger("silent"),
      );
      metrics.getMeter("bifrost-test").createCounter("bifrost_test_events_total").add(3);
      await telemetry.shutdown();
      const body = Buffer.concat(sink.requests).toString("latin1");
      assert.ok(sink.requests.length > 0, "no OTLP export arrived");
      assert.ok(body.includes("bifrost-under-test"), "service.name missing from the export");
      assert.ok(body.includes("bifrost_test_events_total"), "the counter is missing from the export");
    } finally {
      sink.stop();
    }
  });
});
