import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { compressSync } from "snappy";
import { edgeProfile } from "../deploy/edge/profile.js";
import { until } from "./helpers/aggregation.js";
import { checkDelivery, CollectorProcess, consumeAll, LokiLoad } from "./helpers/collector-process.js";
import { PushRequest } from "./helpers/pipeline.js";
import { createTopics, KAFKA_BROKERS, REPO_ROOT, uniqueName } from "./helpers/services.js";

// The edge bundle (dist/edge/cli.js, deploy/edge/build.ts) is what edge nodes run, with the V8 options and
// allocator settings of the systemd unit: the same collector, bundled and minified, so it is tested as a whole
// process here rather than trusted to behave like dist/cli.js.
describe("the edge bundle, run as the systemd unit runs it", () => {
  const kafka = new Kafka({ clientId: "edge-bundle-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });

  it("ships Loki JSON and protobuf pushes and a tailed file to Kafka exactly once, in order, across a restart", async (t) => {
    const topic = uniqueName("edge_bundle");
    await createTopics(kafka, [{ topic, numPartitions: 1 }]);
    const dir = mkdtempSync(join(tmpdir(), "bifrost-edge-bundle-"));
    const logFile = join(dir, "app.log");
    writeFileSync(logFile, "");
    const collector = await CollectorProcess.configure(dir, {
      nodeId: "edge-bundle",
      kafka: { brokers: KAFKA_BROKERS, topic },
      edge: true,
      collector: { files: [{ paths: [logFile], labels: { app: "tail" } }], files_poll_ms: 50 },
    });
    const load = new LokiLoad(() => collector.url, { clients: 1, entriesPerPush: 20, tenant: "edge" });
    const tailed: string[] = [];
    const protobufLines: string[] = [];
    const startS = Math.floor(Date.now() / 1000);
    let n = 0;
    const round = async () => {
      for (let i = 0; i < 5; i++, n += 20) assert.equal((await load.pushOnce("c0", n)).status, "204");
      // snappy is loaded by the first protobuf push: this is that push, in the bundle.
      const lines = Array.from({ length: 10 }, (_, i) => `protobuf ${protobufLines.length + i}`);
      const body = compressSync(
        Buffer.from(
          PushRequest.encode({
            streams: [
              {
                labels: '{app="proto"}',
                entries: lines.map((line, i) => ({
                  timestamp: { seconds: startS + protobufLines.length + i, nanos: 0 },
                  line,
                })),
              },
            ],
          }).finish(),
        ),
      );
      const response = await fetch(`${collector.url}/loki/api/v1/push`, {
        method: "POST",
        headers: { "Content-Type": "application/x-protobuf", "X-Scope-OrgID": "edge" },
        body,
      });
      assert.equal(response.status, 204, await response.text());
      protobufLines.push(...lines);
      const more = Array.from({ length: 100 }, (_, i) => `tailed ${tailed.length + i} ${"x".repeat(i)}`);
      appendFileSync(logFile, more.map((line) => `${line}\n`).join(""));
      tailed.push(...more);
      // Counted since the process started; the positions file makes it go on where the last one stopped.
      await until(
        "the tail read the new lines",
        async () => (await collector.metric("bifrost_collector_file_lines_read_total")) === more.length,
        30_000,
      );
      await collector.drained();
    };
    try {
      await collector.start();
      await round();
      await collector.stop();
      await collector.start();
      await round();
      await collector.stop();
    } finally {
      await collector.stop("SIGKILL");
    }
    const messages = await consumeAll(kafka, topic);
    const delivery = checkDelivery(load, messages);
    assert.equal(delivery.duplicateBatches, 0);
    assert.equal(load.acknowledged.length, 200);
    const linesOf = (app: string) =>
      messages.flatMap(({ batch }) =>
        batch.streams.filter((s) => s.labels["app"] === app).flatMap((s) => s.entries.map((e) => e.line)),
      );
    assert.deepEqual(linesOf("proto"), protobufLines);
    assert.deepEqual(linesOf("tail"), tailed);
    assert.ok(messages.every(({ batch }) => batch.nodeId === "edge-bundle"));
    t.diagnostic(JSON.stringify({ batches: messages.length, ...delivery }));
  });

  it("carries only the collector and says so for the other roles", () => {
    const profile = edgeProfile();
    for (const role of ["aggregator", "query", "all"]) {
      const result = spawnSync(process.execPath, [join(REPO_ROOT, profile.script), role], {
        encoding: "utf8",
        env: { ...process.env, ...profile.env },
        timeout: 60_000,
      });
      assert.notEqual(result.status, 0, role);
      assert.match(result.stderr, /the edge build carries only the collector/, role);
    }
  });
});
