import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { describe, it } from "node:test";
import { Hono } from "hono";
import protobuf from "protobufjs";
import { compressSync } from "snappy";
import { Batcher } from "../collector/buffer/batcher.js";
import { Authenticator } from "../common/auth.js";
import { configSchema } from "../config.js";
import { LabelSetError, parseLabelSet } from "../proto/loki/labelset.js";
import { lokiReceiver } from "../collector/receivers/loki.js";
import { TenantRateLimiter } from "../common/rate-limit.js";
import { TenantLimits } from "../common/limits.js";
import { Wal } from "../collector/buffer/wal.js";
import { decodeBatch } from "../proto/codec.js";
import { receiverContract } from "./helpers/contract.js";

const LIMITS = { max_labels: 10, max_label_name_bytes: 64, max_label_value_bytes: 256, max_line_bytes: 1024 };
const PushRequest = protobuf
  .loadSync(fileURLToPath(new URL("../proto/loki/push.proto", import.meta.url)))
  .lookupType("logproto.PushRequest");

function receiver(overrides: { maxBodyBytes?: number; rate?: TenantRateLimiter; walBytes?: number } = {}) {
  const wal = Wal.open({
    dir: mkdtempSync(join(tmpdir(), "bifrost-loki-")),
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
  const app = new Hono();
  app.use(new Authenticator(configSchema().parse({}).auth, "fake").middleware());
  lokiReceiver(app, {
    batcher,
    ...receiverContract({ collector: { limits: LIMITS }, node: { id: "edge-1" } }),
    maxBodyBytes: overrides.maxBodyBytes ?? 1 << 20,
    rate: overrides.rate,
  });
  const push = (body: string | Uint8Array, headers: Record<string, string>) =>
    app.request("/loki/api/v1/push", { method: "POST", body, headers });
  const batches = () => wal.read(100).map((r) => decodeBatch(r.payload));
  return { push, batches, wal };
}

const json = (streams: unknown) => JSON.stringify({ streams });

describe("Loki push receiver", () => {
  it("accepts JSON as Loki documents it, with structured metadata, and buffers it before answering 204", async () => {
    const { push, batches } = receiver();
    const response = await push(
      json([
        {
          stream: { app: "api", level: "info" },
          values: [
            ["1764000000000000001", "hello", { trace_id: "t1" }],
            ["1764000000000000002", "world"],
          ],
        },
      ]),
      {
        "Content-Type": "application/json",
        "X-Scope-OrgID": "team-a",
      },
    );
    assert.equal(response.status, 204);
    const [batch] = batches();
    assert.equal(batch!.tenant, "team-a");
    assert.deepEqual({ ...batch!.streams[0]!.labels }, { app: "api", level: "info", node: "edge-1" });
    assert.deepEqual(
      batch!.streams[0]!.entries.map((e) => [e.timeUnixNano, e.line, { ...e.metadata }]),
      [
        [1764000000000000001n, "hello", { trace_id: "t1" }],
        [1764000000000000002n, "world", {}],
      ],
    );
  });

  it("accepts gzip-compressed JSON and uses the default tenant without X-Scope-OrgID", async () => {
    const { push, batches } = receiver();
    const body = gzipSync(json([{ stream: { app: "gz" }, values: [["5", "zipped"]] }]));
    assert.equal((await push(body, { "Content-Type": "application/json", "Content-Encoding": "gzip" })).status, 204);
    assert.equal(batches()[0]!.tenant, "fake");
    assert.equal(batches()[0]!.streams[0]!.entries[0]!.line, "zipped");
  });

  it("accepts snappy protobuf as Promtail sends it, with Go-escaped label values", async () => {
    const { push, batches } = receiver();
    const message = PushRequest.create({
      streams: [
        {
          labels: '{app="api", path="C:\\\\logs\\t\\"x\\"", euro="\\xe2\\x82\\xac", job="promtail"}',
          entries: [
            {
              timestamp: { seconds: 1764000000, nanos: 123 },
              line: "from promtail",
              structuredMetadata: [{ name: "pod", value: "p1" }],
            },
          ],
        },
      ],
    });
    const body = compressSync(Buffer.from(PushRequest.encode(message).finish()));
    assert.equal((await push(body, { "Content-Type": "application/x-protobuf" })).status, 204);
    const stream = batches()[0]!.streams[0]!;
    assert.deepEqual(
      { ...stream.labels },
      { app: "api", path: 'C:\\logs\t"x"', euro: "€", job: "promtail", node: "edge-1" },
    );
    assert.equal(stream.entries[0]!.timeUnixNano, 1764000000000000123n);
    assert.deepEqual({ ...stream.entries[0]!.metadata }, { pod: "p1" });
  });

  it("answers malformed input and broken limits with 400 and the reason", async () => {
    const { push, batches } = receiver();
    const cases: [string, string | Uint8Array, Record<string, string>, RegExp][] = [
      ["not JSON", "{nope", { "Content-Type": "application/json" }, /not JSON/],
      ["wrong shape", JSON.stringify({ logs: [] }), { "Content-Type": "application/json" }, /"streams"/],
      [
        "numeric timestamp",
        json([{ stream: { a: "b" }, values: [[1, "x"]] }]),
        { "Content-Type": "application/json" },
        /Unix nanoseconds/,
      ],
      [
        "invalid label name",
        json([{ stream: { "bad-name": "b" }, values: [["1", "x"]] }]),
        { "Content-Type": "application/json" },
        /label name "bad-name" is not valid/,
      ],
      [
        "too many labels",
        json([
          { stream: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`l${i}`, "v"])), values: [["1", "x"]] },
        ]),
        { "Content-Type": "application/json" },
        /11 labels, the limit is 10/,
      ],
      [
        "line too long",
        json([{ stream: { a: "b" }, values: [["1", "é".repeat(600)]] }]),
        { "Content-Type": "application/json" },
        /a line of 1200 bytes, the limit is 1024/,
      ],
      ["not snappy", Buffer.from("plain text"), { "Content-Type": "application/x-protobuf" }, /snappy/],
      [
        "bad label set",
        compressSync(
          Buffer.from(
            PushRequest.encode(
              PushRequest.create({ streams: [{ labels: '{app="api" job="x"}', entries: [] }] }),
            ).finish(),
          ),
        ),
        {},
        /expected '}' at position 11/,
      ],
      [
        "gzip bomb",
        gzipSync(Buffer.alloc(20 << 20, " ")),
        { "Content-Type": "application/json", "Content-Encoding": "gzip" },
        /./,
      ],
      [
        "corrupt gzip",
        Buffer.from("not gzip at all"),
        { "Content-Type": "application/json", "Content-Encoding": "gzip" },
        /not valid gzip/,
      ],
      [
        "corrupt deflate",
        Buffer.from("not deflate either"),
        { "Content-Type": "application/json", "Content-Encoding": "deflate" },
        /not valid deflate/,
      ],
    ];
    for (const [what, body, headers, message] of cases) {
      const response = await push(body, headers);
      assert.equal(response.status, 400, what);
      assert.match(await response.text(), message, what);
    }
    assert.equal(
      (await push(json([]), { "Content-Type": "application/json", "X-Scope-OrgID": "a|b" })).status,
      400,
      "multi-tenant ids are for queries",
    );
    assert.deepEqual(batches(), [], "nothing rejected was buffered");
  });

  it("answers 413 over the body limit, 429 over the tenant's rate and 503 while the buffer is full, each with nothing buffered", async () => {
    const small = receiver({ maxBodyBytes: 1000 });
    assert.equal(
      (
        await small.push(json([{ stream: { a: "b" }, values: [["1", "x".repeat(2000)]] }]), {
          "Content-Type": "application/json",
        })
      ).status,
      413,
    );

    const limited = receiver({
      rate: new TenantRateLimiter(
        new TenantLimits(
          configSchema().parse({ collector: { limits: { rate_entries_per_s: 10, burst_entries: 20 } } }),
        ),
      ),
    });
    const values = (n: number) =>
      json([{ stream: { a: "b" }, values: Array.from({ length: n }, (_, i) => [String(i + 1), "x"]) }]);
    assert.equal(
      (await limited.push(values(15), { "Content-Type": "application/json", "X-Scope-OrgID": "busy" })).status,
      204,
    );
    const over = await limited.push(values(15), { "Content-Type": "application/json", "X-Scope-OrgID": "busy" });
    assert.equal(over.status, 429);
    assert.ok(Number(over.headers.get("Retry-After")) >= 1);
    assert.equal(
      (await limited.push(values(15), { "Content-Type": "application/json", "X-Scope-OrgID": "calm" })).status,
      204,
      "tenants have their own budget",
    );

    const full = receiver({ walBytes: 4096 });
    const big = () =>
      json([
        {
          stream: { a: "b" },
          values: [
            ["1", randomBytes(700).toString("base64")],
            ["2", randomBytes(700).toString("base64")],
          ],
        },
      ]);
    let status = 204;
    for (let i = 0; i < 10 && status === 204; i++)
      status = (await full.push(big(), { "Content-Type": "application/json" })).status;
    assert.equal(status, 503);
    const accepted = full.batches().length;
    const again = await full.push(big(), { "Content-Type": "application/json" });
    assert.equal(again.status, 503);
    assert.equal(again.headers.get("Retry-After"), "10");
    assert.equal(full.batches().length, accepted);
  });
});

describe("Prometheus label set text", () => {
  it("parses names, Go escapes and an empty set", () => {
    assert.deepEqual({ ...parseLabelSet("{}") }, {});
    assert.deepEqual({ ...parseLabelSet(' { a = "1" ,b="x\\ny\\u00e9\\U0001F9EA" , } ') }, { a: "1", b: "x\nyé🧪" });
  });

  it("points at what is wrong", () => {
    for (const [text, position] of [
      ['{a="1"', 6],
      ['{1a="x"}', 1],
      ['{a="x\\q"}', 5],
      ['{a="1",a="2"}', 7],
      ['{a="1"} trailing', 8],
      ["a", 0],
    ] as const) {
      assert.throws(
        () => parseLabelSet(text),
        (err: unknown) => err instanceof LabelSetError && err.position === position,
        text,
      );
    }
  });
});
