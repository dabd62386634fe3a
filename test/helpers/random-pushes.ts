import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { compressSync } from "snappy";
import { prng } from "./batches.js";
import { PushRequest } from "./pipeline.js";

// Seeded random and adversarial pushes over every push receiver of a collector, for the property "acknowledged
// => stored exactly once" (test/adversarial/ingest.test.ts). Each push knows how many of its entries or samples
// the receiver's answer says it kept: all of a 2xx, none of a refusal, and for the receivers that keep the good
// part of a request (OTLP's partial_success, remote write's 400 naming what it refused) what the answer names.
// Lines and timestamps are unique per entry, so no two entries are exact duplicates (which are dropped, as Loki
// does). A push that carries no flaw must be acknowledged.

export type Receiver =
  | "loki-json"
  | "loki-json-gzip"
  | "loki-protobuf"
  | "otlp-http-json-logs"
  | "otlp-http-protobuf-logs"
  | "otlp-grpc-logs"
  | "otlp-http-json-metrics"
  | "otlp-http-protobuf-metrics"
  | "otlp-grpc-metrics"
  | "remote-write";

export const RECEIVERS: Receiver[] = [
  "loki-json",
  "loki-json-gzip",
  "loki-protobuf",
  "otlp-http-json-logs",
  "otlp-http-protobuf-logs",
  "otlp-grpc-logs",
  "otlp-http-json-metrics",
  "otlp-http-protobuf-metrics",
  "otlp-grpc-metrics",
  "remote-write",
];

/** What makes an entry (or sample) one that the contract refuses; "none" for a valid one. */
type Flaw = "none" | "too_old" | "too_new" | "long_line" | "bad_label_name" | "long_label_value" | "too_many_labels";

export interface RandomPush {
  name: string;
  receiver: Receiver;
  signal: "logs" | "metrics";
  tenant: string;
  /** Entries or samples it carries. */
  count: number;
  /** Whether any of them carries a flaw; a push without one must be acknowledged whole. */
  flawed: boolean;
  send(target: { http: string; grpc: string }): Promise<{ status: string; kept: number; text: string }>;
}

export interface Limits {
  maxLabels: number;
  maxLineBytes: number;
  maxLabelValueBytes: number;
}

const root = (
  createRequire(import.meta.url)("otlp-transformer-protobufjs/build/src/generated/root.js") as {
    opentelemetry: { proto: { collector: Record<"logs" | "metrics", { v1: Record<string, protobuf.Type> }> } };
  }
).opentelemetry.proto.collector;
const OTLP = {
  logs: { request: root.logs.v1["ExportLogsServiceRequest"]!, response: root.logs.v1["ExportLogsServiceResponse"]! },
  metrics: {
    request: root.metrics.v1["ExportMetricsServiceRequest"]!,
    response: root.metrics.v1["ExportMetricsServiceResponse"]!,
  },
};
const WriteRequest = protobuf
  .loadSync(fileURLToPath(new URL("../../proto/prometheus/remote.proto", import.meta.url)))
  .lookupType("prometheus.WriteRequest");

const TEXT = ["plain", "ünïcödé", "日本語のログ", "emoji 🚀🔥", "tab\tinside", 'quote " and \\ slash', '{"json":1}'];

