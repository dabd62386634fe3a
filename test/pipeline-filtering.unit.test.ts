import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NOW_MS, stagePipeline } from "./helpers/stages.js";

// drop, limit, sampling and truncate: Promtail's documented conditions, each drop counted by reason.

const lines = (out: { line: string }[]) => out.map((e) => e.line);

describe("drop stage", () => {
  it("drops lines matching an expression, counted under drop_counter_reason", async () => {
    const p = stagePipeline([{ drop: { expression: ".*debug.*", drop_counter_reason: "debug_noise" } }]);
    assert.deepEqual(lines(p.run([{ line: "a debug line" }, { line: "an info line" }])), ["an info line"]);
    assert.deepEqual(await p.counts(), { "drop/dropped/debug_noise": 1, "drop/processed": 1 });
  });
  it("drops by an extracted value: equal to `value`, or matching `expression`; an absent source keeps the entry", () => {
    const parse = { logfmt: { mapping: { level: null, app: null } } };
    const byValue = stagePipeline([parse, { drop: { source: "level", value: "debug" } }]);
    assert.deepEqual(lines(byValue.run([{ line: "level=debug" }, { line: "level=info" }, { line: "nolevel=1" }])), [
      "level=info",
      "nolevel=1",
    ]);
    const joined = stagePipeline([
      parse,
      { drop: { source: ["level", "app"], separator: "/", expression: "^debug/(web|api)$" } },
    ]);
    assert.deepEqual(lines(joined.run([{ line: "level=debug app=web" }, { line: "level=debug app=db" }])), [
      "level=debug app=db",
    ]);
  });
  it("drops entries older than older_than and lines longer than longer_than (Promtail's units)", () => {
    const hour = 3_600_000_000_000n;
    const now = BigInt(NOW_MS) * 1_000_000n;
    const old = stagePipeline([{ drop: { older_than: "24h" } }]);
    assert.deepEqual(
      lines(
        old.run([
          { line: "old", timeUnixNano: now - 25n * hour },
          { line: "new", timeUnixNano: now - hour },
        ]),
      ),
      ["new"],
    );
    const long = stagePipeline([{ drop: { longer_than: "8B" } }]);
    assert.deepEqual(lines(long.run([{ line: "12345678" }, { line: "123456789" }, { line: "ééééé" }])), ["12345678"]);
  });
  it("needs every condition given to hold", () => {
    const p = stagePipeline([{ drop: { expression: "noise", longer_than: 10 } }]);
    assert.deepEqual(lines(p.run([{ line: "noise" }, { line: "noise, and long" }, { line: "long but clean" }])), [
      "noise",
      "long but clean",
    ]);
  });
  it("refuses value without source, or value with expression", () => {
    assert.throws(() => stagePipeline([{ drop: { value: "x" } }]), /value needs a source/);
    assert.throws(() => stagePipeline([{ drop: { source: "a", value: "x", expression: "y" } }]), /exclude each other/);
  });
});

describe("limit stage", () => {
  it("drop mode: each stream has its own bucket; entries over it are dropped and counted", async () => {
    let now = NOW_MS;
    const p = stagePipeline([{ limit: { rate: 1, burst: 2, drop: true } }], { now: () => now });
    const burst = (job: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ line: `${job}${i}`, labels: { job } }));
    assert.equal(p.run([...burst("a", 5), ...burst("b", 2)]).length, 4);
    assert.deepEqual(await p.counts(), { "limit/processed": 4, "limit/dropped/rate_limited": 3 });
    now += 1000;
    assert.deepEqual(lines(p.run(burst("a", 3))), ["a0"]);
  });
  it("by_label_name: one bucket per value of the label", () => {
    const p = stagePipeline([{ limit: { rate: 1, burst: 1, by_label_name: "app", drop: true } }]);
    const out = p.run([
      { line: "1", labels: { app: "x", pod: "1" } },
      { line: "2", labels: { app: "x", pod: "2" } },
      { line: "3", labels: { app: "y", pod: "1" } },
    ]);
    assert.deepEqual(lines(out), ["1", "3"]);
  });
  it("block mode keeps every entry and asks the pipeline to wait for the tokens", () => {
    const p = stagePipeline([{ limit: { rate: 10, burst: 1 } }]);
    const result = p.pipeline.run("fake", [
      {
        labels: { job: "a" },
        entries: [1, 2, 3].map((i) => ({ line: String(i), timeUnixNano: 1n, metadata: {} })),
      },
    ]);
    assert.equal(result.entries, 3);
    assert.equal(result.dropped, 0);
    assert.equal(result.waitMs, 200);
  });
});

