import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { ConfigError } from "../common/config.js";
import { loadConfig } from "../config.js";
import { InputPipelines, processedBatcher } from "../collector/processing/pipeline/processed-batcher.js";
import { Pipeline } from "../collector/processing/pipeline/pipeline.js";
import { pipelineStagesSchema } from "../collector/processing/pipeline/schema.js";
import type { LogStream } from "../proto/batch.js";
import { labelsOf, NO_LABELS } from "../proto/labels.js";
import { ValidationError } from "../proto/validate.js";

// pipeline_stages in the configuration (Promtail's YAML, errors naming the key) and the batcher wrapper that
// puts the pipeline between an input and the batcher.

const dir = mkdtempSync(join(tmpdir(), "bifrost-pipeline-config-"));
let files = 0;
function load(yaml: string) {
  const path = join(dir, `config-${files++}.yaml`);
  writeFileSync(path, yaml);
  return loadConfig({ file: path, env: {} });
}

function problemsOf(yaml: string): string[] {
  try {
    load(yaml);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("pipeline_stages configuration", () => {
  it("reads Promtail's YAML in every place a pipeline is configured", () => {
    const config = load(`
collector:
  pipeline_stages:
    - cri: {}
    - docker:
    - json:
        expressions:
          level:
          ts: time
    - timestamp:
        source: ts
        format: RFC3339Nano
  push_pipeline_stages:
    - labeldrop: [filename]
  files:
    - paths: [/var/log/app.log]
      pipeline_stages:
        - drop:
            older_than: 24h
            longer_than: 8KB
  syslog:
    - listen: 127.0.0.1:0
      pipeline_stages: [{ static_labels: { source: syslog } }]
  journal:
    pipeline_stages: [{ sampling: { rate: 0.5 } }]
  kubernetes:
    pipeline_stages: [{ limit: { rate: 10, burst: 20, drop: true } }]
`);
    const c = config.collector;
    assert.deepEqual(Object.keys(c.pipeline_stages[2]!), ["json"]);
    assert.deepEqual(c.pipeline_stages[1], { docker: {} });
    assert.deepEqual(c.files[0]!.pipeline_stages, [
      { drop: { older_than: 86_400_000, longer_than: 8000, separator: ";", drop_counter_reason: "drop_stage" } },
    ]);
    assert.deepEqual(c.push_pipeline_stages, [{ labeldrop: ["filename"] }]);
    assert.equal(c.syslog[0]!.pipeline_stages?.length, 1);
    assert.equal(c.journal.pipeline_stages?.length, 1);
    assert.equal(c.kubernetes.pipeline_stages?.length, 1);
  });

  it("names the bad key and why", () => {
    const problems = problemsOf(`
collector:
  pipeline_stages:
    - json: { expressions: { a: "a[" } }
    - regex: { expression: "(?P<x>" }
    - timestamp: { source: ts, format: RFC3339, action_on_failure: guess }
    - nosuch: {}
    - { labels: { a: }, static_labels: { b: c } }
  files:
    - paths: [/x]
      pipeline_stages: [{ drop: { value: v } }]
`);
    const has = (prefix: string, text: RegExp) =>
      assert.ok(
        problems.some((p) => p.startsWith(prefix) && text.test(p)),
        `${prefix} ${text}:\n${problems.join("\n")}`,
      );
    has("collector.pipeline_stages[0].json.expressions.a:", /invalid JMESPath/);
    has("collector.pipeline_stages[1].regex.expression:", /missing/);
    has("collector.pipeline_stages[2].timestamp.action_on_failure:", /fudge/);
    has("collector.pipeline_stages[3]: unknown key nosuch", /./);
    has("collector.pipeline_stages[4]:", /exactly one stage/);
    has("collector.files[0].pipeline_stages[0].drop:", /value needs a source/);
  });
});

/** A batcher that keeps what it is given, and refuses a write when told to. */
function recordingBatcher() {
  const added: { tenant: string; streams: LogStream[] }[] = [];
  return {
    added,
    flush: () => {},
    add: async (tenant: string, data: { streams?: LogStream[] }) => {
      added.push({ tenant, streams: data.streams ?? [] });
    },
  };
}

const stream = (labels: Record<string, string>, lines: string[]): LogStream => ({
  labels: labelsOf(Object.entries(labels)),
  entries: lines.map((line, i) => ({ line, timeUnixNano: BigInt(i + 1), metadata: NO_LABELS })),
});

describe("processed batcher", () => {
  it("runs the pipeline, writes each tenant's share, and drops what the contract refuses, counted", async () => {
    const batcher = recordingBatcher();
    const registry = new Registry();
    const stages = pipelineStagesSchema().parse([
      { regex: { expression: "^(?P<t>\\S+) (?P<big>\\S+)" } },
      { tenant: { source: "t" } },
      { labels: { big: null } },
    ]);
    // The contract refuses a label value over 5 characters.
    const contract = {
      screen: (_tenant: string, data: { streams: LogStream[] }) => {
        const refused = new Map<string, { count: number; message: string }>();
        const streams = data.streams.filter((s) => {
          if ((s.labels["big"] ?? "").length <= 5) return true;
          const err = new ValidationError("label_value_too_long", "too long");
          refused.set(err.reason, {
            count: (refused.get(err.reason)?.count ?? 0) + s.entries.length,
            message: err.message,
          });
          return false;
        });
        return { data: { streams }, entries: 0, refused };
      },
    };
    const wrapped = processedBatcher({
      batcher,
      pipeline: new Pipeline(stages, "files[0]"),
      contract: contract as never,
      registry,
    });
    await wrapped.add("fake", { streams: [stream({ job: "a" }, ["t1 small", "t2 small", "t1 muchtoolong"])] });
    assert.deepEqual(
      batcher.added.map((a) => [a.tenant, a.streams.flatMap((s) => s.entries.map((e) => e.line))]),
      [
        ["t1", ["t1 small"]],
        ["t2", ["t2 small"]],
      ],
    );
    const values = (await registry.getSingleMetric("bifrost_collector_pipeline_entries_total")!.get()).values;
    assert.ok(
      values.some(
        (v) => v.labels["stage"] === "contract" && v.labels["reason"] === "label_value_too_long" && v.value === 1,
      ),
      JSON.stringify(values),
    );
  });

  it("hands inputs without a pipeline the plain batcher, others their own or the default pipeline", () => {
    const batcher = recordingBatcher();
    const make = (defaults: unknown[]) =>
      new InputPipelines({
        batcher,
        contract: { screen: () => assert.fail() } as never,
        registry: new Registry(),
        defaults: pipelineStagesSchema().parse(defaults),
      });
    assert.equal(make([]).batcherFor("journal", undefined), batcher);
    assert.notEqual(make([{ cri: {} }]).batcherFor("journal", undefined), batcher);
    assert.equal(make([{ cri: {} }]).batcherFor("journal", []), batcher);
  });
});
