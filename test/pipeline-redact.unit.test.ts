import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { luhnValid } from "../collector/processing/stages/redact-detectors.js";
import { lookAlikes, ordinaryCorpus, SECRET_DETECTORS, secretCorpus } from "./helpers/secrets-corpus.js";
import { stagePipeline } from "./helpers/stages.js";

// The redact stage: every generated secret of every detector replaced by its marker, look-alikes untouched, the
// false-positive rate on ordinary log lines below the figure docs/processing.md states, and counts per detector.

/** The false-positive rate docs/processing.md states for the default detectors: lines changed per line. */
const MAX_FALSE_POSITIVE_RATE = 0.001;

function redactor(config: Record<string, unknown> = {}) {
  const registry = new Registry();
  const pipeline = stagePipeline([{ redact: config }], { registry });
  const redactions = async (): Promise<Record<string, number>> => {
    const metric = registry.getSingleMetric("bifrost_collector_pipeline_redactions_total");
    const out: Record<string, number> = {};
    for (const v of (await metric?.get())?.values ?? []) out[String(v.labels["detector"])] = v.value;
    return out;
  };
  return { ...pipeline, redactions };
}

describe("redact stage", () => {
  it("replaces every secret of a generated corpus (270, nine detectors, JSON/logfmt/access-log lines)", async () => {
    const corpus = secretCorpus(30);
    const p = redactor({ detectors: SECRET_DETECTORS });
    const out = p.run(corpus.map((s) => ({ line: s.line })));
    assert.equal(out.length, corpus.length);
    corpus.forEach((secret, i) => {
      const line = out[i]!.line;
      for (const form of secret.forms) assert.ok(!line.includes(form), `${secret.detector} left in: ${line}`);
      assert.ok(line.includes(`<redacted:${secret.detector}>`), `${secret.detector} marker missing: ${line}`);
    });
    const counts = await p.redactions();
    for (const detector of SECRET_DETECTORS)
      assert.ok((counts[detector] ?? 0) >= 30, `${detector}: ${counts[detector]}`);
  });

  it("runs the credential detectors by default; email and IP addresses only when asked", () => {
    const p = redactor();
    const [out] = p.run([{ line: "user=jane@example.com ip=10.1.2.3 ip6=2001:db8::7 key=AKIAIOSFODNN7EXAMPLE" }]);
    assert.equal(out!.line, "user=jane@example.com ip=10.1.2.3 ip6=2001:db8::7 key=<redacted:aws_access_key>");
    const all = redactor({ detectors: ["email", "ipv4", "ipv6"], marker: "***" });
    assert.equal(
      all.run([{ line: "user=jane@example.com ip=10.1.2.3, ip6=2001:db8::7 std::string 12:00:01" }])[0]!.line,
      "user=*** ip=***, ip6=*** std::string 12:00:01",
    );
  });

  it("leaves look-alikes alone: numbers failing Luhn, UUIDs, hashes, timestamps, URLs without a password", () => {
    const lines = lookAlikes(200);
    const out = redactor().run(lines.map((line) => ({ line })));
    assert.deepEqual(
      out.map((e) => e.line),
      lines,
    );
    assert.ok(luhnValid("4111111111111111") && !luhnValid("4111111111111112"));
    const cards = redactor({ detectors: ["credit_card"] });
    // Luhn-valid but no issuer's (a nanosecond timestamp), mixed separators, or too short: not cards.
    const kept = ["t=1765000000000000004", "4111 1111-1111 1111", "411111111111"];
    assert.deepEqual(
      cards.run(kept.map((line) => ({ line }))).map((e) => e.line),
      kept,
    );
  });

  it(`changes fewer than ${MAX_FALSE_POSITIVE_RATE * 100}% of 5000 ordinary log lines`, () => {
    const lines = ordinaryCorpus(5000);
    const out = redactor().run(lines.map((line) => ({ line })));
    const changed = out.filter((e, i) => e.line !== lines[i]);
    const rate = changed.length / lines.length;
    console.log(`false positives: ${changed.length} of ${lines.length} lines (${(rate * 100).toFixed(3)}%)`);
    for (const e of changed.slice(0, 5)) console.log(`  ${e.line}`);
    assert.ok(rate < MAX_FALSE_POSITIVE_RATE, `false-positive rate ${rate}`);
  });

  it("redacts extracted values named by source and structured metadata; custom expressions with a secret group", async () => {
    const p = redactor({
      expressions: [
        { name: "api_key", expression: "api_key=(?P<secret>[a-z0-9]{12,})" },
        { name: "internal", expression: "tok_[A-Za-z0-9]{16}" },
      ],
      source: ["payload"],
      marker: "[{detector}]",
    });
    const registry = new Registry();
    const withJson = stagePipeline(
      [
        { json: { expressions: { payload: "payload" } } },
        { redact: { source: ["payload"], line: false } },
        { labels: { payload: null } },
      ],
      { registry },
    );
    const [json] = withJson.run([{ line: '{"payload":"key AKIAIOSFODNN7EXAMPLE"}' }]);
    assert.equal(json!.labels["payload"], "key <redacted:aws_access_key>");
    assert.equal(json!.line, '{"payload":"key AKIAIOSFODNN7EXAMPLE"}', "line: false leaves the line");
    const [out] = p.run([
      {
        line: "call api_key=abcdef0123456789 with tok_ABCDEFGHijklmnop",
        metadata: { trace: "x", auth: "Bearer abcdefghijklmnop" },
      },
    ]);
    assert.equal(out!.line, "call api_key=[api_key] with [internal]");
    assert.deepEqual(out!.metadata, { trace: "x", auth: "Bearer [bearer_token]" });
    assert.deepEqual(await p.redactions(), { api_key: 1, internal: 1, bearer_token: 1 });
  });

  it("refuses unknown detectors, bad expressions and an empty set", () => {
    assert.throws(() => stagePipeline([{ redact: { detectors: ["ssn"] } }]), /detectors/);
    assert.throws(
      () => stagePipeline([{ redact: { expressions: [{ name: "x", expression: "(a" }] } }]),
      /missing closing/,
    );
    assert.throws(() => stagePipeline([{ redact: { detectors: [] } }]), /at least one detector/);
  });
});
