import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { until } from "./helpers/aggregation.js";
import { checkDelivery, CollectorProcess, consumeAll, LokiLoad } from "./helpers/collector-process.js";
import { createTopics, privateKafka, uniqueName } from "./helpers/services.js";

// The real collector process (`bifrost collector --config`) taking Loki pushes over HTTP while its private
// Kafka broker is killed and restarted: delivery through the outage, and the two disk-budget policies.
describe("collector process through a Kafka outage", () => {
  let broker: Awaited<ReturnType<typeof privateKafka>>;
  let kafka: Kafka;
  before(async () => {
    broker = await privateKafka();
    kafka = new Kafka({ clientId: "collector-outage-test", brokers: broker.brokers, logLevel: logLevel.NOTHING });
  });
  after(async () => {
    await broker.run("down");
  });

  /** A collector for `topic` on the private broker, its files in a new directory. */
  const collectorFor = async (topic: string, collector: (dir: string) => Record<string, unknown> = () => ({})) => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-collector-outage-"));
    await createTopics(kafka, [{ topic, numPartitions: 2 }]);
    return {
      dir,
      collector: await CollectorProcess.configure(dir, {
        nodeId: "edge-outage",
        kafka: { brokers: broker.brokers, topic },
        collector: collector(dir),
      }),
    };
  };

  it("delivers every acknowledged entry exactly as sent, in order, when Kafka is killed and restarted under steady push load", async (t) => {
    const topic = uniqueName("outage");
    const { collector } = await collectorFor(topic);
    const load = new LokiLoad(() => collector.url, { clients: 2, entriesPerPush: 20, tenant: "outage", pauseMs: 20 });
    const shipped = () => collector.metric("bifrost_collector_batches_shipped_total");
    let retries = 0;
    let buffered = 0;
    try {
      await collector.start();
      load.start();
      await until("batches shipped before the outage", async () => (await shipped()) > 0, 60_000);
      await broker.run("kill");
      const before = await shipped();
      await until(
        "batches waiting in the buffer",
        async () => (buffered = await collector.metric("bifrost_collector_buffer_batches")) > 20,
        60_000,
      );
      await broker.run("up");
      await until("shipping again after the restart", async () => (await shipped()) > before, 120_000);
      await load.stop();
      await collector.drained();
      retries = await collector.metric("bifrost_collector_ship_retries_total");
      await collector.stop();
    } finally {
      await load.stop();
      await collector.stop("SIGKILL");
      await broker.run("up");
    }
    assert.deepEqual([...load.statuses.keys()], ["204"], "every push was acknowledged");
    const delivery = checkDelivery(load, await consumeAll(kafka, topic));
    assert.equal(delivery.unacknowledgedArrived, 0);
    t.diagnostic(
      JSON.stringify({ pushes: load.statuses.get("204"), bufferedDuringOutage: buffered, retries, ...delivery }),
    );
  });

  it("under policy block answers 503 with Retry-After, pauses the file tail, counts both, then resumes without loss", async (t) => {
    const topic = uniqueName("block");
    const { dir, collector } = await collectorFor(topic, (d) => ({
      wal: { max_bytes: 65536, segment_bytes: 8192, when_full: "block" },
      batch: { max_bytes: 4096 },
      files: [{ paths: [join(d, "app.log")], labels: { app: "tail" } }],
      files_poll_ms: 50,
    }));
    const logFile = join(dir, "app.log");
    writeFileSync(logFile, "");
    const tailLines = Array.from({ length: 150 }, (_, i) => `tailed line ${i} ${randomBytes(60).toString("hex")}`);
    const linesRead = () => collector.metric("bifrost_collector_file_lines_read_total");
    const paused = () => collector.metric("bifrost_collector_file_tail_paused");
    const load = new LokiLoad(() => collector.url, { clients: 1, entriesPerPush: 20, tenant: "budget", padBytes: 200 });
    let n = 0;
    const push = async (entries = 20) => {
      const result = await load.pushOnce("c0", n, entries);
      n += entries;
      return result;
    };
    let refusals = 0;
    try {
      await broker.run("kill");
      await collector.start();
      appendFileSync(
        logFile,
        tailLines
          .slice(0, 100)
          .map((l) => `${l}\n`)
          .join(""),
      );
      await until("the first tailed lines buffered", async () => (await linesRead()) === 100, 30_000);
      let full = await push();
      for (let i = 0; i < 100 && full.status === "204"; i++) full = await push();
      assert.equal(full.status, "503", "the budget fills up and the push is refused");
      assert.equal(full.retryAfter, "10");
      assert.match(full.body, /disk buffer full/);
      // Single entries fill what room is left, so that the tail's next batch cannot fit either.
      for (let i = 0; i < 100 && (await push(1)).status === "204"; i++);
      assert.equal((await push(1)).status, "503");
      refusals = load.statuses.get("503")!;
      assert.equal(
        await collector.metric("bifrost_collector_requests_rejected_total", 'reason="buffer_full"'),
        refusals,
      );
      const ready = await fetch(`${collector.url}/ready`);
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), /disk buffer: disk buffer full/);

      appendFileSync(
        logFile,
        tailLines
          .slice(100)
          .map((l) => `${l}\n`)
          .join(""),
      );
      await until("the file tail paused", async () => (await paused()) === 1, 30_000);
      assert.equal(await linesRead(), 100, "nothing more is read while the buffer is full");
      assert.ok(collector.logs().some((l) => l.msg === "disk buffer full: file tails paused"));

      await broker.run("up");
      await until("pushes acknowledged again", async () => (await push()).status === "204", 120_000);
      await until(
        "the file tail resumed and read the rest",
        async () => (await paused()) === 0 && (await linesRead()) === 150,
        60_000,
      );
      await collector.drained();
      assert.equal(
        await collector.metric("bifrost_collector_requests_rejected_total", 'reason="buffer_full"'),
        load.statuses.get("503"),
      );
      await collector.stop();
    } finally {
      await collector.stop("SIGKILL");
      await broker.run("up");
    }
    const messages = await consumeAll(kafka, topic);
    const delivery = checkDelivery(load, messages);
    assert.equal(delivery.unacknowledgedArrived, 0, "a refused push left nothing behind");
    const firstCopies = [...new Map(messages.map((m) => [m.batch.sequence, m.batch] as const)).values()];
    const tailed = firstCopies.flatMap((b) =>
      b.streams.filter((s) => s.labels["app"] === "tail").flatMap((s) => s.entries.map((e) => e.line)),
    );
    assert.deepEqual(tailed, tailLines, "every tailed line once, in order");
    t.diagnostic(
      JSON.stringify({
        refusedPushes: load.statuses.get("503"),
        acknowledgedPushes: load.statuses.get("204"),
        ...delivery,
      }),
    );
  });

  it("under policy drop_oldest keeps accepting, drops whole oldest segments, counts and logs them, and ships the rest", async (t) => {
    const topic = uniqueName("drop");
    const { dir, collector } = await collectorFor(topic, () => ({
      wal: { max_bytes: 65536, segment_bytes: 16384, when_full: "drop_oldest" },
      batch: { max_bytes: 4096 },
    }));
    const load = new LokiLoad(() => collector.url, { clients: 1, entriesPerPush: 20, tenant: "budget", padBytes: 200 });
    let written = 0;
    let dropped = 0;
    try {
      await broker.run("kill");
      await collector.start();
      for (let i = 0; i < 40; i++)
        assert.equal((await load.pushOnce("c0", i * 20)).status, "204", "drop_oldest never refuses");
      const walBytes = readdirSync(join(dir, "wal"))
        .filter((f) => f.endsWith(".wal"))
        .reduce((sum, f) => sum + statSync(join(dir, "wal", f)).size, 0);
      assert.ok(walBytes <= 65536, `${walBytes} bytes on disk`);
      written = await collector.metric("bifrost_collector_batches_written_total");
      dropped = await collector.metric("bifrost_collector_batches_dropped_total", 'reason="disk_budget"');
      assert.equal(written, 40);
      assert.ok(dropped > 0 && dropped < written, `${dropped} of ${written} batches dropped`);
      const logged = collector
        .logs()
        .filter((l) => l.msg === "disk budget full: dropped the oldest undelivered batches");
      assert.equal(
        logged.reduce((sum, l) => sum + Number(l.records), 0),
        dropped,
        "every drop is logged with its batch count",
      );
      assert.ok(
        logged.every((l) => l.reason === "disk_budget" && String(l.file).endsWith(".wal")),
        "whole segment files",
      );
      assert.equal((await fetch(`${collector.url}/ready`)).status, 200);
      await broker.run("up");
      await collector.drained(120_000);
      await collector.stop();
    } finally {
      await collector.stop("SIGKILL");
      await broker.run("up");
    }
    const messages = await consumeAll(kafka, topic);
    const sequences = [...new Set(messages.map((m) => m.batch.sequence))];
    // The batches the shipper had already read for its pending send when their segment went may still arrive:
    // counted as dropped, yet delivered.
    const inFlight = sequences.filter((s) => s <= dropped);
    assert.deepEqual(
      inFlight,
      inFlight.map((_, i) => i + 1),
      "only the first batches, those in flight since the start, arrive from the dropped range",
    );
    assert.deepEqual(
      sequences.slice(inFlight.length),
      Array.from({ length: written - dropped }, (_, i) => dropped + 1 + i),
      "every newer batch, in order",
    );
    // One push is one batch here (each is over batch.max_bytes), so the delivered entries are those of these pushes.
    const delivered = [
      ...new Map(
        messages.flatMap((m) => m.batch.streams.flatMap((s) => s.entries.map((e) => [e.line, e] as const))),
      ).keys(),
    ];
    const lines = load.acknowledged.map((e) => e.line);
    assert.deepEqual(delivered, [...lines.slice(0, inFlight.length * 20), ...lines.slice(dropped * 20)]);
    t.diagnostic(
      JSON.stringify({
        written,
        dropped,
        inFlightDelivered: inFlight.length,
        delivered: delivered.length,
        messages: messages.length,
      }),
    );
  });
});
