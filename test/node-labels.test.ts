import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { loadConfig } from "../config.js";
import { validateBatch } from "../proto/validate.js";
import { CollectorProcess, consumeAll } from "./helpers/collector-process.js";
import { type AllInOne, startAllInOne, stopChild } from "./helpers/processes.js";
import { createTopics, deleteTopics, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";

// collector.node_labels (issue 16 item 6): which of the node's identity labels the collector adds. The ingestion
// contract counts exactly those, so that what a receiver accepts every later stage accepts too, and with none
// added no answer of the query API shows a node label.

const MAX_LABELS = 4;
const nowNs = () => String(BigInt(Date.now()) * 1_000_000n);
/** A stream at the label limit: service_name set, so that Loki's service_name default adds none. */
const full = { service_name: "api", env: "prod", team: "core", zone: "a" };

async function push(url: string, stream: Record<string, string>, line: string) {
  const response = await fetch(`${url}/loki/api/v1/push`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Scope-OrgID": "acme" },
    body: JSON.stringify({ streams: [{ stream, values: [[nowNs(), line]] }] }),
  });
  return { status: response.status, body: await response.text() };
}

describe("collector.node_labels on the collector's receivers (real process, real Kafka)", () => {
  for (const nodeLabels of [[], ["node", "site", "region"]] as const) {
    it(`accepts only what the aggregator takes with node_labels [${nodeLabels.join(", ")}]`, async () => {
      const topic = uniqueName("node_labels");
      const kafka = new Kafka({ clientId: "node-labels-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
      await createTopics(kafka, [{ topic, numPartitions: 1 }]);
      const limits = { max_labels: MAX_LABELS };
      const collector = await CollectorProcess.configure(mkdtempSync(join(tmpdir(), "bifrost-node-labels-")), {
        nodeId: "edge-9",
        node: { site: "store-4" },
        kafka: { brokers: KAFKA_BROKERS, topic },
        collector: { node_labels: nodeLabels, limits },
        aggregator: { limits },
      });
      try {
        await collector.start();
        const atLimit = await push(collector.url, full, "at the limit");
        const small = await push(collector.url, { service_name: "api" }, "small");
        if (nodeLabels.length === 0) {
          assert.equal(atLimit.status, 204, atLimit.body);
        } else {
          // Refused at the door, with the reason: accepted, it would have been refused by the aggregator.
          assert.equal(atLimit.status, 400);
          assert.match(atLimit.body, /once this collector adds node="edge-9", site="store-4"/);
        }
        assert.equal(small.status, 204, small.body);
        await collector.drained();
        const messages = await consumeAll(kafka, topic);
        const streams = messages.flatMap(({ batch }) => {
          validateBatch(batch, { ...loadConfig({ env: {} }).aggregator.limits, ...limits });
          return batch.streams.map((s) => ({ ...s.labels }));
        });
        const added = nodeLabels.length === 0 ? {} : { node: "edge-9", site: "store-4" };
        assert.deepEqual(
          streams,
          [...(nodeLabels.length === 0 ? [full] : []), { service_name: "api" }].map((l) => ({ ...l, ...added })),
        );
      } finally {
        await collector.stop();
        await deleteTopics(kafka, [topic]);
      }
    });
  }

  it("reads node_labels from BIFROST_COLLECTOR__NODE_LABELS, empty meaning none", () => {
    assert.deepEqual(loadConfig({ env: { BIFROST_COLLECTOR__NODE_LABELS: "" } }).collector.node_labels, []);
    assert.deepEqual(loadConfig({ env: { BIFROST_COLLECTOR__NODE_LABELS: "node,region" } }).collector.node_labels, [
      "node",
      "region",
    ]);
    assert.deepEqual(loadConfig({ env: {} }).collector.node_labels, ["node", "site", "region"]);
    assert.throws(() => loadConfig({ env: { BIFROST_COLLECTOR__NODE_LABELS: "host" } }), /node_labels/);
  });
});

describe("the query API with and without the node label (bifrost all)", () => {
  const running: AllInOne[] = [];
  after(async () => {
    for (const one of running) await stopChild(one.child);
  });

  for (const nodeLabels of ["", "node"]) {
    it(`labels, series and volume ${nodeLabels === "" ? "show no node label when none is added" : "show node when added"}`, async () => {
      const all = await startAllInOne({ BIFROST_NODE__ID: "edge-3", BIFROST_COLLECTOR__NODE_LABELS: nodeLabels });
      running.push(all);
      const start = String(BigInt(Date.now() - 60_000) * 1_000_000n);
      assert.equal((await push(all.collector, { service_name: "api", env: "prod" }, "hello")).status, 204);
      const range = `start=${start}&end=${String(BigInt(Date.now() + 60_000) * 1_000_000n)}`;
      const get = async (path: string) => {
        const response = await fetch(`${all.query}${path}`, { headers: { "X-Scope-OrgID": "acme" } });
        assert.equal(response.status, 200, path);
        return ((await response.json()) as { data: unknown }).data;
      };
      // The collector writes, the embedded aggregator stores: wait for the line to be readable.
      for (
        let i = 0;
        ((await get(`/loki/api/v1/series?match[]={env="prod"}&${range}`)) as unknown[]).length === 0;
        i++
      ) {
        assert.ok(i < 200, "the pushed line became readable");
        await new Promise((r) => setTimeout(r, 100));
      }
      const expected =
        nodeLabels === "" ? { env: "prod", service_name: "api" } : { env: "prod", node: "edge-3", service_name: "api" };
      assert.deepEqual(await get(`/loki/api/v1/labels?${range}`), Object.keys(expected));
      assert.deepEqual(await get(`/loki/api/v1/series?match[]={env="prod"}&${range}`), [expected]);
      assert.deepEqual(await get(`/loki/api/v1/label/node/values?${range}`), nodeLabels === "" ? [] : ["edge-3"]);
      const volume = (await get(
        `/loki/api/v1/index/volume?query=${encodeURIComponent('{env="prod"}')}&aggregateBy=labels&${range}`,
      )) as { result: { metric: Record<string, string> }[] };
      // One row per label name, as Loki answers aggregateBy=labels: none for a label no stream has.
      const names = volume.result.flatMap((r) => Object.keys(r.metric)).sort();
      assert.deepEqual(names, Object.keys(expected), JSON.stringify(volume.result));
    });
  }
});
