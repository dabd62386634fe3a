import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { Batcher } from "../collector/buffer/batcher.js";
import { startCollector } from "../collector/index.js";
import { TenantRateLimiter } from "../common/rate-limit.js";
import { TenantLimits } from "../common/limits.js";
import { labelName } from "../collector/receivers/otlp-convert.js";
import { otlpMetricsOptions } from "../collector/receivers/otlp-metrics.js";
import { prometheusMetricName, prometheusUnit } from "../collector/receivers/otlp-names.js";
import { startOtlpGrpc } from "../collector/receivers/otlp-grpc.js";
import { otlpHttpRoutes } from "../collector/receivers/otlp-http.js";
import { decodeStatus, OtlpDecodeError } from "../collector/receivers/otlp-proto.js";
import { Wal } from "../collector/buffer/wal.js";
import { type Batch, SampleKind } from "../proto/batch.js";
import type { BatchLimits } from "../proto/validate.js";
import { decodeBatch } from "../proto/codec.js";
import { Authenticator } from "../common/auth.js";
import { configSchema, loadConfig } from "../config.js";
import { createLogger } from "../common/log.js";
import { createRegistry } from "../common/metrics.js";
import { receiverContract } from "./helpers/contract.js";
import { freePort, KAFKA_BROKERS, REPO_ROOT, uniqueName } from "./helpers/services.js";

const LIMITS: BatchLimits = {
  max_labels: 30,
  max_label_name_bytes: 64,
  max_label_value_bytes: 256,
  max_line_bytes: 1024,
};

interface MessageType {
  fromObject(o: object): object;
  encode(m: object): { finish(): Uint8Array };
  decode(b: Uint8Array): object;
  toObject(m: object, o: object): Record<string, unknown>;
}
const otlp = (
  createRequire(import.meta.url)("otlp-transformer-protobufjs/build/src/generated/root.js") as {
    opentelemetry: { proto: { collector: Record<"logs" | "metrics", { v1: Record<string, MessageType> }> } };
  }
).opentelemetry.proto.collector;
const LogsRequest = otlp.logs.v1["ExportLogsServiceRequest"]!;
const MetricsRequest = otlp.metrics.v1["ExportMetricsServiceRequest"]!;
const MetricsResponse = otlp.metrics.v1["ExportMetricsServiceResponse"]!;
const encodeLogs = (request: object) => Buffer.from(LogsRequest.encode(LogsRequest.fromObject(request)).finish());
const encodeMetrics = (request: object) =>
  Buffer.from(MetricsRequest.encode(MetricsRequest.fromObject(request)).finish());

const servers: { close(): Promise<void> }[] = [];
after(async () => {
  for (const server of servers.reverse()) await server.close();
});

async function collector(
  overrides: {
    maxBodyBytes?: number;
    rate?: TenantRateLimiter;
    walBytes?: number;
    maxGrpcBytes?: number;
    limits?: BatchLimits & { max_body_bytes?: number; max_decompressed_bytes?: number };
    otlp?: Record<string, unknown>;
  } = {},
) {
  const wal = Wal.open({
    dir: mkdtempSync(join(tmpdir(), "bifrost-otlp-")),
    maxBytes: overrides.walBytes ?? 64 << 20,
    segmentBytes: 1 << 20,
    fsync: "never",
    whenFull: "block",
  });
  const batcher = new Batcher({
    node: { id: "edge-1", site: "", region: "" },
    wal,
    maxEntries: 1,
    maxBytes: 1 << 20,
    maxAgeMs: 10,
    maxBatchBytes: 3 << 20,
  });
  const options = {
    batcher,
    ...receiverContract({ collector: { limits: overrides.limits ?? LIMITS }, node: { id: "edge-1" } }),
    rate: overrides.rate,
    metrics: otlpMetricsOptions(configSchema().parse({ collector: { otlp: overrides.otlp ?? {} } }).collector.otlp),
  };
  const authenticator = new Authenticator(configSchema().parse({}).auth, "fake");
  const app = new Hono();
  app.use(authenticator.middleware());
  otlpHttpRoutes(app, { ...options, maxBodyBytes: overrides.maxBodyBytes ?? 1 << 20 });
  const gateway = await startOtlpGrpc({
    ...options,
    authenticator,
    listen: "127.0.0.1:0",
    maxMessageBytes: overrides.maxGrpcBytes ?? 1 << 20,
  });
  const http = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(server));
  });
  servers.push(
    { close: () => gateway.stop() },
    { close: () => new Promise<void>((resolve) => http.close(() => resolve())) },
  );
  const httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const post = (signal: string, body: string | Uint8Array, headers: Record<string, string>) =>
    app.request(`/v1/${signal}`, { method: "POST", body, headers });
  const batches = (): Batch[] => wal.read(1000).map((r) => decodeBatch(r.payload));
  return { post, batches, httpUrl, grpcAddress: gateway.address.url };
}

