import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { compressSync } from "snappy";
import { until } from "../helpers/aggregation.js";
import { PushRequest } from "../helpers/pipeline.js";
import { INGEST_PIPELINES, type IngestPipeline } from "../helpers/ingest-pipelines.js";
import { closeRandomPushClients, type RandomPush, randomPushes, RECEIVERS } from "../helpers/random-pushes.js";

// Hostile pushes against `bifrost all` (every receiver of the collector, the embedded store behind it): each
// is answered with a 4xx and a reason before it is acknowledged, or acknowledged and then stored exactly once.
// Never acknowledged and then lost, never a 5xx or a closed connection, and the tenants around it keep flowing.

const MAX_LABELS = 30; // collector.limits.max_labels and aggregator.limits.max_labels, their defaults
const PEAK_RSS_BOUND_MIB = 768;
/** The property test's pushes (spread evenly over the receivers) and its seed; BIFROST_PROPERTY_SEED replays a run. */
const PROPERTY_PUSHES = 60;
const PROPERTY_SEED = Number(process.env.BIFROST_PROPERTY_SEED ?? 1414);
const PUSH_LIMITS = { maxLabels: MAX_LABELS, maxLineBytes: 256 << 10, maxLabelValueBytes: 2048 };

interface Outcome {
  name: string;
  tenant: string;
  status: number;
  text: string;
  /** Lines the push carries, all stored if it is acknowledged. */
  lines: number;
}

const now = () => BigInt(Date.now()) * 1_000_000n;

function lokiJson(streams: { stream: Record<string, string>; values: (string | object)[][] }[]): Buffer {
  return Buffer.from(JSON.stringify({ streams }));
}

/** An OTLP/HTTP JSON logs export of `records` under one resource with `attributes`. */
function otlpLogs(attributes: Record<string, string>, records: { timeUnixNano: string; body: string }[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      resourceLogs: [
        {
          resource: { attributes: Object.entries(attributes).map(([key, v]) => ({ key, value: { stringValue: v } })) },
          scopeLogs: [
            { logRecords: records.map((r) => ({ timeUnixNano: r.timeUnixNano, body: { stringValue: r.body } })) },
          ],
        },
      ],
    }),
  );
}