describe("sampling stage", () => {
  it("keeps entries with probability `rate`, recording it as structured metadata", async () => {
    let roll = 0;
    const dice = [0.05, 0.5, 0.09, 0.99];
    const p = stagePipeline([{ sampling: { rate: 0.1 } }], { random: () => dice[roll++ % dice.length]! });
    const out = p.run(dice.map((_, i) => ({ line: String(i) })));
    assert.deepEqual(
      out.map((e) => [e.line, e.metadata["sampling_rate"]]),
      [
        ["0", "0.1"],
        ["2", "0.1"],
      ],
    );
    assert.deepEqual(await p.counts(), { "sampling/processed": 2, "sampling/dropped/sampling": 2 });
  });
  it("with Math.random keeps about the rate's share", () => {
    const p = stagePipeline([{ sampling: { rate: 0.25 } }], { random: Math.random });
    const kept = p.run(Array.from({ length: 4000 }, (_, i) => ({ line: String(i) }))).length;
    assert.ok(kept > 800 && kept < 1200, `kept ${kept} of 4000 at rate 0.25`);
  });
});

describe("truncate stage", () => {
  it("cuts the line to `limit` bytes with the suffix, at a character boundary", () => {
    const p = stagePipeline([{ truncate: { limit: 10, suffix: "..." } }]);
    assert.deepEqual(lines(p.run([{ line: "short" }, { line: "0123456789abc" }, { line: "ééééééé" }])), [
      "short",
      "0123456...",
      "ééé...",
    ]);
  });
  it("cuts labels, structured metadata and extracted values", () => {
    const p = stagePipeline([
      { truncate: { limit: 4, sources: [{ type: "label", name: "app" }, { type: "structured_metadata" }] } },
    ]);
    const [out] = p.run([{ line: "x", labels: { app: "abcdefg", job: "abcdefg" }, metadata: { trace: "123456" } }]);
    assert.deepEqual([out?.labels, out?.metadata], [{ app: "abcd", job: "abcdefg" }, { trace: "1234" }]);
  });
});

describe("match stage", () => {
  it("runs its stages only on the entries its selector selects (Promtail's example)", async () => {
    const p = stagePipeline([
      { json: { expressions: { app: null } } },
      { labels: { app: null } },
      { match: { selector: '{app="loki"}', stages: [{ json: { expressions: { msg: "message" } } }] } },
      { match: { selector: '{app="pokey"}', stages: [{ json: { expressions: { msg: "msg" } } }] } },
      { output: { source: "msg" } },
    ]);
    const out = p.run([
      { line: '{"app":"loki","level":"WARN","message":"app1 log line"}' },
      { line: '{"app":"pokey","level":"ERROR","msg":"app2 log line"}' },
      { line: '{"app":"other","msg":"untouched"}' },
    ]);
    assert.deepEqual(lines(out), ["app1 log line", "app2 log line", '{"app":"other","msg":"untouched"}']);
    const counts = await p.counts();
    assert.equal(counts["json/processed"], 3 + 2, "the nested json stages ran once each");
    assert.equal(counts["output/failed/missing_source"], 1);
  });
  it("drops what a selector with line filters selects, counted under drop_counter_reason", async () => {
    const p = stagePipeline([
      {
        match: {
          selector: '{app="promtail"} |~ ".*noisy error.*" != "keep"',
          action: "drop",
          drop_counter_reason: "promtail_noisy_error",
        },
      },
    ]);
    const out = p.run([
      { line: "a noisy error here", labels: { app: "promtail" } },
      { line: "a noisy error, keep it", labels: { app: "promtail" } },
      { line: "a noisy error elsewhere", labels: { app: "web" } },
    ]);
    assert.deepEqual(lines(out), ["a noisy error, keep it", "a noisy error elsewhere"]);
    assert.deepEqual(await p.counts(), { "match/dropped/promtail_noisy_error": 1, "match/processed": 2 });
  });
  it("a nested stage's drop drops the entry", () => {
    const p = stagePipeline([{ match: { selector: '{job=~".+"}', stages: [{ drop: { expression: "debug" } }] } }]);
    assert.deepEqual(lines(p.run([{ line: "debug x" }, { line: "info y" }])), ["info y"]);
  });
  it("refuses a selector that is not a stream selector with line filters, and bad nested stages, naming the key", () => {
    assert.throws(() => stagePipeline([{ match: { selector: '{app="a"' } }]), /selector/);
    assert.throws(() => stagePipeline([{ match: { selector: '{app="a"} | json' } }]), /only line filters/);
    assert.throws(() => stagePipeline([{ match: { selector: 'count_over_time({a="b"}[1m])' } }]), /stream selector/);
    assert.throws(
      () => stagePipeline([{ match: { selector: '{a="b"}', stages: [{ regex: { expression: "(" } }] } }]),
      (err: Error) =>
        err.message.includes('"match"') && err.message.includes('"stages"') && err.message.includes('"regex"'),
    );
  });
});
