import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { waitFor } from "../helpers/wait.js";
import { BifrostProcess, type Entry, Pusher, readAllEntries, sleep } from "../helpers/pipeline.js";
import { CLICKHOUSE_URL, freePort, startChdbHttp, uniqueName } from "../helpers/services.js";

// Issue 14's overload acceptance: senders pushing faster than the pipeline can store are answered 429 or 503 with
// Retry-After, promptly, instead of being kept waiting, and every entry that was acknowledged is stored exactly
// once after the load stops. The store is made the bottleneck deterministically: it is frozen (SIGSTOP), so it
// stores nothing at all while the load goes on, and the collector's disk buffer is small, so it fills within
// seconds. Once the refusals have been seen the store is thawed and everything buffered must arrive.
// Twice: `bifrost all` over ClickHouse (the engine frozen), and a collector alone shipping over HTTP to an
// aggregator (the aggregator frozen).

const SENDERS = 4;
/** The collector's disk buffer: a few dozen batches. */
const WAL = { max_bytes: 256 << 10, segment_bytes: 32 << 10, when_full: "block" };
const BATCH = { max_age_ms: 100, max_bytes: 16 << 10 };
/** A request that gets no answer within this long counts as kept waiting, which overload must never do. */
const NO_ANSWER_MS = 30_000;

interface Stage {
  collector: BifrostProcess;
  /** Where the stored entries are read back (the Loki API). */
  queryUrl: string;
  node: string;
  /** Stops the store side from storing anything; `thaw` undoes it. */
  freeze(): void;
  thaw(): void;
}

async function overload(t: TestContext, stage: Stage): Promise<void> {
  const t0 = Date.now();
  const progress = (message: string) =>
    process.stderr.write(`overload ${stage.node} [${((Date.now() - t0) / 1000).toFixed(1)} s] ${message}\n`);
  // As fast as each sender's answers allow, every wire form, 20 lines of 200 bytes a request; a refused request
  // is sent again after Retry-After, capped low, so the pressure stays on.
  const pushers = Array.from(
    { length: SENDERS },
    (_, i) =>
      new Pusher(`s${i}`, stage.collector.url, { entriesPerPush: 20, intervalMs: 0, lineBytes: 200, maxWaitMs: 200 }),
  );
  const refusals = () => pushers.reduce((n, p) => n + (p.stats.retried["503"] ?? 0) + (p.stats.retried["429"] ?? 0), 0);
  const acknowledged = () => pushers.reduce((n, p) => n + p.acked.length, 0);
  try {
    for (const p of pushers) p.start();
    await waitFor("pushes acknowledged while the store keeps up", () => acknowledged() >= 400, 60_000, 100);
    progress(`${acknowledged()} entries acknowledged; freezing the store`);
    stage.freeze();
    await waitFor("the collector refusing with 429/503 once its buffer is full", () => refusals() >= 20, 120_000, 100);
    const refusedWhileFrozen = refusals();
    const ackedWhileFrozen = acknowledged();
    // Still frozen: the senders go on being refused, never kept waiting.
    await sleep(3_000);
    progress(`${refusals()} refusals (${refusedWhileFrozen} when first counted); thawing the store`);
    stage.thaw();
    await waitFor("pushes acknowledged again", () => acknowledged() >= ackedWhileFrozen + 400, 180_000, 200);
    await Promise.all(pushers.map((p) => p.stop()));
  } finally {
    stage.thaw();
    await Promise.all(pushers.map((p) => p.stop()));
  }
  const acked = pushers.flatMap((p) => p.acked);
  const inDoubt = new Set(pushers.flatMap((p) => [...p.inDoubt]));
  const refusedRequests = refusals();
  const withRetryAfter = pushers.reduce((n, p) => n + p.stats.retryAfterSeen, 0);
  progress(`load stopped: ${acked.length} entries acknowledged, ${refusedRequests} requests refused; reading back`);

  const selector = `{node="${stage.node}"}`;
  const [startNs, endNs] = [BigInt(t0 - 600_000) * 1_000_000n, BigInt(Date.now() + 600_000) * 1_000_000n];
  let stored: Entry[] = [];
  await waitFor(
    "every acknowledged entry stored",
    async () => {
      stored = await readAllEntries(stage.queryUrl, selector, startNs, endNs).catch(() => []);
      return stored.length >= acked.length;
    },
    240_000,
    1_000,
  );
  const copies = new Map<string, number>();
  for (const e of stored) copies.set(e.line, (copies.get(e.line) ?? 0) + 1);
  const missing = acked.filter((e) => !copies.has(e.line));
  const duplicated = [...copies].filter(([line, n]) => n > 1 && !inDoubt.has(line));
  const statuses = Object.fromEntries(
    ["503", "429", "no answer"].map((s) => [s, pushers.reduce((n, p) => n + (p.stats.retried[s] ?? 0), 0)]),
  );
  t.diagnostic(
    JSON.stringify({ acknowledged: acked.length, stored: stored.length, refusedRequests, withRetryAfter, statuses }),
  );
  assert.deepEqual(
    pushers.flatMap((p) => p.stats.failed),
    [],
    "every answer was 2xx, 429 or 503",
  );
  assert.ok(refusedRequests >= 20, "overload answered with 429/503");
  assert.equal(withRetryAfter, refusedRequests, "every 429/503 carries Retry-After");
  assert.equal(statuses["no answer"], 0, `no request left without an answer for ${NO_ANSWER_MS / 1000} s`);
  assert.equal(missing.length, 0, `acknowledged entries lost, e.g. ${JSON.stringify(missing.slice(0, 3))}`);
  assert.equal(duplicated.length, 0, `entries stored twice, e.g. ${JSON.stringify(duplicated.slice(0, 3))}`);
  const sent = new Set(pushers.flatMap((p) => p.acked.map((e) => e.line)));
  const unexpected = stored.filter((e) => !sent.has(e.line) && !inDoubt.has(e.line));
  assert.equal(unexpected.length, 0, "only acknowledged (or in-doubt) entries are stored");
}

