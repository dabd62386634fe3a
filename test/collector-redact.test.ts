import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { CollectorProcess, consumeAll } from "./helpers/collector-process.js";
import { SECRET_DETECTORS, secretCorpus } from "./helpers/secrets-corpus.js";
import { createTopics, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";

// No secret leaves the node: the real collector process with a redact stage in its push pipeline receives
// 270 generated secrets of nine detectors (in lines and in structured metadata), ships to the real Kafka
// broker, and everything that arrived there is read back: no form of any secret is in it, every entry is.
describe("collector redact stage", () => {
  let kafka: Kafka;
  before(() => {
    kafka = new Kafka({ clientId: "collector-redact-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  });

  it("ships none of 270 generated secrets, in lines or structured metadata, and every entry", async () => {
    const topic = uniqueName("redact");
    await createTopics(kafka, [{ topic, numPartitions: 1 }]);
    const dir = mkdtempSync(join(tmpdir(), "bifrost-redact-"));
    const corpus = secretCorpus(30, 2026);
    assert.ok(corpus.length >= 200);
    const collector = await CollectorProcess.configure(dir, {
      nodeId: "edge-redact",
      kafka: { brokers: KAFKA_BROKERS, topic },
      collector: { push_pipeline_stages: [{ redact: { detectors: SECRET_DETECTORS } }] },
    });
    const baseNs = BigInt(Date.now()) * 1_000_000n;
    try {
      await collector.start();
      // Every third secret travels as structured metadata (Loki's third element), the others in the line.
      const values = corpus.map((secret, i) =>
        i % 3 === 2
          ? [String(baseNs + BigInt(i)), `entry ${i}`, { context: secret.line }]
          : [String(baseNs + BigInt(i)), secret.line],
      );
      for (let i = 0; i < values.length; i += 50) {
        const push = await fetch(`${collector.url}/loki/api/v1/push`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ streams: [{ stream: { job: "secrets" }, values: values.slice(i, i + 50) }] }),
        });
        assert.equal(push.status, 204, await push.text());
      }
      await collector.drained();
      const redactions = await collector.metric("bifrost_collector_pipeline_redactions_total", 'pipeline="push"');
      assert.ok(redactions >= corpus.length, `${redactions} redactions counted`);
      await collector.stop();
    } finally {
      await collector.stop("SIGKILL");
    }

    const shipped: string[] = [];
    let entries = 0;
    for (const { batch } of await consumeAll(kafka, topic))
      for (const stream of batch.streams) {
        shipped.push(JSON.stringify(stream.labels));
        for (const entry of stream.entries) {
          entries++;
          shipped.push(entry.line, JSON.stringify(entry.metadata));
        }
      }
    assert.equal(entries, corpus.length, "every entry shipped");
    const text = shipped.join("\n");
    const leaked = corpus.filter((secret) => secret.forms.some((form) => text.includes(form)));
    assert.deepEqual(
      leaked.map((s) => `${s.detector}: ${s.line}`),
      [],
      "secrets that left the node",
    );
    for (const detector of SECRET_DETECTORS) assert.ok(text.includes(`<redacted:${detector}>`), detector);
    rmSync(dir, { recursive: true, force: true });
  });
});