/** Runs test/helpers/otel-app.js, a NodeSDK app configured only through OTEL_* variables, to completion. */
function runApp(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, "dist", "test", "helpers", "otel-app.js")], {
      env: {
        PATH: process.env.PATH ?? "",
        OTEL_TRACES_EXPORTER: "none",
        OTEL_NODE_RESOURCE_DETECTORS: "env",
        OTEL_LOG_LEVEL: "warn",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`the app exited with ${code}: ${output}`)),
    );
  });
}

const plain = (labels: Record<string, string>) => ({ ...labels });

type ExportCall = (
  request: Buffer,
  metadata?: grpc.Metadata,
) => Promise<{ error: grpc.ServiceError | null; response?: Buffer }>;

function grpcExport(address: string, signal: "logs" | "metrics"): ExportCall {
  const service =
    signal === "logs"
      ? "opentelemetry.proto.collector.logs.v1.LogsService"
      : "opentelemetry.proto.collector.metrics.v1.MetricsService";
  const identity = (b: Buffer) => b;
  const Client = grpc.makeGenericClientConstructor(
    {
      Export: {
        path: `/${service}/Export`,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    service,
  );
  const client = new Client(address, grpc.credentials.createInsecure());
  servers.push({ close: async () => client.close() });
  return (request, metadata = new grpc.Metadata()) =>
    new Promise((resolve) => {
      (
        client as unknown as {
          Export: (r: Buffer, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void;
        }
      ).Export(request, metadata, (error, response) => resolve({ error, response }));
    });
}

const logRecord = (line: string, attributes: Record<string, string> = {}) => ({
  timeUnixNano: "1764000000000000001",
  body: { stringValue: line },
  attributes: Object.entries(attributes).map(([key, value]) => ({ key, value: { stringValue: value } })),
});
const logs = (records: object[], resource: Record<string, string> = { "service.name": "api" }) => ({
  resourceLogs: [
    {
      resource: {
        attributes: Object.entries(resource).map(([key, value]) => ({ key, value: { stringValue: value } })),
      },
      scopeLogs: [{ logRecords: records }],
    },
  ],
});

/** A log record whose body nests lists `depth` deep, as JSON text (JSON.stringify itself would run out of stack). */
function deeplyNested(depth: number): string {
  return `${'{"arrayValue":{"values":['.repeat(depth)}{"stringValue":"x"}${"]}}".repeat(depth)}`;
}

describe("OTLP receivers: an app using @opentelemetry/sdk-node with the stock exporters", () => {
  for (const [protocol, compression] of [
    ["http/protobuf", "gzip"],
    ["http/json", "none"],
    ["grpc", "gzip"],
  ] as const) {
    it(`exports logs and metrics over ${protocol} (compression ${compression}) unchanged`, async () => {
      const { batches, httpUrl, grpcAddress } = await collector({ limits: { ...LIMITS, max_labels: 20 } });
      const before = Date.now();
      await runApp({
        OTEL_EXPORTER_OTLP_ENDPOINT: protocol === "grpc" ? `http://${grpcAddress}` : httpUrl,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_EXPORTER_OTLP_COMPRESSION: compression,
        OTEL_EXPORTER_OTLP_HEADERS: "X-Scope-OrgID=shop",
        OTEL_SERVICE_NAME: "checkout",
        OTEL_RESOURCE_ATTRIBUTES: "service.instance.id=pod-7,deployment.environment.name=prod,host.name=edge-host",
        OTEL_METRIC_EXPORT_INTERVAL: "600000",
      });
      const done = Date.now();
      const written = batches();
      assert.ok(written.every((b) => b.tenant === "shop"));

      const streams = written.flatMap((b) => b.streams);
      assert.equal(streams.length, 1);
      assert.deepEqual(plain(streams[0]!.labels), {
        service_name: "checkout",
        service_instance_id: "pod-7",
        deployment_environment_name: "prod",
        node: "edge-1",
      });
      const [first, second] = streams[0]!.entries;
      const sdkVersion = first!.metadata["telemetry_sdk_version"];
      assert.match(sdkVersion ?? "", /^\d+\.\d+\.\d+/);
      const resourceAndScope = {
        host_name: "edge-host",
        telemetry_sdk_language: "nodejs",
        telemetry_sdk_name: "opentelemetry",
        telemetry_sdk_version: sdkVersion!,
        scope_name: "checkout",
        scope_version: "1.2.3",
      };
      assert.equal(first!.timeUnixNano, 1764000000123000000n);
      assert.equal(first!.line, "payment accepted");
      assert.deepEqual(plain(first!.metadata), {
        order_id: "o-17",
        amount: "12.5",
        observed_timestamp: "1764000000200000000",
        severity_number: "9",
        severity_text: "INFO",
        flags: "1",
        trace_id: "5b8efff798038103d269b633813fc60c",
        span_id: "eee19b7ec3c1b174",
        ...resourceAndScope,
      });
      assert.equal(second!.timeUnixNano, 1764000001000000000n);
      assert.equal(second!.line, '{"event":"refund","cents":250}');
      const { observed_timestamp, ...secondMetadata } = plain(second!.metadata);
      assert.deepEqual(secondMetadata, { severity_number: "13", ...resourceAndScope });
      assert.ok(Number(observed_timestamp) > 0);

      const series = written.flatMap((b) => b.series);
      const base = {
        job: "checkout",
        instance: "pod-7",
        otel_scope_name: "checkout",
        otel_scope_version: "1.2.3",
        node: "edge-1",
      };
      const values = series
        .filter((s) => s.name !== "target_info")
        .map((s) => [s.name, plain(s.labels), s.kind, s.points.map((p) => p.value)])
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
      assert.deepEqual(values, [
        ["carts_open", base, SampleKind.Gauge, [3]],
        ["checkout_duration_milliseconds_bucket", { ...base, le: "+Inf" }, SampleKind.HistogramBucket, [2]],
        ["checkout_duration_milliseconds_bucket", { ...base, le: "10" }, SampleKind.HistogramBucket, [1]],
        ["checkout_duration_milliseconds_bucket", { ...base, le: "100" }, SampleKind.HistogramBucket, [1]],
        ["checkout_duration_milliseconds_count", base, SampleKind.HistogramCount, [2]],
        ["checkout_duration_milliseconds_sum", base, SampleKind.HistogramSum, [127]],
        ["orders_placed_total", { ...base, payment_method: "card" }, SampleKind.Counter, [3]],
        ["queue_depth", { ...base, queue: "payments" }, SampleKind.Gauge, [4]],
      ]);
      const targetInfo = series.filter((s) => s.name === "target_info");
      assert.equal(targetInfo.length, 1);
      assert.deepEqual(plain(targetInfo[0]!.labels), {
        job: "checkout",
        instance: "pod-7",
        deployment_environment_name: "prod",
        host_name: "edge-host",
        telemetry_sdk_language: "nodejs",
        telemetry_sdk_name: "opentelemetry",
        telemetry_sdk_version: sdkVersion!,
        node: "edge-1",
      });
      assert.ok(targetInfo[0]!.points.every((p) => p.value === 1));
      const metadata = written.flatMap((b) => b.metadata ?? []).sort((a, b) => a.name.localeCompare(b.name));
      assert.deepEqual(metadata, [
        { name: "carts_open", type: "gauge", help: "Carts not checked out", unit: "" },
        {
          name: "checkout_duration_milliseconds",
          type: "histogram",
          help: "Time from cart to payment",
          unit: "milliseconds",
        },
        { name: "orders_placed_total", type: "counter", help: "Orders placed", unit: "" },
        { name: "queue_depth", type: "gauge", help: "", unit: "" },
        { name: "target_info", type: "gauge", help: "Target metadata", unit: "" },
      ]);
      for (const point of series.flatMap((s) => s.points))
        assert.ok(
          point.timeUnixMs >= before - 1 && point.timeUnixMs <= done,
          `${point.timeUnixMs} within the app's run`,
        );
    });
  }
});

describe("OTLP/HTTP receiver", () => {
  it("answers protobuf with an ExportMetricsServiceResponse, partial_success naming what has no Prometheus form", async () => {
    const { post, batches } = await collector();
    const point = {
      timeUnixNano: "1764000000000000000",
      asInt: "5",
      attributes: [
        { key: "http.route", value: { stringValue: "/a" } },
        { key: "http/route", value: { stringValue: "/b" } },
      ],
    };
    const request = {
      resourceMetrics: [
        {
          resource: {
            attributes: [
              { key: "service.name", value: { stringValue: "api" } },
              { key: "service.namespace", value: { stringValue: "shop" } },
            ],
          },
          scopeMetrics: [
            {
              metrics: [
                { name: "http.requests", sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [point] } },
                {
                  name: "http.bytes",
                  sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: [point, point] },
                },
                { name: "latency", exponentialHistogram: { aggregationTemporality: 2, dataPoints: [{ count: "1" }] } },
                {
                  name: "rpc.latency",
                  summary: {
                    dataPoints: [
                      {
                        timeUnixNano: "1764000000000000000",
                        count: "4",
                        sum: 10,
                        quantileValues: [
                          { quantile: 0.5, value: 2 },
                          { quantile: 0.99, value: 4 },
                        ],
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    };
    const response = await post("metrics", gzipSync(encodeMetrics(request)), {
      "Content-Type": "application/x-protobuf",
      "Content-Encoding": "gzip",
      "X-Scope-OrgID": "team-a",
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("Content-Type"), "application/x-protobuf");
    const answer = MetricsResponse.toObject(MetricsResponse.decode(new Uint8Array(await response.arrayBuffer())), {
      longs: Number,
    });
    assert.deepEqual(answer, {
      partialSuccess: {
        rejectedDataPoints: 2,
        errorMessage:
          "http.bytes: a delta point is not newer than its series' last point; exponential histogram latency: not supported; use explicit bucket histograms",
      },
    });
    const base = { job: "shop/api", node: "edge-1" };
    const route = { ...base, http_route: "/a;/b" };
    const series = batches().flatMap((b) => b.series.map((s) => [b.tenant, s.name, plain(s.labels), s.kind, s.points]));
    const at = (value: number) => [{ timeUnixMs: 1764000000000, value }];
    assert.deepEqual(series, [
      ["team-a", "http_requests_total", route, SampleKind.Counter, at(5)],
      ["team-a", "http_bytes_total", route, SampleKind.Counter, at(5)],
      ["team-a", "rpc_latency", { ...base, quantile: "0.5" }, SampleKind.Gauge, at(2)],
      ["team-a", "rpc_latency", { ...base, quantile: "0.99" }, SampleKind.Gauge, at(4)],
      ["team-a", "rpc_latency_sum", base, SampleKind.Counter, at(10)],
      ["team-a", "rpc_latency_count", base, SampleKind.Counter, at(4)],
    ]);
  });

  it("leaves out a target_info that breaks a limit or has an unnamable attribute, alone, saying so in partial_success", async () => {
    const { post, batches } = await collector({ limits: { ...LIMITS, max_labels: 4 } });
    const attribute = (key: string, value: string) => ({ key, value: { stringValue: value } });
    const request = {
      resourceMetrics: [
        {
          resource: {
            attributes: [attribute("service.name", "api"), ...["a", "b", "c", "d", "e"].map((k) => attribute(k, k))],
          },
          scopeMetrics: [
            {
              metrics: [
                {
                  name: "queue.depth",
                  gauge: {
                    dataPoints: [
                      { timeUnixNano: "1764000000000000000", asDouble: 2, attributes: [attribute("q", "x")] },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    };
    const partial = async (body: object) => {
      const response = await post("metrics", encodeMetrics(body), { "Content-Type": "application/x-protobuf" });
      assert.equal(response.status, 200);
      return MetricsResponse.toObject(MetricsResponse.decode(new Uint8Array(await response.arrayBuffer())), {
        longs: Number,
      }) as { partialSuccess: { rejectedDataPoints: number; errorMessage: string } };
    };
    const tooMany = await partial(request);
    assert.equal(tooMany.partialSuccess.rejectedDataPoints, 1);
    assert.match(tooMany.partialSuccess.errorMessage, /^target_info of job "api": .*has 6 labels, the limit is 4$/);
    request.resourceMetrics[0]!.resource.attributes = [attribute("service.name", "api"), attribute("...", "x")];
    const unnamed = await partial(request);
    assert.equal(unnamed.partialSuccess.rejectedDataPoints, 1);
    assert.match(
      unnamed.partialSuccess.errorMessage,
      /^target_info of job "api": attribute "\.\.\." has no valid label name$/,
    );
    assert.deepEqual(
      batches().flatMap((b) => b.series.map((s) => [s.name, plain(s.labels)])),
      [
        ["queue_depth", { job: "api", q: "x", node: "edge-1" }],
        ["queue_depth", { job: "api", q: "x", node: "edge-1" }],
      ],
    );
  });

  it("promotes the resource attributes promote_resource_attributes lists, and leaves suffixes off under UnderscoreEscapingWithoutSuffixes", async () => {
    const attribute = (key: string, value: string) => ({ key, value: { stringValue: value } });
    const request = (pointAttributes: ReturnType<typeof attribute>[]) => ({
      resourceMetrics: [
        {
          resource: {
            attributes: [
              attribute("service.name", "api"),
              attribute("k8s.namespace.name", "shop"),
              attribute("cloud.region", "eu-1"),
            ],
          },
          scopeMetrics: [
            {
              metrics: [
                {
                  name: "orders.placed",
                  unit: "1",
                  sum: {
                    aggregationTemporality: 2,
                    isMonotonic: true,
                    dataPoints: [
                      {
                        startTimeUnixNano: "1764000000000000000",
                        timeUnixNano: "1764000001000000000",
                        asInt: "3",
                        attributes: pointAttributes,
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    });
    const counters = async (otlp: Record<string, unknown>, pointAttributes: ReturnType<typeof attribute>[] = []) => {
      const { post, batches } = await collector({ limits: { ...LIMITS, max_labels: 20 }, otlp });
      const response = await post("metrics", JSON.stringify(request(pointAttributes)), {
        "Content-Type": "application/json",
      });
      assert.equal(response.status, 200, await response.text());
      return batches()
        .flatMap((b) => b.series)
        .filter((s) => s.name !== "target_info")
        .map((s) => [s.name, plain(s.labels)]);
    };
    assert.deepEqual(await counters({}), [["orders_placed_total", { job: "api", node: "edge-1" }]]);
    assert.deepEqual(
      await counters({
        promote_resource_attributes: ["k8s.namespace.name"],
        translation_strategy: "UnderscoreEscapingWithoutSuffixes",
      }),
      [["orders_placed", { job: "api", k8s_namespace_name: "shop", node: "edge-1" }]],
    );
    // A point's own attribute of that name wins over the resource's, as in Prometheus.
    assert.deepEqual(
      await counters({ promote_resource_attributes: ["k8s.namespace.name"] }, [attribute("k8s.namespace.name", "own")]),
      [["orders_placed_total", { job: "api", k8s_namespace_name: "own", node: "edge-1" }]],
    );
  });

  it("reads OTLP/JSON: hex ids, 64-bit integers as strings, enums as integers, map bodies as JSON lines; refuses values nested past the stack", async () => {
    const { post, batches } = await collector();
    const body = {
      resourceLogs: [
        {
          resource: {
            attributes: [
              { key: "k8s.pod.name", value: { stringValue: "web-1" } },
              { key: "build", value: { kvlistValue: { values: [{ key: "id", value: { intValue: "42" } }] } } },
            ],
          },
          scopeLogs: [
            {
              scope: { name: "lib" },
              logRecords: [
                {
                  observedTimeUnixNano: "1764000000000000009",
                  severityNumber: 17,
                  traceId: "0102030405060708090a0b0c0d0e0f10",
                  body: { kvlistValue: { values: [{ key: "ok", value: { boolValue: false } }] } },
                },
                {
                  timeUnixNano: 1764000000000,
                  body: { arrayValue: { values: [{ doubleValue: 1.5 }, { stringValue: "x" }] } },
                  attributes: [{ key: "2fa", value: { boolValue: true } }],
                },
              ],
            },
          ],
        },
      ],
    };
    const response = await post("logs", JSON.stringify(body), { "Content-Type": "application/json; charset=utf-8" });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {});
    const [batch] = batches();
    assert.equal(batch!.tenant, "fake");
    assert.deepEqual(plain(batch!.streams[0]!.labels), {
      k8s_pod_name: "web-1",
      service_name: "unknown_service",
      node: "edge-1",
    });
    assert.deepEqual(
      batch!.streams[0]!.entries.map((e) => [e.timeUnixNano, e.line, plain(e.metadata)]),
      [
        [
          1764000000000000009n,
          '{"ok":false}',
          { severity_number: "17", trace_id: "0102030405060708090a0b0c0d0e0f10", build_id: "42", scope_name: "lib" },
        ],
        [1764000000000n, '[1.5,"x"]', { key_2fa: "true", build_id: "42", scope_name: "lib" }],
      ],
    );

    const tooDeep = await post(
      "logs",
      `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":${deeplyNested(20_000)}}]}]}]}`,
      { "Content-Type": "application/json" },
    );
    assert.equal(tooDeep.status, 400);
    assert.match(((await tooDeep.json()) as { message: string }).message, /nests values too deeply/);
    assert.equal(batches().length, 1);
  });

  it("answers malformed bodies and broken limits with 4xx and a google.rpc.Status, buffering nothing", async () => {
    const { post, batches } = await collector({
      limits: { ...LIMITS, max_labels: 4, max_body_bytes: 64 << 10, max_decompressed_bytes: 64 << 10 },
      maxBodyBytes: 64 << 10,
    });
    const valid = encodeLogs(logs([logRecord("ok")]));
    const protobuf = { "Content-Type": "application/x-protobuf" };
    const json = { "Content-Type": "application/json" };
    const cases: [string, string | Uint8Array, Record<string, string>, number, RegExp][] = [
      [
        "truncated protobuf",
        valid.subarray(0, valid.length - 3),
        protobuf,
        400,
        /not an OTLP logs request in protobuf: index out of range/,
      ],
      ["not protobuf", Buffer.from("\xff\xff\xff\xff\xff"), protobuf, 400, /not an OTLP logs request in protobuf/],
      ["bad JSON", "{nope", json, 400, /not JSON/],
      ["JSON of the wrong shape", JSON.stringify({ resourceLogs: "x" }), json, 400, /resourceLogs: array expected/],
      ["JSON array", "[]", json, 400, /must be a JSON object/],
      [
        "trace id not hex",
        JSON.stringify(logs([{ traceId: "zz" }])),
        json,
        400,
        /logRecords\[0\]\.traceId must be a hex string/,
      ],
      [
        "timestamp not a number",
        JSON.stringify(logs([{ timeUnixNano: "soon" }])),
        json,
        400,
        /resourceLogs\[0\]\.scopeLogs\[0\]\.logRecords\[0\]\.timeUnixNano: "soon" is not an integer/,
      ],
      [
        "too many attributes",
        encodeLogs(logs([logRecord("x", { a: "1", b: "2", c: "3", d: "4", e: "5" })])),
        protobuf,
        400,
        /has 5 labels, the limit is 4/,
      ],
      [
        "too many resource labels",
        encodeLogs(
          logs([logRecord("x")], {
            "service.name": "a",
            "service.namespace": "b",
            "k8s.pod.name": "c",
            "k8s.cluster.name": "d",
            "cloud.region": "e",
            // service_name is not counted, as in Loki: five more labels are.
            "deployment.environment": "f",
          }),
        ),
        protobuf,
        400,
        /stream 0 has 5 labels/,
      ],
      [
        "attribute without a label name",
        encodeLogs(logs([logRecord("x", { "...": "v" })])),
        protobuf,
        400,
        /attribute "\.\.\." has no valid label name/,
      ],
      [
        "line too long",
        encodeLogs(logs([logRecord("é".repeat(600))])),
        protobuf,
        400,
        /a line of 1200 bytes, the limit is 1024/,
      ],
      [
        "label value too long",
        encodeLogs(logs([logRecord("x")], { "service.name": "s".repeat(300) })),
        protobuf,
        400,
        /value of label service_name is 300 bytes, the limit is 256/,
      ],
      [
        "label name too long",
        encodeLogs(logs([logRecord("x", { ["n".repeat(65)]: "v" })])),
        protobuf,
        400,
        /label name of 65 bytes, the limit is 64/,
      ],
      ["corrupt gzip", Buffer.from("not gzip"), { ...protobuf, "Content-Encoding": "gzip" }, 400, /not valid gzip/],
      [
        "gzip bomb",
        gzipSync(Buffer.alloc(8 << 20)),
        { ...protobuf, "Content-Encoding": "gzip" },
        413,
        /decompressed body is larger than 65536 bytes/,
      ],
      ["body over the limit", Buffer.alloc(65 << 10), protobuf, 413, /request body larger than 65536 bytes/],
      ["wrong content type", valid, { "Content-Type": "text/plain" }, 415, /unsupported Content-Type "text\/plain"/],
      ["no content type", valid, {}, 415, /unsupported Content-Type ""/],
      [
        "unsupported encoding",
        valid,
        { ...protobuf, "Content-Encoding": "br" },
        415,
        /unsupported Content-Encoding br/,
      ],
    ];
    for (const [what, body, headers, status, message] of cases) {
      const response = await post("logs", body, headers);
      assert.equal(response.status, status, what);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const answer = response.headers.get("Content-Type")?.startsWith("application/json")
        ? JSON.parse(Buffer.from(bytes).toString())
        : decodeStatus(bytes);
      assert.equal(answer.code, 3, what);
      assert.match(answer.message, message, what);
    }
    const metric = (name: string) =>
      encodeMetrics({
        resourceMetrics: [
          {
            scopeMetrics: [
              {
                metrics: [
                  {
                    name,
                    gauge: {
                      dataPoints: [
                        { asDouble: 1, attributes: [{ key: "a", value: { stringValue: "x".repeat(300) } }] },
                      ],
                    },
                  },
                ],
              },
            ],
          },
        ],
      });
    const tooLong = await post("metrics", metric("g"), protobuf);
    assert.equal(tooLong.status, 400);
    assert.match(
      decodeStatus(new Uint8Array(await tooLong.arrayBuffer())).message,
      /series 0 \(g\): value of label a is 300 bytes/,
    );
    assert.deepEqual(batches(), [], "nothing rejected was buffered");
  });

  it("answers 429 over the tenant's rate and 503 while the disk buffer is full, with Retry-After", async () => {
    const limited = await collector({
      rate: new TenantRateLimiter(
        new TenantLimits(
          configSchema().parse({ collector: { limits: { rate_entries_per_s: 10, burst_entries: 20 } } }),
        ),
      ),
    });
    const records = (n: number) => encodeLogs(logs(Array.from({ length: n }, (_, i) => logRecord(`line ${i}`))));
    const headers = (tenant: string) => ({ "Content-Type": "application/x-protobuf", "X-Scope-OrgID": tenant });
    assert.equal((await limited.post("logs", records(15), headers("busy"))).status, 200);
    const over = await limited.post("logs", records(15), headers("busy"));
    assert.equal(over.status, 429);
    assert.ok(Number(over.headers.get("Retry-After")) >= 1);
    const status = decodeStatus(new Uint8Array(await over.arrayBuffer()));
    assert.equal(status.code, 8);
    assert.equal(status.retryAfterS, Number(over.headers.get("Retry-After")));
    assert.equal(
      (await limited.post("logs", records(15), headers("calm"))).status,
      200,
      "tenants have their own budget",
    );

    const full = await collector({ walBytes: 4096 });
    const big = () =>
      JSON.stringify(
        logs([logRecord(randomBytes(300).toString("base64")), logRecord(randomBytes(300).toString("base64"))]),
      );
    let response = await full.post("logs", big(), { "Content-Type": "application/json" });
    for (let i = 0; i < 20 && response.status === 200; i++)
      response = await full.post("logs", big(), { "Content-Type": "application/json" });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("Retry-After"), "10");
    assert.equal(((await response.json()) as { code: number }).code, 14);
    const accepted = full.batches().length;
    assert.equal((await full.post("logs", big(), { "Content-Type": "application/json" })).status, 503);
    assert.equal(full.batches().length, accepted);
  });
});

describe("OTLP/gRPC receiver", () => {
  it("takes the tenant from x-scope-orgid and answers INVALID_ARGUMENT for malformed input and broken limits", async () => {
    const { grpcAddress, batches } = await collector({ limits: { ...LIMITS, max_labels: 4 } });
    const exportLogs = grpcExport(grpcAddress, "logs");
    const metadata = new grpc.Metadata();
    metadata.set("x-scope-orgid", "team-g");
    const ok = await exportLogs(encodeLogs(logs([logRecord("over grpc", { user: "u1" })])), metadata);
    assert.equal(ok.error, null);
    assert.deepEqual([...ok.response!], [], "an empty ExportLogsServiceResponse: everything accepted");
    const [batch] = batches();
    assert.equal(batch!.tenant, "team-g");
    assert.deepEqual(
      batch!.streams.map((s) => [plain(s.labels), s.entries.map((e) => [e.line, plain(e.metadata)])]),
      [[{ service_name: "api", node: "edge-1" }, [["over grpc", { user: "u1" }]]]],
    );

    const valid = encodeLogs(logs([logRecord("x")]));
    const cases: [string, Buffer, RegExp][] = [
      ["truncated protobuf", valid.subarray(0, valid.length - 2), /not an OTLP logs request in protobuf/],
      [
        "too many attributes",
        encodeLogs(logs([logRecord("x", { a: "1", b: "2", c: "3", d: "4", e: "5" })])),
        /has 5 labels, the limit is 4/,
      ],
      ["line too long", encodeLogs(logs([logRecord("x".repeat(2000))])), /a line of 2000 bytes/],
    ];
    for (const [what, request, message] of cases) {
      const { error } = await exportLogs(request);
      assert.equal(error?.code, grpc.status.INVALID_ARGUMENT, what);
      assert.match(error!.details, message, what);
    }
    const { error } = await grpcExport(grpcAddress, "metrics")(Buffer.from([0x0a, 0x05, 0x01]));
    assert.equal(error?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(batches().length, 1, "nothing rejected was buffered");
  });

  it("answers RESOURCE_EXHAUSTED over the message size and the rate, UNAVAILABLE while the disk buffer is full, with retry info", async () => {
    const small = await collector({ maxGrpcBytes: 1024 });
    const tooBig = await grpcExport(small.grpcAddress, "logs")(encodeLogs(logs([logRecord("x".repeat(2000))])));
    assert.equal(tooBig.error?.code, grpc.status.RESOURCE_EXHAUSTED);

    const limited = await collector({
      rate: new TenantRateLimiter(
        new TenantLimits(
          configSchema().parse({ collector: { limits: { rate_entries_per_s: 10, burst_entries: 20 } } }),
        ),
      ),
    });
    const exportLogs = grpcExport(limited.grpcAddress, "logs");
    const records = encodeLogs(logs(Array.from({ length: 15 }, (_, i) => logRecord(`line ${i}`))));
    assert.equal((await exportLogs(records)).error, null);
    const over = (await exportLogs(records)).error!;
    assert.equal(over.code, grpc.status.RESOURCE_EXHAUSTED);
    const details = decodeStatus(over.metadata.get("grpc-status-details-bin")[0] as Buffer);
    assert.equal(details.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.ok((details.retryAfterS ?? 0) >= 1);

    const full = await collector({ walBytes: 4096 });
    const exportFull = grpcExport(full.grpcAddress, "logs");
    const big = () =>
      encodeLogs(
        logs([logRecord(randomBytes(300).toString("base64")), logRecord(randomBytes(300).toString("base64"))]),
      );
    let result = await exportFull(big());
    for (let i = 0; i < 20 && result.error === null; i++) result = await exportFull(big());
    assert.equal(result.error?.code, grpc.status.UNAVAILABLE);
    assert.equal(decodeStatus(result.error!.metadata.get("grpc-status-details-bin")[0] as Buffer).retryAfterS, 10);
    const accepted = full.batches().length;
    assert.equal((await exportFull(big())).error?.code, grpc.status.UNAVAILABLE);
    assert.equal(full.batches().length, accepted);
  });
});

describe("OTLP names as Prometheus's otlptranslator builds them", () => {
  it("escapes attribute keys to label names", () => {
    const cases: [string, string][] = [
      ["service.name", "service_name"],
      ["http..route", "http_route"],
      ["a__b", "a_b"],
      ["__meta.x__", "__meta_x__"],
      ["2fa", "key_2fa"],
      ["ünïcode", "_n_code"],
    ];
    assert.deepEqual(
      cases.map(([key]) => [key, labelName(key)]),
      cases,
    );
    assert.throws(() => labelName("..."), OtlpDecodeError);
    assert.throws(() => labelName(""), OtlpDecodeError);
  });

  it("escapes metric names without adding suffixes (UnderscoreEscapingWithoutSuffixes)", () => {
    const cases: [string, string][] = [
      ["http.server.duration", "http_server_duration"],
      ["a..b", "a_b"],
      [".x.", "x"],
      ["9lives", "_9lives"],
      ["a__b", "a__b"],
      ["process.cpu:time", "process_cpu:time"],
      ["...", ""],
    ];
    assert.deepEqual(
      cases.map(([name]) => [name, prometheusMetricName(name, "s", "counter", "UnderscoreEscapingWithoutSuffixes")]),
      cases,
    );
  });

  it("adds unit, `_total` and `_ratio` suffixes as Prometheus' default UnderscoreEscapingWithSuffixes does", () => {
    const cases: [string, string, Parameters<typeof prometheusMetricName>[2], string][] = [
      ["http.server.request.duration", "s", "histogram", "http_server_request_duration_seconds"],
      ["http.server.active_requests", "{request}", "updowncounter", "http_server_active_requests"],
      ["system.network.io", "By", "counter", "system_network_io_bytes_total"],
      ["requests.count", "1", "counter", "requests_count_total"],
      ["memory.usage", "By", "gauge", "memory_usage_bytes"],
      ["cpu.utilization", "1", "gauge", "cpu_utilization_ratio"],
      ["ratio.value", "1", "gauge", "value_ratio"],
      ["throughput", "By/s", "gauge", "throughput_bytes_per_second"],
      ["errors", "{error}/s", "gauge", "errors_per_second"],
      ["speed", "m/s", "gauge", "speed_meters_per_second"],
      ["requests_total", "", "counter", "requests_total"],
      ["total.requests", "", "counter", "requests_total"],
      ["latency_seconds", "s", "histogram", "latency_seconds"],
      ["percent.used", "%", "gauge", "percent_used"],
      ["temp", "Cel", "gauge", "temp_celsius"],
      ["data", "MiBy", "summary", "data_mebibytes"],
      ["x", "custom unit", "gauge", "x_custom_unit"],
      ["x", " s / m ", "gauge", "x_seconds_per_minute"],
      ["x", "a_/b_", "gauge", "x_a_per_b"],
      ["a__b", "", "gauge", "a_b"],
      ["9lives", "", "gauge", "_9lives"],
      ["process.cpu:time", "s", "counter", "process_cpu:time_seconds_total"],
    ];
    assert.deepEqual(
      cases.map(([name, unit, type]) => [
        name,
        unit,
        type,
        prometheusMetricName(name, unit, type, "UnderscoreEscapingWithSuffixes"),
      ]),
      cases,
    );
    const units: [string, string][] = [
      ["s", "seconds"],
      ["By/s", "bytes_per_second"],
      ["1", ""],
      ["{request}", ""],
      ["1/s", "per_second"],
      ["%", "percent"],
      ["custom unit", "custom_unit"],
      ["", ""],
      ["a_/b_", "a__per_b"],
    ];
    assert.deepEqual(
      units.map(([unit]) => [unit, prometheusUnit(unit)]),
      units,
    );
  });
});

describe("collector role", () => {
  it("serves each OTLP receiver only when the configuration switches it on", async () => {
    const start = async (otlp: Record<string, string>) => {
      const env = {
        BIFROST_KAFKA__BROKERS: KAFKA_BROKERS.join(","),
        BIFROST_KAFKA__TOPIC: uniqueName("otlp"),
        BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${await freePort()}`,
        BIFROST_COLLECTOR__WAL__DIR: mkdtempSync(join(tmpdir(), "bifrost-otlp-role-")),
        ...otlp,
      };
      const config = loadConfig({ env });
      return startCollector({
        config,
        log: createLogger("silent"),
        registry: createRegistry(),
        storeReadiness: () => null,
        storeMigrated: Promise.resolve(),
      });
    };
    const empty = JSON.stringify({ resourceLogs: [] });
    const post = (url: string) =>
      fetch(`${url}/v1/logs`, { method: "POST", headers: { "Content-Type": "application/json" }, body: empty });

    const grpcOnly = await start({
      BIFROST_COLLECTOR__OTLP__HTTP_ENABLED: "false",
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${await freePort()}`,
    });
    try {
      assert.equal((await post(grpcOnly.address.url)).status, 404);
      assert.ok(grpcOnly.otlpGrpc);
      assert.equal((await grpcExport(grpcOnly.otlpGrpc.url, "logs")(encodeLogs({}))).error, null);
    } finally {
      await grpcOnly.stop();
    }

    const httpOnly = await start({ BIFROST_COLLECTOR__OTLP__GRPC_ENABLED: "false" });
    try {
      assert.equal((await post(httpOnly.address.url)).status, 200);
      assert.equal(httpOnly.otlpGrpc, undefined);
    } finally {
      await httpOnly.stop();
    }
  });
});