const signal = (p: { pid?: number | undefined }, name: NodeJS.Signals) => {
  if (p.pid !== undefined) process.kill(p.pid, name);
};

describe("overload: pushes faster than the pipeline can store", () => {
  it("bifrost all over a frozen ClickHouse: 503 with Retry-After, then every acknowledged entry stored exactly once", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-overload-all-"));
    const [chPort, query, collector, grpc, aggregator] = await Promise.all(Array.from({ length: 5 }, freePort));
    const clickhouse = await startChdbHttp([], chPort);
    const node = "overload-all";
    const all = BifrostProcess.write(dir, "all", "all", `http://127.0.0.1:${collector}`, {
      log: { level: "warn" },
      // Without the demo's own-log input: only the senders' entries are under this node.
      all: { demo: false },
      node: { id: node },
      storage: { engine: "clickhouse" },
      clickhouse: { url: clickhouse.url, database: uniqueName("overload") },
      query: { listen: `127.0.0.1:${query}` },
      aggregator: { listen: `127.0.0.1:${aggregator}`, dead_letter_dir: join(dir, "dead-letters") },
      collector: {
        listen: `127.0.0.1:${collector}`,
        otlp: { grpc_listen: `127.0.0.1:${grpc}` },
        wal: { dir: join(dir, "wal"), ...WAL },
        batch: BATCH,
      },
    });
    try {
      all.start();
      await all.ready();
      await overload(t, {
        collector: all,
        queryUrl: `http://127.0.0.1:${query}`,
        node,
        freeze: () => signal(clickhouse.process, "SIGSTOP"),
        thaw: () => signal(clickhouse.process, "SIGCONT"),
      });
    } finally {
      signal(clickhouse.process, "SIGCONT");
      await all.stop();
      await clickhouse.stop();
    }
  });

  it("a collector alone shipping to a frozen aggregator: 503 with Retry-After, then every acknowledged entry stored exactly once", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-overload-collector-"));
    const [queryPort, aggregatorPort, collectorPort, grpc] = await Promise.all(Array.from({ length: 4 }, freePort));
    const node = "overload-edge";
    const shared = {
      log: { level: "warn" },
      clickhouse: { url: CLICKHOUSE_URL, database: uniqueName("overload") },
      storage: { engine: "clickhouse" },
    };
    const query = BifrostProcess.write(dir, "query", "query", `http://127.0.0.1:${queryPort}`, {
      ...shared,
      query: { listen: `127.0.0.1:${queryPort}` },
    });
    const aggregator = BifrostProcess.write(dir, "aggregator", "aggregator", `http://127.0.0.1:${aggregatorPort}`, {
      ...shared,
      aggregator: {
        listen: `127.0.0.1:${aggregatorPort}`,
        consume_kafka: false,
        http_ingest: { enabled: true },
        workers: 1,
        flush_ms: 200,
        dead_letter_dir: join(dir, "dead-letters"),
      },
    });
    mkdirSync(join(dir, node));
    const collector = BifrostProcess.write(dir, node, "collector", `http://127.0.0.1:${collectorPort}`, {
      ...shared,
      node: { id: node },
      collector: {
        listen: `127.0.0.1:${collectorPort}`,
        otlp: { grpc_listen: `127.0.0.1:${grpc}` },
        wal: { dir: join(dir, node, "wal"), ...WAL },
        batch: BATCH,
        shipper: { transport: "http", http: { url: aggregator.url, timeout_ms: 2_000 } },
      },
    });
    const processes = [query, aggregator, collector];
    try {
      for (const p of processes) p.start();
      await Promise.all(processes.map((p) => p.ready()));
      await overload(t, {
        collector,
        queryUrl: query.url,
        node,
        freeze: () => signal(aggregator.child!, "SIGSTOP"),
        thaw: () => signal(aggregator.child!, "SIGCONT"),
      });
    } finally {
      if (aggregator.running) signal(aggregator.child!, "SIGCONT");
      await Promise.all(processes.map((p) => p.stop()));
    }
  });
});
