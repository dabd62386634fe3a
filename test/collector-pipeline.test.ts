import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import type { LogEntry } from "../proto/batch.js";
import { until } from "./helpers/aggregation.js";
import { CollectorProcess, consumeAll } from "./helpers/collector-process.js";
import { createTopics, freePort, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";

// The processing pipeline in the real collector process, shipping to the real Kafka broker: a file written
// while the collector is down is read after it restarts, and the timestamp stage gives each entry the time its
// line holds, not the time it was read; pushed logs go through the push pipeline (parse, label, drop, tenant).
describe("collector processing pipeline", () => {
  let kafka: Kafka;
  before(() => {
    kafka = new Kafka({ clientId: "collector-pipeline-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  });

  it("gives lines read after a restart their own time, and runs the syslog listener's and the push pipelines", async () => {
    const topic = uniqueName("pipeline");
    await createTopics(kafka, [{ topic, numPartitions: 1 }]);
    const dir = mkdtempSync(join(tmpdir(), "bifrost-pipeline-"));
    const logFile = join(dir, "app.log");
    writeFileSync(logFile, "");
    const syslogPort = await freePort();
    const collector = await CollectorProcess.configure(dir, {
      nodeId: "edge-pipeline",
      kafka: { brokers: KAFKA_BROKERS, topic },
      collector: {
        files: [
          {
            paths: [logFile],
            labels: { app: "tail" },
            pipeline_stages: [
              { regex: { expression: "^(?P<ts>\\S+) (?P<level>\\w+) " } },
              { timestamp: { source: "ts", format: "RFC3339Nano" } },
              { labels: { level: null } },
            ],
          },
        ],
        files_poll_ms: 50,
        syslog: [
          {
            listen: `127.0.0.1:${syslogPort}`,
            protocol: "tcp",
            labels: { job: "syslog" },
            pipeline_stages: [{ regex: { expression: "user=(?P<user>\\w+)" } }, { labels: { user: null } }],
          },
        ],
        push_pipeline_stages: [
          { json: { expressions: { level: "level", customer: "customer" } } },
          { drop: { source: "level", value: "debug" } },
          { labels: { level: null } },
          { tenant: { source: "customer" } },
          { output: { source: "level" } },
        ],
      },
    });
    const read = () => collector.metric("bifrost_collector_file_lines_read_total");
    // Read times are now; the lines' own times lie minutes back, one second apart.
    const base = Date.now() - 30 * 60_000;
    let pushNs = 0n;
    const lineAt = (i: number, level: string) => `${new Date(base + i * 1000).toISOString()} ${level} line ${i}`;
    try {
      await collector.start();
      appendFileSync(logFile, `${lineAt(0, "info")}\n`);
      await until("the first line read", async () => (await read()) === 1, 30_000);
      await collector.drained();
      await collector.stop();

      appendFileSync(logFile, [1, 2, 3, 4, 5].map((i) => `${lineAt(i, i % 2 ? "warn" : "error")}\n`).join(""));
      await collector.start();
      await until("the lines written while down read", async () => (await read()) === 5, 30_000);

      pushNs = BigInt(Date.now()) * 1_000_000n;
      const push = await fetch(`${collector.url}/loki/api/v1/push`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-scope-orgid": "edge" },
        body: JSON.stringify({
          streams: [
            {
              stream: { job: "pushed" },
              values: [
                [String(pushNs), '{"level":"debug","customer":"acme"}'],
                [String(pushNs + 1n), '{"level":"info","customer":"acme"}'],
                [String(pushNs + 2n), '{"level":"warn"}'],
              ],
            },
          ],
        }),
      });
      assert.equal(push.status, 204);
      await new Promise<void>((resolve, reject) => {
        const socket = connect(syslogPort, "127.0.0.1", () =>
          socket.end("<13>1 2026-12-07T10:00:00Z host app - - - login user=marco\n", resolve),
        );
        socket.on("error", reject);
      });
      await until(
        "the syslog message read",
        async () =>
          (await collector.metric(
            "bifrost_collector_pipeline_entries_total",
            'pipeline="syslog[0]",stage="labels"',
          )) === 1,
        30_000,
      );
      await collector.drained();
      assert.equal(
        await collector.metric(
          "bifrost_collector_pipeline_entries_total",
          'pipeline="push",stage="drop",position="1",outcome="dropped",reason="drop_stage"',
        ),
        1,
      );
      assert.equal(
        await collector.metric(
          "bifrost_collector_pipeline_entries_total",
          'pipeline="files[0]",stage="timestamp",position="1",outcome="processed"',
        ),
        5,
      );
      await collector.stop();
    } finally {
      await collector.stop("SIGKILL");
    }

    const entries: { tenant: string; labels: Record<string, string>; entry: LogEntry }[] = [];
    for (const { batch } of await consumeAll(kafka, topic))
      for (const stream of batch.streams)
        for (const entry of stream.entries) entries.push({ tenant: batch.tenant, labels: { ...stream.labels }, entry });
    const tailed = entries.filter((e) => e.labels["app"] === "tail");
    assert.deepEqual(
      tailed
        .map((e) => [e.entry.line, e.entry.timeUnixNano, e.labels["level"]])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      [0, 1, 2, 3, 4, 5].map((i) => [
        lineAt(i, i === 0 ? "info" : i % 2 ? "warn" : "error"),
        BigInt(base + i * 1000) * 1_000_000n,
        i === 0 ? "info" : i % 2 ? "warn" : "error",
      ]),
      "each tailed line has the time it holds",
    );
    const syslog = entries.filter((e) => e.labels["job"] === "syslog");
    assert.deepEqual(
      syslog.map((e) => [e.labels["user"], e.entry.line]),
      [["marco", "login user=marco"]],
      "the syslog listener's own pipeline labelled the message",
    );
    const pushed = entries.filter((e) => e.labels["job"] === "pushed");
    assert.deepEqual(pushed.map((e) => [e.tenant, e.labels["level"], e.entry.line, e.entry.timeUnixNano]).sort(), [
      ["acme", "info", "info", pushNs + 1n],
      ["edge", "warn", "warn", pushNs + 2n],
    ]);
  });
});
