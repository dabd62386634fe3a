import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runOne, stagePipeline } from "./helpers/stages.js";

// The label and metadata stages, from the examples of Promtail's documentation, and relabel_configs and
// detected_level on entries.

describe("labels and structured_metadata stages", () => {
  const parse = { regex: { expression: "^(?P<user>\\S+) (?P<level>\\S+) (?P<trace>\\S+)" } };
  it("copy extracted values into stream labels and structured metadata, empty source naming the same key", () => {
    const out = runOne(
      [parse, { labels: { user: null, severity: "level" } }, { structured_metadata: { trace_id: "trace" } }],
      {
        line: "marco warn abc123 rest",
      },
    );
    assert.deepEqual(out?.labels, { job: "test", user: "marco", severity: "warn" });
    assert.deepEqual(out?.metadata, { trace_id: "abc123" });
  });
  it("set nothing for a missing value and count it as failed", async () => {
    const p = stagePipeline([{ labels: { absent: null } }]);
    assert.deepEqual(p.run([{ line: "x" }])[0]?.labels, { job: "test" });
    assert.deepEqual(await p.counts(), { "labels/failed/missing_source": 1 });
  });
  it("refuse a label name Prometheus would not accept", () => {
    assert.throws(() => stagePipeline([{ labels: { "bad-name": null } }]), /label name/);
  });
});

describe("static_labels, labeldrop, labelallow", () => {
  it("static_labels sets fixed labels", () => {
    assert.deepEqual(runOne([{ static_labels: { custom: "value", env: "prod" } }], { line: "x" })?.labels, {
      job: "test",
      custom: "value",
      env: "prod",
    });
  });
  it("labeldrop removes the named labels, labelallow keeps only them", () => {
    const labels = { job: "api", app: "web", pod: "web-1", filename: "/var/log/a" };
    assert.deepEqual(runOne([{ labeldrop: ["pod", "filename"] }], { line: "x", labels })?.labels, {
      job: "api",
      app: "web",
    });
    assert.deepEqual(runOne([{ labelallow: ["app", "absent"] }], { line: "x", labels })?.labels, { app: "web" });
  });
});

describe("tenant and output stages", () => {
  it("moves entries to the tenant of a value, an extracted value or a label", () => {
    const p = stagePipeline([
      { json: { expressions: { customer: "customer_id" } } },
      { tenant: { source: "customer" } },
    ]);
    const out = p.run([{ line: '{"customer_id":"team-a"}' }, { line: '{"other":1}' }], "fake");
    assert.deepEqual(
      out.map((e) => [e.tenant, e.line]),
      [
        ["team-a", '{"customer_id":"team-a"}'],
        ["fake", '{"other":1}'],
      ],
    );
    assert.equal(runOne([{ tenant: { value: "ops" } }], { line: "x" })?.tenant, "ops");
    assert.equal(runOne([{ tenant: { label: "team" } }], { line: "x", labels: { team: "blue" } })?.tenant, "blue");
  });
  it("keeps the tenant when the value is not a tenant id, counting it", async () => {
    const p = stagePipeline([{ tenant: { label: "team" } }]);
    assert.equal(p.run([{ line: "x", labels: { team: "a/b" } }])[0]?.tenant, "fake");
    assert.deepEqual(await p.counts(), { "tenant/failed/invalid_tenant": 1 });
  });
  it("refuses a tenant stage with none or several of value, source and label", () => {
    assert.throws(() => stagePipeline([{ tenant: {} }]), /exactly one of source, label and value/);
    assert.throws(() => stagePipeline([{ tenant: { value: "a", label: "b" } }]), /exactly one/);
  });
  it("output: the line becomes an extracted value (Promtail's example)", () => {
    const out = runOne(
      [
        { json: { expressions: { user: null, message: null } } },
        { labels: { user: null } },
        { output: { source: "message" } },
      ],
      {
        line: '{"user": "alexis", "message": "hello, world!"}',
      },
    );
    assert.deepEqual([out?.line, out?.labels["user"]], ["hello, world!", "alexis"]);
  });
});

describe("relabel stage", () => {
  it("applies relabel_configs to the stream labels", () => {
    const out = runOne(
      [
        {
          relabel: [
            { source_labels: ["filename"], regex: "/var/log/(.*)\\.log", target_label: "app" },
            { action: "labeldrop", regex: "filename" },
          ],
        },
      ],
      { line: "x", labels: { job: "t", filename: "/var/log/nginx.log" } },
    );
    assert.deepEqual(out?.labels, { job: "t", app: "nginx" });
  });
  it("drops the entry when a keep or drop rule removes its stream, counted as relabel", async () => {
    const p = stagePipeline([{ relabel: [{ source_labels: ["job"], regex: "keep-me", action: "keep" }] }]);
    assert.deepEqual(
      p
        .run([
          { line: "a", labels: { job: "keep-me" } },
          { line: "b", labels: { job: "other" } },
        ])
        .map((e) => e.line),
      ["a"],
    );
    assert.deepEqual(await p.counts(), { "relabel/processed": 1, "relabel/dropped/relabel": 1 });
  });
  it("refuses what Prometheus refuses when the configuration loads", () => {
    assert.throws(() => stagePipeline([{ relabel: [{ action: "hashmod", target_label: "x" }] }]), /non-zero modulus/);
  });
});

describe("detected_level stage", () => {
  const level = (line: string, labels?: Record<string, string>, metadata?: Record<string, string>) =>
    runOne([{ detected_level: {} }], { line, ...(labels ? { labels } : {}), ...(metadata ? { metadata } : {}) })
      ?.metadata["detected_level"];
  it("derives the level as Loki does: stream label, metadata, JSON or logfmt field, level word", () => {
    assert.equal(level("x", { job: "a", level: "WARNING" }), "warn");
    assert.equal(level("x", undefined, { severity: "err" }), "error");
    assert.equal(level('{"level":"debug","msg":"m"}'), "debug");
    assert.equal(level("ts=1 lvl=info msg=m"), "info");
    assert.equal(level("something FATAL happened"), "fatal");
    assert.equal(level("nothing to see"), "unknown");
  });
  it("keeps a detected_level the entry has", () => {
    assert.equal(level("ERROR", undefined, { detected_level: "info" }), "info");
  });
});