export function randomPushes(seed: number, count: number, limits: Limits): RandomPush[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (n: number) => Math.floor(random() * n);
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const labelName = () => pick(["a", "b", "zone", "_x", "Mixed_Case9"]) + int(1000);
  const labelValue = () => `${pick(TEXT)} ${int(1e6)}`;
  return Array.from({ length: count }, (_, p) => {
    const receiver = RECEIVERS[p % RECEIVERS.length]!;
    const signal = receiver.includes("metrics") || receiver === "remote-write" ? "metrics" : "logs";
    // One in three pushes carries one flaw in one of its entries.
    const flaws: Flaw[] = ["too_old", "too_new", "long_line", "bad_label_name", "long_label_value", "too_many_labels"];
    const flaw: Flaw =
      random() < 1 / 3 ? pick(signal === "logs" ? flaws : flaws.filter((f) => f !== "long_line")) : "none";
    const labels: Record<string, string> = { app: `prop${int(5)}` };
    for (let i = int(4); i > 0; i--) labels[labelName()] = labelValue();
    if (flaw === "bad_label_name") labels["bad-name"] = "x";
    if (flaw === "long_label_value") labels["long"] = "v".repeat(limits.maxLabelValueBytes + 1);
    if (flaw === "too_many_labels")
      for (let i = Object.keys(labels).length; i <= limits.maxLabels; i++) labels[`extra${i}`] = String(i);
    const size = 1 + int(40);
    const flawedAt = int(size);
    const items = Array.from({ length: size }, (_, i) => {
      // Within the last 50 minutes, unique per entry; the flawed entry outside Loki's window.
      let tsNs = nowNs - BigInt(int(3_000)) * 1_000_000_000n - BigInt(p * 1000 + i);
      if (i === flawedAt && flaw === "too_old") tsNs = nowNs - 8n * 86_400n * 1_000_000_000n;
      if (i === flawedAt && flaw === "too_new") tsNs = nowNs + 86_400n * 1_000_000_000n;
      const line =
        i === flawedAt && flaw === "long_line"
          ? "L".repeat(limits.maxLineBytes + 1)
          : `p${p} e${i} ${pick(TEXT)} ${"x".repeat(int(300))}`;
      return { tsNs, line, value: random() < 0.1 ? pick([0, -1.5, 1e300, Number.NaN]) : random() * 1000 };
    });
    const tenant = `prop-${seed}-${p}`;
    const body = encode(receiver, labels, items, p);
    return {
      name: `#${p} ${receiver}${flaw === "none" ? "" : ` (${flaw})`}`,
      receiver,
      signal,
      tenant,
      count: size,
      flawed: flaw !== "none",
      send: (target) => send(receiver, signal, tenant, body, size, target),
    };
  });
}

interface Item {
  tsNs: bigint;
  line: string;
  value: number;
}

type Encoded = { path: string; headers: Record<string, string>; body: Buffer };

