import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { configSchema } from "../config.js";
import { IngestDefaults } from "../common/ingest-defaults.js";
import type { LogStream } from "../proto/batch.js";
import { labelsOf, NO_LABELS, type Labels } from "../proto/labels.js";

// Loki 3's ingestion defaults (issue 16 item 1): the `service_name` a stream gets and the `detected_level` each
// entry gets. Every expectation below is what a real Grafana Loki (main of 2026-08, default limits) stored for the
// same pushed stream, read back with X-Loki-Response-Encoding-Flags: categorize-labels.

const limits = configSchema().parse({}).collector.limits;
const defaults = new IngestDefaults(limits, limits);

function stored(labels: Record<string, string>, line = "x", metadata: Labels = NO_LABELS): LogStream {
  return defaults.apply({
    labels: labelsOf(Object.entries(labels)),
    entries: [{ timeUnixNano: 1n, line, metadata }],
  });
}

describe("ingestion defaults: service_name", () => {
  const discovered: [Record<string, string>, string][] = [
    [{ service: "v" }, "v"],
    [{ app: "v" }, "v"],
    [{ application: "v" }, "v"],
    [{ app_name: "v" }, "v"],
    [{ name: "v" }, "v"],
    [{ app_kubernetes_io_name: "v" }, "v"],
    [{ container: "v" }, "v"],
    [{ container_name: "v" }, "v"],
    [{ k8s_container_name: "v" }, "v"],
    [{ component: "v" }, "v"],
    [{ workload: "v" }, "v"],
    [{ job: "v" }, "v"],
    [{ k8s_job_name: "v" }, "v"],
    // The first of the list wins, whatever the order of the labels.
    [{ job: "j", app: "a" }, "a"],
    [{ service_name: "mine", app: "a" }, "mine"],
    [{ other: "o" }, "unknown_service"],
  ];
  for (const [labels, expected] of discovered) {
    it(`${JSON.stringify(labels)} is stored with service_name=${expected}`, () => {
      const got = stored(labels);
      assert.deepEqual({ ...got.labels }, { ...labels, service_name: expected });
    });
  }

  it("adds nothing when discovery is off", () => {
    const off = new IngestDefaults({ ...limits, discover_service_name: [] }, limits);
    const stream: LogStream = { labels: labelsOf([["app", "a"]]), entries: [] };
    assert.equal(off.apply(stream).labels, stream.labels);
  });
});

describe("ingestion defaults: detected_level", () => {
  const lines: [string, string][] = [
    ["level=info msg=a", "info"],
    ["level=WARN msg=b", "warn"],
    ["lvl=dbg x=1", "debug"],
    ["severity=critical", "critical"],
    ["level=fatal", "fatal"],
    ["level=trace", "trace"],
    ["level=warning", "warn"],
    ["level=err", "error"],
    ["level=information", "info"],
    ["level=notice", "unknown"],
    ["level=panic", "unknown"],
    ['level="error" quoted', "error"],
    ["err=something failed", "error"],
    ["status=error", "error"],
    ['{"level":"error"}', "error"],
    ['{"LEVEL":"Info"}', "info"],
    ['{"severity":"WARNING"}', "warn"],
    ['{"SeverityText":"debug"}', "debug"],
    ['{"log":{"level":"error"}}', "error"],
    ['{"log.level":"warn"}', "warn"],
    ['{"level":5}', "unknown"],
    ['{"msg":"level=error inside"}', "error"],
    ["ERROR something failed", "error"],
    ["WARN something", "warn"],
    ["Warning: deprecated", "warn"],
    ["CRITICAL disk", "critical"],
    ["FATAL boom", "fatal"],
    ["[info] started", "info"],
    ["an error happened", "error"],
    ["panic: runtime error", "error"],
    ["debug: x", "debug"],
    ["E1207 glog error", "error"],
    ["Exception in thread main", "unknown"],
    ["I1207 12:00:00 glog style", "unknown"],
    ["INF started", "unknown"],
    ["trc tracing", "unknown"],
    ["<error> xml-ish", "unknown"],
    ["nothing here", "unknown"],
  ];
  for (const [line, level] of lines) {
    it(`${JSON.stringify(line)} gets detected_level=${level}`, () => {
      assert.deepEqual({ ...stored({ app: "a" }, line).entries[0]!.metadata }, { detected_level: level });
    });
  }

  it("takes a level label first, normalized, and keeps a value it does not know", () => {
    assert.equal(stored({ level: "Error" }, "level=info").entries[0]!.metadata.detected_level, "error");
    assert.equal(stored({ level: "weird" }).entries[0]!.metadata.detected_level, "weird");
  });

  it("takes structured metadata before the line, and keeps the metadata the entry had", () => {
    const fromMetadata = stored({ app: "a" }, "plain", labelsOf([["level", "warn"]]));
    assert.deepEqual({ ...fromMetadata.entries[0]!.metadata }, { level: "warn", detected_level: "warn" });
    const severity = stored({ app: "a" }, "plain", labelsOf([["severity_number", "17"]]));
    assert.deepEqual({ ...severity.entries[0]!.metadata }, { severity_number: "17", detected_level: "error" });
    const given = stored({ app: "a" }, "level=info", labelsOf([["detected_level", "ERROR"]]));
    assert.deepEqual({ ...given.entries[0]!.metadata }, { detected_level: "error" });
  });
});