/** A protobuf message nested `depth` deep: AnyValue.kvlistValue.values[0].value... as OTLP allows, by hand. */
function deeplyNestedOtlp(depth: number): Buffer {
  // Innermost: AnyValue{string_value="x"} (field 1). Every level only prefixes what it wraps, so the prefixes are
  // made from the inside out and joined once.
  const innermost = Buffer.from([0x0a, 0x01, 0x78]);
  const prefixes: Buffer[] = [];
  let length = innermost.length;
  for (let i = 0; i < depth; i++) {
    // AnyValue{kvlist_value (6): KeyValueList{values (1): KeyValue{key="k" (1), value (2): AnyValue}}}.
    const keyValue = Buffer.concat([Buffer.from([0x0a, 0x01, 0x6b, 0x12]), varint(length)]);
    const keyValueLength = keyValue.length + length;
    const list = Buffer.concat([Buffer.from([0x0a]), varint(keyValueLength)]);
    const listLength = list.length + keyValueLength;
    const value = Buffer.concat([Buffer.from([0x32]), varint(listLength)]);
    prefixes.push(keyValue, list, value);
    length = value.length + listLength;
  }
  const body = Buffer.concat([...prefixes.reverse(), innermost]);
  // LogRecord{body (5)} in ScopeLogs{log_records (2)} in ResourceLogs{scope_logs (2)} in the request (1).
  const wrap = (tag: number, inner: Buffer) => Buffer.concat([Buffer.from([tag]), varint(inner.length), inner]);
  return wrap(0x0a, wrap(0x12, wrap(0x12, wrap(0x2a, body))));
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

for (const [name, start] of INGEST_PIPELINES) {
  describe(`adversarial ingestion (${name}): every push refused with a 4xx and a reason, or stored exactly once`, () => {
    let pipeline: IngestPipeline;
    let collectorUrl = "";
    let queryUrl = "";
    const outcomes: Outcome[] = [];

    const push = async (
      name: string,
      path: string,
      headers: Record<string, string>,
      body: Buffer,
      lines: number,
    ): Promise<Outcome> => {
      const tenant = `adv-${outcomes.length}`;
      const response = await fetch(`${collectorUrl}${path}`, {
        method: "POST",
        headers: { ...headers, "X-Scope-OrgID": tenant },
        body,
      }).catch((err: unknown) => assert.fail(`${name}: no answer: ${(err as Error).message} ${(err as Error).cause}`));
      const outcome = { name, tenant, status: response.status, text: await response.text(), lines };
      outcomes.push(outcome);
      // 503 only as backpressure, with Retry-After; never any other 5xx.
      const backpressure = response.status === 503 && response.headers.get("Retry-After") !== null;
      assert.ok(
        (outcome.status >= 200 && outcome.status < 300) ||
          (outcome.status >= 400 && outcome.status < 500) ||
          backpressure,
        `${name}: answered ${outcome.status} ${outcome.text.slice(0, 300)}`,
      );
      if (outcome.status >= 400) assert.ok(outcome.text.trim().length > 0, `${name}: a refusal says why`);
      return outcome;
    };
    const refused = (outcome: Outcome, status: number, reason: RegExp) => {
      assert.equal(outcome.status, status, `${outcome.name}: ${outcome.text.slice(0, 300)}`);
      assert.match(outcome.text, reason, outcome.name);
    };
    /** Lines of `tenant` stored, by a LogQL count over every stream (each has the collector's node label). */
    const storedLines = async (tenant: string): Promise<number> => {
      const params = new URLSearchParams({ query: 'sum(count_over_time({node=~".+"}[30d]))', time: String(now()) });
      const response = await fetch(`${queryUrl}/loki/api/v1/query?${params}`, { headers: { "X-Scope-OrgID": tenant } });
      assert.equal(response.status, 200);
      const body = (await response.json()) as { data: { result: { value: [number, string] }[] } };
      return Number(body.data.result[0]?.value[1] ?? 0);
    };

    before(async () => {
      pipeline = await start();
      collectorUrl = pipeline.collector;
      queryUrl = pipeline.query;
    });

    after(async () => {
      closeRandomPushClients();
      await pipeline.stop();
    });

    it("refuses timestamps outside Loki's window and outside what can be stored, with 400 and the reason", async () => {
      const week = 7n * 86_400n * 1_000_000_000n;
      for (const [name, ts, reason] of [
        ["far future (9999999999999999999)", "9999999999999999999", /future|range|timestamp/i],
        ["1970", "1", /old|timestamp/i],
        ["year 2200", "7258118400000000000", /future|range|timestamp/i],
        ["older than reject_old_samples_max_age", String(now() - week - 3_600_000_000_000n), /old/i],
        ["negative", "-5", /timestamp|invalid|range/i],
        ["not a number", "soon", /timestamp|invalid/i],
      ] as const) {
        const body = lokiJson([
          {
            stream: { case: "time" },
            values: [
              [String(now()), "good"],
              [ts, "bad"],
            ],
          },
        ]);
        refused(
          await push(`loki json: ${name}`, "/loki/api/v1/push", { "Content-Type": "application/json" }, body, 2),
          400,
          reason,
        );
      }
      // Loki protobuf: seconds far in the future, nanos out of range.
      for (const [name, timestamp] of [
        ["protobuf far future", { seconds: 9_999_999_999, nanos: 0 }],
        ["protobuf nanos out of range", { seconds: Math.floor(Date.now() / 1000), nanos: 2_000_000_000 }],
        ["protobuf negative nanos", { seconds: Math.floor(Date.now() / 1000), nanos: -1 }],
      ] as const) {
        const message = PushRequest.create({
          streams: [{ labels: '{case="time"}', entries: [{ timestamp, line: "bad" }] }],
        });
        const body = compressSync(Buffer.from(PushRequest.encode(message).finish()));
        refused(
          await push(name, "/loki/api/v1/push", { "Content-Type": "application/x-protobuf" }, body, 1),
          400,
          /timestamp|nanos|future|range/i,
        );
      }
      const otlp = otlpLogs({ "service.name": "time" }, [{ timeUnixNano: "9999999999999999999", body: "bad" }]);
      refused(
        await push("otlp far future", "/v1/logs", { "Content-Type": "application/json" }, otlp, 1),
        400,
        /future|range|timestamp|nanoseconds/i,
      );
    });

    it("takes a stream of exactly max_labels labels with the collector's node label, or refuses it before acknowledging", async () => {
      for (const count of [MAX_LABELS - 2, MAX_LABELS - 1, MAX_LABELS, MAX_LABELS + 1]) {
        const stream = Object.fromEntries(Array.from({ length: count }, (_, i) => [`l${i}`, `v${i}`]));
        const outcome = await push(
          `${count} labels`,
          "/loki/api/v1/push",
          { "Content-Type": "application/json" },
          lokiJson([{ stream, values: [[String(now()), `${count} labels`]] }]),
          1,
        );
        // The node label makes count + 1 as shipped: at most max_labels are stored, more are refused up front.
        if (count + 1 <= MAX_LABELS) assert.equal(outcome.status, 204, outcome.text);
        else refused(outcome, 400, /labels/);
      }
      refused(
        await push(
          "no labels",
          "/loki/api/v1/push",
          { "Content-Type": "application/json" },
          lokiJson([{ stream: {}, values: [[String(now()), "x"]] }]),
          1,
        ),
        400,
        /label/i,
      );
      refused(
        await push(
          "invalid label name",
          "/loki/api/v1/push",
          { "Content-Type": "application/json" },
          lokiJson([{ stream: { "bad-name": "x" }, values: [[String(now()), "x"]] }]),
          1,
        ),
        400,
        /label name/i,
      );
      refused(
        await push(
          "line over max_line_bytes",
          "/loki/api/v1/push",
          { "Content-Type": "application/json" },
          lokiJson([{ stream: { case: "long" }, values: [[String(now()), "x".repeat((256 << 10) + 1)]] }]),
          1,
        ),
        400,
        /line|bytes/i,
      );
    });

    it("answers malformed bodies with 4xx, never 5xx or a closed connection", async () => {
      const json = { "Content-Type": "application/json" };
      for (const [name, path, headers, body] of [
        ["truncated json", "/loki/api/v1/push", json, Buffer.from('{"streams":[{"stream":{"a":"b"},"values":[["1",')],
        ["json of the wrong shape", "/loki/api/v1/push", json, Buffer.from('{"streams":{"a":1}}')],
        ["values not pairs", "/loki/api/v1/push", json, lokiJson([{ stream: { a: "b" }, values: [[String(now())]] }])],
        [
          "line not a string",
          "/loki/api/v1/push",
          json,
          lokiJson([{ stream: { a: "b" }, values: [[String(now()), { x: 1 }]] }]),
        ],
        [
          "snappy that is not",
          "/loki/api/v1/push",
          { "Content-Type": "application/x-protobuf" },
          Buffer.from("not snappy at all"),
        ],
        ["gzip that is not", "/loki/api/v1/push", { ...json, "Content-Encoding": "gzip" }, Buffer.from("not gzip")],
        ["unknown encoding", "/loki/api/v1/push", { ...json, "Content-Encoding": "br" }, Buffer.from("{}")],
        [
          "otlp protobuf garbage",
          "/v1/logs",
          { "Content-Type": "application/x-protobuf" },
          Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        ],
        [
          "otlp protobuf nested 50,000 deep",
          "/v1/logs",
          { "Content-Type": "application/x-protobuf" },
          deeplyNestedOtlp(50_000),
        ],
        [
          "otlp json nested 50,000 deep",
          "/v1/logs",
          json,
          Buffer.from(`{"resourceLogs":${"[".repeat(50_000)}${"]".repeat(50_000)}}`),
        ],
      ] as const) {
        const outcome = await push(name, path, headers, body, 0);
        assert.ok(
          outcome.status >= 400 && outcome.status < 500,
          `${name}: ${outcome.status} ${outcome.text.slice(0, 200)}`,
        );
      }
    });

    it("refuses a request that expands past max_decompressed_bytes with 413, and stores one that expands under it, split into batches", async () => {
      // 21 KB of gzip that expands to 20 MB: one line, over max_line_bytes once expanded.
      const bombLine = gzipSync(
        lokiJson([{ stream: { case: "bomb" }, values: [[String(now()), "a".repeat(20 << 20)]] }]),
        { level: 9 },
      );
      assert.ok(bombLine.length < 64 << 10, `${bombLine.length} bytes`);
      const bombHeaders = { "Content-Type": "application/json", "Content-Encoding": "gzip" };
      refused(await push("gzip: one 20 MB line", "/loki/api/v1/push", bombHeaders, bombLine, 1), 400, /line/i);
      // 40 MB once expanded, over max_decompressed_bytes (32 MiB).
      const bombBig = gzipSync(
        lokiJson([{ stream: { case: "bomb" }, values: [[String(now()), "a".repeat(40 << 20)]] }]),
        { level: 9 },
      );
      refused(await push("gzip: 40 MB", "/loki/api/v1/push", bombHeaders, bombBig, 1), 413, /decompress|large|bytes/i);

      // 6 MB of distinct lines: more than a batch carries, acknowledged and stored whole.
      const t0 = now();
      const values = Array.from({ length: 30_000 }, (_, i) => [String(t0 + BigInt(i)), `line ${i} ${"x".repeat(190)}`]);
      const expanding = gzipSync(lokiJson([{ stream: { case: "many" }, values }]));
      const many = await push("gzip: 6 MB of lines", "/loki/api/v1/push", bombHeaders, expanding, values.length);
      assert.equal(many.status, 204, many.text);

      // OTLP: a resource's attributes count once per record. 20 attributes of 1.5 KB under 1,700 records: 51 MB.
      const attributes = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`attr.${i}`, "r".repeat(1500)]));
      const records = Array.from({ length: 1_700 }, (_, i) => ({
        timeUnixNano: String(now() + BigInt(i)),
        body: `r${i}`,
      }));
      const copied = otlpLogs({ "service.name": "copies", ...attributes }, records);
      assert.ok(copied.length < 256 << 10, `${copied.length} bytes`);
      const copiedOutcome = await push(
        "otlp: resource attributes copied onto 1,700 records",
        "/v1/logs",
        { "Content-Type": "application/json" },
        copied,
        records.length,
      );
      refused(copiedOutcome, 413, /bytes|large/i);
      // The same under the limit (100 records: 3 MB) is stored, every record with its attributes.
      const fewer = await push(
        "otlp: resource attributes copied onto 100 records",
        "/v1/logs",
        { "Content-Type": "application/json" },
        otlpLogs({ "service.name": "copies", ...attributes }, records.slice(0, 100)),
        100,
      );
      assert.ok(fewer.status >= 200 && fewer.status < 300, fewer.text);
    });

    it(`keeps its memory under ${PEAK_RSS_BOUND_MIB} MiB with ten expanding requests at once, and answers each`, async (t) => {
      const bomb = gzipSync(
        lokiJson([{ stream: { case: "bombs" }, values: [[String(now()), "b".repeat(30 << 20)]] }]),
        {
          level: 9,
        },
      );
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          push(
            `concurrent bomb ${i}`,
            "/loki/api/v1/push",
            { "Content-Type": "application/json", "Content-Encoding": "gzip" },
            bomb,
            1,
          ),
        ),
      );
      for (const answer of answers)
        assert.ok([400, 413, 503].includes(answer.status), `${answer.status} ${answer.text}`);
      const peak = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pipeline.collectorPid}/status`, "utf8"));
      const peakMiB = Number(peak![1]) / 1024;
      t.diagnostic(`peak RSS ${peakMiB.toFixed(0)} MiB; answers ${answers.map((a) => a.status).join(" ")}`);
      assert.ok(peakMiB < PEAK_RSS_BOUND_MIB, `peak RSS ${peakMiB.toFixed(0)} MiB`);
    });

    /** Samples of `tenant` stored: every raw sample of every series within ten days of now, as a range vector. */
    const storedSamples = async (tenant: string): Promise<number> => {
      const params = new URLSearchParams({
        query: '{__name__=~".+",__name__!="target_info"}[10d]',
        time: String(Date.now() / 1000 + 2 * 86_400),
      });
      const response = await fetch(`${queryUrl}/api/v1/query?${params}`, { headers: { "X-Scope-OrgID": tenant } });
      assert.equal(response.status, 200, await response.clone().text());
      const body = (await response.json()) as { data: { result: { values: unknown[] }[] } };
      return body.data.result.reduce((n, s) => n + s.values.length, 0);
    };

    it(`keeps the property over ${PROPERTY_PUSHES} random and adversarial pushes on every receiver (seed ${PROPERTY_SEED}): what is acknowledged is stored exactly once, what is refused not at all`, async (t) => {
      const pushes = randomPushes(PROPERTY_SEED, PROPERTY_PUSHES, PUSH_LIMITS);
      const results: { push: RandomPush; answer: Awaited<ReturnType<RandomPush["send"]>> }[] = [];
      for (const p of pushes) {
        const answer = await p.send({ http: collectorUrl, grpc: pipeline.grpc });
        assert.match(
          answer.status,
          /^(2\d\d|4\d\d|503 Retry-After \d+|grpc (OK|INVALID_ARGUMENT|RESOURCE_EXHAUSTED|UNAVAILABLE))/,
          `${p.name}: ${answer.status} ${answer.text.slice(0, 300)}`,
        );
        if (answer.kept < p.count) assert.ok(answer.text.trim() !== "", `${p.name}: a refusal says why`);
        if (!p.flawed)
          assert.equal(answer.kept, p.count, `${p.name}: refused ${answer.status} ${answer.text.slice(0, 300)}`);
        results.push({ push: p, answer });
      }
      const stored = (p: RandomPush) => (p.signal === "logs" ? storedLines(p.tenant) : storedSamples(p.tenant));
      await until(
        "every kept entry and sample stored",
        async () => {
          for (const { push: p, answer } of results) if ((await stored(p)) < answer.kept) return false;
          return true;
        },
        120_000,
      );
      for (const { push: p, answer } of results)
        assert.equal(await stored(p), answer.kept, `${p.name}: answered ${answer.status}, kept ${answer.kept}`);
      const summary = RECEIVERS.map((receiver) => {
        const mine = results.filter((r) => r.push.receiver === receiver);
        return `${receiver}: ${mine.length} pushes, ${mine.reduce((n, r) => n + r.answer.kept, 0)} of ${mine.reduce((n, r) => n + r.push.count, 0)} kept`;
      });
      t.diagnostic(summary.join("; "));
    });

    it("stores everything it acknowledged, exactly once, and nothing it refused", async () => {
      const accepted = outcomes.filter((o) => o.status >= 200 && o.status < 300);
      assert.ok(accepted.length >= 4, "some pushes are acknowledged");
      await until(
        "every acknowledged line stored",
        async () => {
          for (const o of accepted) if ((await storedLines(o.tenant)) < o.lines) return false;
          return true;
        },
        120_000,
      );
      for (const o of outcomes)
        assert.equal(await storedLines(o.tenant), o.status < 300 ? o.lines : 0, `${o.name} (${o.status})`);
      const ready = await fetch(`${collectorUrl}/ready`);
      assert.equal(ready.status, 200, await ready.text());
    });
  });
}