function encode(receiver: Receiver, labels: Record<string, string>, items: Item[], p: number): Encoded {
  const pairs = Object.entries(labels);
  const attributes = pairs.map(([key, value]) => ({
    key: key === "app" ? "service.name" : key,
    value: { stringValue: value },
  }));
  switch (receiver) {
    case "loki-json":
    case "loki-json-gzip": {
      const json = Buffer.from(
        JSON.stringify({ streams: [{ stream: labels, values: items.map((e) => [String(e.tsNs), e.line]) }] }),
      );
      const gzip = receiver === "loki-json-gzip";
      return {
        path: "/loki/api/v1/push",
        headers: { "Content-Type": "application/json", ...(gzip ? { "Content-Encoding": "gzip" } : {}) },
        body: gzip ? gzipSync(json) : json,
      };
    }
    case "loki-protobuf": {
      const message = PushRequest.create({
        streams: [
          {
            labels: `{${pairs.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")}}`,
            entries: items.map((e) => ({
              timestamp: { seconds: Number(e.tsNs / 1_000_000_000n), nanos: Number(e.tsNs % 1_000_000_000n) },
              line: e.line,
            })),
          },
        ],
      });
      return {
        path: "/loki/api/v1/push",
        headers: { "Content-Type": "application/x-protobuf" },
        body: compressSync(Buffer.from(PushRequest.encode(message).finish())),
      };
    }
    case "remote-write": {
      const message = WriteRequest.fromObject({
        timeseries: items.map((e, i) => ({
          labels: [
            { name: "__name__", value: `prop_metric_${p}_${i}` },
            ...pairs.map(([name, value]) => ({ name, value })),
          ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
          samples: [{ timestamp: Number(e.tsNs / 1_000_000n), value: e.value }],
        })),
      });
      return {
        path: "/api/v1/write",
        headers: { "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy" },
        body: compressSync(Buffer.from(WriteRequest.encode(message).finish())),
      };
    }
    default: {
      const json = receiver.startsWith("otlp-http-json");
      const signal = receiver.endsWith("logs") ? "logs" : "metrics";
      // Resource attributes of metrics other than service.name would add a target_info series: labels go on the points.
      const request =
        signal === "logs"
          ? {
              resourceLogs: [
                {
                  resource: { attributes },
                  scopeLogs: [
                    {
                      logRecords: items.map((e) => ({ timeUnixNano: String(e.tsNs), body: { stringValue: e.line } })),
                    },
                  ],
                },
              ],
            }
          : {
              resourceMetrics: [
                {
                  resource: { attributes: attributes.filter((a) => a.key === "service.name") },
                  scopeMetrics: [
                    {
                      metrics: items.map((e, i) => ({
                        name: `prop.metric.${p}.${i}`,
                        gauge: {
                          dataPoints: [
                            {
                              timeUnixNano: String(e.tsNs),
                              asDouble: e.value,
                              attributes: attributes.filter((a) => a.key !== "service.name"),
                            },
                          ],
                        },
                      })),
                    },
                  ],
                },
              ],
            };
      const type = OTLP[signal].request;
      return {
        path: `/v1/${signal}`,
        headers: { "Content-Type": json ? "application/json" : "application/x-protobuf" },
        body: json
          ? Buffer.from(JSON.stringify(request, (_k, v: unknown) => (Number.isNaN(v) ? "NaN" : v)))
          : Buffer.from(type.encode(type.fromObject(request)).finish()),
      };
    }
  }
}

async function send(
  receiver: Receiver,
  signal: "logs" | "metrics",
  tenant: string,
  encoded: Encoded,
  count: number,
  target: { http: string; grpc: string },
): Promise<{ status: string; kept: number; text: string }> {
  if (receiver.startsWith("otlp-grpc")) {
    const { error, response } = await grpcExport(target.grpc, signal, tenant, encoded.body);
    if (error !== null) return { status: `grpc ${grpc.status[error.code]}`, kept: 0, text: error.details };
    return { status: "grpc OK", kept: count - rejectedOf(signal, response!), text: "" };
  }
  const response = await fetch(`${target.http}${encoded.path}`, {
    method: "POST",
    headers: { ...encoded.headers, "X-Scope-OrgID": tenant },
    body: encoded.body,
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  const text = bytes.toString("utf8");
  const retry = response.headers.get("Retry-After");
  const status = `${response.status}${retry === null ? "" : ` Retry-After ${retry}`}`;
  if (!response.ok) {
    // Remote write keeps the good series of a request it answers 400: "N samples written; ...".
    const written = receiver === "remote-write" && response.status === 400 ? /^(\d+) samples written/.exec(text) : null;
    return { status, kept: written ? Number(written[1]) : 0, text };
  }
  if (!receiver.startsWith("otlp-http")) return { status, kept: count, text };
  const json = receiver.startsWith("otlp-http-json");
  const rejected = json
    ? Number(
        (JSON.parse(text || "{}") as { partialSuccess?: Record<string, string | number> }).partialSuccess?.[
          signal === "logs" ? "rejectedLogRecords" : "rejectedDataPoints"
        ] ?? 0,
      )
    : rejectedOf(signal, bytes);
  return { status, kept: count - rejected, text };
}

function rejectedOf(signal: "logs" | "metrics", bytes: Buffer): number {
  const response = OTLP[signal].response.toObject(OTLP[signal].response.decode(bytes), { longs: Number }) as {
    partialSuccess?: { rejectedLogRecords?: number; rejectedDataPoints?: number };
  };
  return Number(response.partialSuccess?.[signal === "logs" ? "rejectedLogRecords" : "rejectedDataPoints"] ?? 0);
}

const clients = new Map<string, grpc.Client>();

function grpcExport(
  address: string,
  signal: "logs" | "metrics",
  tenant: string,
  request: Buffer,
): Promise<{ error: grpc.ServiceError | null; response?: Buffer }> {
  const service = `opentelemetry.proto.collector.${signal}.v1.${signal === "logs" ? "Logs" : "Metrics"}Service`;
  let client = clients.get(`${address} ${service}`);
  if (client === undefined) {
    client = new grpc.Client(address, grpc.credentials.createInsecure());
    clients.set(`${address} ${service}`, client);
  }
  const metadata = new grpc.Metadata();
  metadata.set("x-scope-orgid", tenant);
  const identity = (b: Buffer) => b;
  return new Promise((resolve) =>
    client.makeUnaryRequest(`/${service}/Export`, identity, identity, request, metadata, (error, response) =>
      resolve({ error: error ?? null, ...(response === undefined ? {} : { response }) }),
    ),
  );
}

/** Closes the gRPC channels the pushes opened. */
export function closeRandomPushClients(): void {
  for (const client of clients.values()) client.close();
  clients.clear();
}
