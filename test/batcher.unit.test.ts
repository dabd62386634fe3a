import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Batcher } from "../collector/buffer/batcher.js";
import { Wal, WalFullError, type WalOptions } from "../collector/buffer/wal.js";
import { type LogStream, SampleKind, type Series } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { decodeBatch } from "../proto/codec.js";

function wal(overrides: Partial<WalOptions> = {}): Wal {
  return Wal.open({
    dir: mkdtempSync(join(tmpdir(), "bifrost-batcher-")),
    maxBytes: 64 << 20,
    segmentBytes: 1 << 20,
    fsync: "never",
    whenFull: "block",
    ...overrides,
  });
}

const node = { id: "edge-7", site: "store-1", region: "eu" };
const stream = (app: string, lines: string[]): LogStream => ({
  labels: labelsOf([["app", app]]),
  entries: lines.map((line, i) => ({ timeUnixNano: BigInt(i + 1), line, metadata: labelsOf([]) })),
});
const counter = (points: [number, number][]): Series => ({
  name: "requests_total",
  labels: labelsOf([["code", "200"]]),
  kind: SampleKind.Counter,
  points: points.map(([timeUnixMs, value]) => ({ timeUnixMs, value })),
});

describe("batcher", () => {
  it("drops exact duplicates within a batch and a push sent again after its batch was written, keeping arrival order", async () => {
    const log = wal();
    const batcher = new Batcher({
      node,
      wal: log,
      maxEntries: 1000,
      maxBytes: 1 << 20,
      maxAgeMs: 50,
      maxBatchBytes: 3 << 20,
    });
    const at = (ns: bigint, line: string) => ({ timeUnixNano: ns, line, metadata: labelsOf([]) });
    const push = { labels: labelsOf([["app", "api"]]), entries: [at(5n, "zeta"), at(5n, "alpha"), at(5n, "zeta")] };
    await Promise.all([
      batcher.add("acme", { streams: [push] }),
      // The same line at another time, or in another tenant, is no duplicate.
      batcher.add("acme", { streams: [{ labels: push.labels, entries: [at(6n, "zeta")] }] }),
      batcher.add("other", { streams: [push] }),
    ]);
    await batcher.add("acme", { streams: [push] });
    const batches = log.read(10).map((record) => decodeBatch(record.payload));
    assert.deepEqual(
      batches.map((b) => [b.tenant, b.streams.flatMap((s) => s.entries.map((e) => `${e.timeUnixNano} ${e.line}`))]),
      [
        ["acme", ["5 zeta", "5 alpha", "6 zeta"]],
        ["other", ["5 zeta", "5 alpha"]],
      ],
      "the retried push wrote no batch",
    );
    assert.ok(batches[0]!.createdUnixNano < batches[1]!.createdUnixNano, "batches cut later carry a later time");
    log.close();
  });

  it("commits what arrives together as one WAL record and acknowledges after it is written", async () => {
    const log = wal();
    const batcher = new Batcher({
      node,
      wal: log,
      maxEntries: 1000,
      maxBytes: 1 << 20,
      maxAgeMs: 50,
      maxBatchBytes: 3 << 20,
    });
    let acknowledged = 0;
    const first = batcher.add("acme", { streams: [stream("api", ["a", "b"])] }).then(() => acknowledged++);
    const second = batcher.add("acme", { streams: [stream("db", ["c"])] }).then(() => acknowledged++);
    assert.equal(log.pending(), 0, "nothing is written before the batch is full or old enough");
    assert.equal(acknowledged, 0);
    await Promise.all([first, second]);
    assert.equal(log.pending(), 1);
    const [record] = log.read(10);
    const batch = decodeBatch(record!.payload);
    assert.equal(batch.sequence, record!.sequence, "the batch carries its WAL sequence, its id downstream");
    assert.deepEqual([batch.tenant, batch.nodeId, batch.site, batch.region], ["acme", "edge-7", "store-1", "eu"]);
    assert.deepEqual(
      batch.streams.map((s) => ({ ...s.labels })),
      [
        { app: "api", node: "edge-7", site: "store-1", region: "eu" },
        { app: "db", node: "edge-7", site: "store-1", region: "eu" },
      ],
    );
    log.close();
  });

  it("writes at once when a batch is full, one batch per tenant, keeping labels the sender set", async () => {
    const log = wal();
    const batcher = new Batcher({
      node,
      wal: log,
      maxEntries: 3,
      maxBytes: 1 << 20,
      maxAgeMs: 60_000,
      maxBatchBytes: 3 << 20,
    });
    const own = stream("api", ["x"]);
    own.labels["node"] = "sender-said";
    const forB = batcher.add("b", { streams: [own] });
    await batcher.add("a", { streams: [stream("api", ["1", "2", "3"])] });
    assert.equal(log.pending(), 1, "tenant a's full batch is written without waiting");
    batcher.flush();
    await forB;
    const batches = log.read(10).map((r) => decodeBatch(r.payload));
    assert.deepEqual(
      batches.map((b) => b.tenant),
      ["a", "b"],
      "tenant b's batch only when flushed",
    );
    assert.equal(batches[1]!.streams[0]!.labels["node"], "sender-said");
    log.close();
  });

  it("gives every series the sample sent before it, from the second batch on", async () => {
    const log = wal();
    const batcher = new Batcher({
      node,
      wal: log,
      maxEntries: 1,
      maxBytes: 1 << 20,
      maxAgeMs: 60_000,
      maxBatchBytes: 3 << 20,
    });
    await batcher.add("acme", {
      series: [
        counter([
          [1000, 5],
          [2000, 7],
        ]),
      ],
    });
    await batcher.add("acme", { series: [counter([[3000, 9]])] });
    const [first, second] = log.read(10).map((r) => decodeBatch(r.payload));
    assert.equal(first!.series[0]!.previous, undefined);
    assert.deepEqual(second!.series[0]!.previous, { timeUnixMs: 2000, value: 7 });
    log.close();
  });

  it("remembers the last sample of at least max_tracked_series series, and forgets beyond that", async () => {
    const log = wal();
    const batcher = new Batcher({
      node,
      wal: log,
      maxEntries: 100_000,
      maxBytes: 1 << 20,
      maxAgeMs: 60_000,
      maxBatchBytes: 3 << 20,
      maxTrackedSeries: 1000,
    });
    // A scrape round of n series, one sample each, as one batch; then the first series again.
    const round = async (n: number, timeMs: number) => {
      const series = Array.from({ length: n }, (_, i) => ({
        ...counter([[timeMs, i]]),
        labels: labelsOf([["i", `${i}`]]),
      }));
      const written = batcher.add("acme", { series });
      batcher.flush();
      await written;
      return log.read(100).at(-1)!;
    };
    await round(1000, 1000);
    const second = decodeBatch((await round(1000, 2000)).payload);
    assert.ok(second.series.every((s, i) => s.previous?.timeUnixMs === 1000 && s.previous.value === i));
    await round(3000, 3000);
    const fourth = decodeBatch((await round(3000, 4000)).payload);
    assert.ok(
      fourth.series.some((s) => s.previous === undefined),
      "3,000 series per round are more than 1,000 tracked (twice that at most)",
    );
    log.close();
  });

  it("remembers the previous samples across a restart, from the disk buffer's newest records", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-batcher-restart-"));
    const open = () => Wal.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 20, fsync: "always", whenFull: "block" });
    const before = open();
    await new Batcher({
      node,
      wal: before,
      maxEntries: 1,
      maxBytes: 1 << 20,
      maxAgeMs: 60_000,
      maxBatchBytes: 3 << 20,
    }).add("acme", {
      series: [
        counter([
          [1000, 5],
          [4000, 8],
        ]),
      ],
    });
    before.advance(1);
    before.close();
    const after = open();
    const batcher = new Batcher({
      node,
      wal: after,
      maxEntries: 1,
      maxBytes: 1 << 20,
      maxAgeMs: 60_000,
      maxBatchBytes: 3 << 20,
    });
    batcher.restorePrevious(after.tail(100));
    await batcher.add("acme", { series: [counter([[5000, 9]])] });
    const [batch] = after.read(10).map((r) => decodeBatch(r.payload));
    assert.deepEqual(batch!.series[0]!.previous, { timeUnixMs: 4000, value: 8 });
    after.close();
  });

  it("rejects the waiting senders when the disk buffer is full, and starts the next batch from the same previous sample", async () => {
    const log = wal({ maxBytes: 2048, segmentBytes: 1024 });
    const batcher = new Batcher({
      node,
      wal: log,
      maxEntries: 1,
      maxBytes: 1 << 20,
      maxAgeMs: 60_000,
      maxBatchBytes: 3 << 20,
    });
    await batcher.add("acme", { series: [counter([[1000, 5]])] });
    const incompressible = () => randomBytes(3000).toString("base64");
    await assert.rejects(batcher.add("acme", { streams: [stream("big", [incompressible()])] }), WalFullError);
    await assert.rejects(
      batcher.add("acme", {
        series: [
          counter([[2000, 6]]),
          { ...counter([[2000, 1]]), name: "filler", labels: labelsOf([["pad", incompressible()]]) },
        ],
      }),
      WalFullError,
    );
    log.advance(1);
    await batcher.add("acme", { series: [counter([[2000, 6]])] });
    const batches = log.read(10).map((r) => decodeBatch(r.payload));
    assert.deepEqual(
      batches.at(-1)!.series[0]!.previous,
      { timeUnixMs: 1000, value: 5 },
      "the rejected batch did not move it",
    );
    log.close();
  });

  it("sends a metric family's metadata with its first batch, again when it changes or is old, not with every batch", async () => {
    const log = wal();
    let resendMs = 600_000;
    const batcher = new Batcher({
      node,
      wal: log,
      maxEntries: 1,
      maxBytes: 1 << 20,
      maxAgeMs: 10,
      maxBatchBytes: 3 << 20,
      get metadataResendMs() {
        return resendMs;
      },
    });
    const requests = (help: string) => ({ name: "requests_total", type: "counter" as const, help, unit: "" });
    const send = async (metadata: ReturnType<typeof requests>[], tenant = "acme") => {
      await batcher.add(tenant, { series: [counter([[1, 1]])], metadata });
      const records = log.read(1000);
      return decodeBatch(records[records.length - 1]!.payload).metadata;
    };
    assert.deepEqual(await send([requests("Requests")]), [requests("Requests")]);
    assert.equal(await send([requests("Requests")]), undefined, "unchanged: not again");
    assert.deepEqual(await send([requests("Requests")], "other"), [requests("Requests")], "per tenant");
    assert.deepEqual(await send([requests("Requests served")]), [requests("Requests served")], "changed");
    resendMs = 0;
    assert.deepEqual(await send([requests("Requests served")]), [requests("Requests served")], "old enough");
    log.close();
  });

  it("answers a waiting sender at the next group commit, not when its batch is full or old", async () => {
    const log = wal({ fsync: "always" });
    const batcher = new Batcher({
      node,
      wal: log,
      maxEntries: 10_000,
      maxBytes: 1 << 20,
      maxAgeMs: 3_600_000,
      maxBatchBytes: 3 << 20,
    });
    const waits = { senderWaits: true };
    // Sequential pushes (an hour's max age would hold each for an hour): one batch and one fsync each.
    for (let i = 0; i < 5; i++) await batcher.add("acme", { streams: [stream("api", [`line ${i}`])] }, waits);
    assert.equal(log.read(100).length, 5);
    assert.equal(log.groupCommits, 5);
    // Pushes arriving together share one batch and one fsync.
    await Promise.all(["a", "b", "c"].map((line) => batcher.add("acme", { streams: [stream("web", [line])] }, waits)));
    assert.equal(log.read(100).length, 6);
    assert.equal(log.groupCommits, 6);
    // Data no sender waits for still waits for its batch to fill or age...
    const tailed = batcher.add("acme", { streams: [stream("file", ["tailed"])] });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(log.read(100).length, 6);
    // ...unless a push goes with it; the same push sent again is answered once the first copy is durable.
    const again = stream("file", ["tailed"]);
    await Promise.all([tailed, batcher.add("acme", { streams: [again] }, waits)]);
    const batches = log.read(100).map((record) => decodeBatch(record.payload));
    assert.equal(batches.length, 7);
    assert.deepEqual(
      batches[6]!.streams.flatMap((s) => s.entries.map((e) => e.line)),
      ["tailed"],
      "written once",
    );
    log.close();
  });
});
