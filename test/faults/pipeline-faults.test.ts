import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { compressSync } from "snappy";
import { until } from "../helpers/aggregation.js";
import {
  BifrostProcess,
  countByNode,
  type Entry,
  FileWriter,
  PushRequest,
  Pusher,
  pushRequest,
  readAllEntries,
  sleep,
} from "../helpers/pipeline.js";
import { createTopics, freePort, privateKafka, startChdbHttp, uniqueName } from "../helpers/services.js";

// Issue 8, item 5: three collectors -> Kafka -> two aggregators -> ClickHouse -> query, all real processes over
// a private Kafka broker and a private ClickHouse engine (so that they can be stopped without disturbing anyone),
// under steady load from Loki push (JSON, snappy protobuf), OTLP/HTTP and file tails, with in turn: Kafka
// stopped and restarted (while one collector's small disk budget fills up under policy `block`), ClickHouse
// killed with kill -9 and restarted, an aggregator killed, a collector killed with kill -9, and malformed input on every
// receiver. At the end every acknowledged entry must be readable through the Loki API exactly once per node.

const NODES = ["edge-1", "edge-2", "edge-3"];
/** The collector whose disk budget is exhausted while Kafka is down. */
const SMALL_BUDGET = "edge-3";
const MALFORMED_BYTES_PER_KIND = Number(process.env.BIFROST_FAULTS_MALFORMED_MB ?? 100) * 1024 * 1024;
const MAX_BODY_BYTES = 1 << 20;
const MAX_LINE_BYTES = 256 << 10;

interface FaultRecord {
  fault: string;
  injectedAtS: number;
  repairedAtS: number;
  recoveredAfterS: number;
  detail: string;
}

interface NodeLoad {
  pusher: Pusher;
  file: FileWriter;
  collector: BifrostProcess;
  /**
   * Tailed lines the collector may read twice: those written before it was killed (the file tail moves its
   * position only after the disk buffer has the lines, so a crash in between reads them again; never loses them).
   */
  fileInDoubt: Set<string>;
}

/** What every node has acknowledged so far: pushes answered 2xx, and lines written to its tailed file. */
function acknowledged(load: NodeLoad): string[] {
  return [...load.pusher.acked.map((e) => e.line), ...load.file.written];
}

/** The malformed requests of one receiver kind: each must be answered 4xx, whatever it holds. */
function malformedRequests(
  kind: "loki-json" | "loki-protobuf" | "otlp-http",
): { name: string; path: string; headers: Record<string, string>; body: Buffer }[] {
  const entries = (n: number, bytes: number): Entry[] =>
    Array.from({ length: n }, (_, i) => ({
      tsNs: BigInt(Date.now()) * 1_000_000n + BigInt(i),
      line: randomBytes(bytes / 2).toString("hex"),
    }));
  const big = (n = 2000) => pushRequest(kind, entries(n, 400), { app: "malformed" });
  const truncate = (b: Buffer) => b.subarray(0, Math.floor(b.length * 0.7));
  const overLongLine = pushRequest(kind, entries(1, MAX_LINE_BYTES + 1024), { app: "malformed" });
  const oversized = { ...big(), body: randomBytes(MAX_BODY_BYTES + 4096) };
  const tooManyLabels = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`label_${i}`, "v"]));
  if (kind === "otlp-http") {
    const json = big().body;
    return [
      {
        name: "truncated JSON",
        path: "/v1/logs",
        headers: { "Content-Type": "application/json" },
        body: truncate(json),
      },
      {
        name: "JSON sent as protobuf",
        path: "/v1/logs",
        headers: { "Content-Type": "application/x-protobuf" },
        body: json,
      },
      {
        name: "random protobuf",
        path: "/v1/logs",
        headers: { "Content-Type": "application/x-protobuf" },
        body: randomBytes(900_000),
      },
      { name: "wrong content type", path: "/v1/logs", headers: { "Content-Type": "text/plain" }, body: json },
      {
        name: "bad gzip",
        path: "/v1/logs",
        headers: { "Content-Type": "application/json", "Content-Encoding": "gzip" },
        body: randomBytes(900_000),
      },
      {
        name: "unsupported encoding",
        path: "/v1/logs",
        headers: { "Content-Type": "application/json", "Content-Encoding": "br" },
        body: json,
      },
      {
        name: "over-limit line",
        path: "/v1/logs",
        headers: { "Content-Type": "application/json" },
        body: overLongLine.body,
      },
      // Resource attributes other than service.* become structured metadata, not labels: a label over its limit is service_name.
      { name: "over-limit label value", ...pushRequest(kind, entries(1000, 400), { app: "v".repeat(4096) }) },
      { name: "oversized body", ...oversized },
    ];
  }
  if (kind === "loki-json") {
    const json = big().body;
    return [
      { name: "truncated JSON", ...big(), body: truncate(json) },
      { name: "wrong content type", path: "/loki/api/v1/push", headers: { "Content-Type": "text/plain" }, body: json },
      {
        name: "bad gzip",
        path: "/loki/api/v1/push",
        headers: { "Content-Type": "application/json", "Content-Encoding": "gzip" },
        body: randomBytes(900_000),
      },
      {
        name: "wrong shape",
        ...big(),
        body: Buffer.from(
          JSON.stringify({ streams: [{ stream: { app: "x" }, values: json.toString("latin1").slice(0, 900_000) }] }),
        ),
      },
      { name: "over-limit line", ...overLongLine },
      { name: "over-limit labels", ...pushRequest(kind, entries(1000, 400), tooManyLabels) },
      { name: "over-limit label value", ...pushRequest(kind, entries(1000, 400), { app: "v".repeat(4096) }) },
      { name: "oversized body", ...oversized },
    ];
  }
  const proto = Buffer.from(
    PushRequest.encode(
      PushRequest.create({
        streams: [
          {
            labels: '{app="malformed"}',
            entries: entries(2000, 400).map((e) => ({
              timestamp: { seconds: Number(e.tsNs / 1_000_000_000n) },
              line: e.line,
            })),
          },
        ],
      }),
    ).finish(),
  );
  const corrupt = compressSync(proto);
  corrupt.fill(0xff, 1000, 50_000);
  return [
    { name: "truncated protobuf", ...big(), body: compressSync(truncate(proto)) },
    { name: "bad snappy", ...big(), body: corrupt },
    { name: "random bytes", ...big(), body: randomBytes(900_000) },
    { name: "uncompressed protobuf", ...big(), body: proto.subarray(0, 900_000) },
    {
      name: "bad label set",
      ...big(),
      body: compressSync(
        Buffer.from(
          PushRequest.encode(PushRequest.create({ streams: [{ labels: '{app="x" job=', entries: [] }] })).finish(),
        ),
      ),
    },
    { name: "over-limit line", ...overLongLine },
    { name: "over-limit labels", ...pushRequest(kind, entries(1000, 400), tooManyLabels) },
    { name: "oversized body", ...oversized },
  ];
}

/**
 * Sends MALFORMED_BYTES_PER_KIND bytes of malformed requests of each receiver kind, spread over the collectors,
 * three at a time per kind. Returns the answers by kind, request and status; anything but a 4xx is a failure.
 */
async function sendMalformed(collectors: BifrostProcess[]): Promise<{
  byKind: Record<string, { bytes: number; requests: number; statuses: Record<string, number> }>;
  failures: string[];
}> {
  const byKind: Record<string, { bytes: number; requests: number; statuses: Record<string, number> }> = {};
  const failures: string[] = [];
  await Promise.all(
    (["loki-json", "loki-protobuf", "otlp-http"] as const).map(async (kind) => {
      const requests = malformedRequests(kind);
      const tally = (byKind[kind] = { bytes: 0, requests: 0, statuses: {} as Record<string, number> });
      let turn = 0;
      const worker = async () => {
        while (tally.bytes < MALFORMED_BYTES_PER_KIND) {
          const i = turn++;
          const request = requests[i % requests.length]!;
          const collector = collectors[i % collectors.length]!;
          tally.bytes += request.body.length;
          tally.requests++;
          const status = await postOnce(`${collector.url}${request.path}`, request.headers, request.body);
          tally.statuses[status] = (tally.statuses[status] ?? 0) + 1;
          if (!/^4\d\d$/.test(status)) failures.push(`${kind} ${request.name} to ${collector.name}: ${status}`);
        }
      };
      await Promise.all([worker(), worker(), worker()]);
    }),
  );
  return { byKind, failures };
}

/**
 * One POST on a connection of its own, answered by its status (or "no answer: ..."). A server may answer an
 * oversized body before reading it and close the connection: the answer counts, a write error after it does
 * not. fetch's shared keep-alive pool would hand such a closing connection to the next request.
 */
function postOnce(url: string, headers: Record<string, string>, body: Buffer): Promise<string> {
  return new Promise((resolve) => {
    let answered = false;
    const req = request(
      url,
      { method: "POST", headers: { ...headers, "Content-Length": String(body.length) }, agent: false },
      (res) => {
        answered = true;
        res.resume();
        res.on("end", () => resolve(String(res.statusCode)));
        res.on("error", () => resolve(String(res.statusCode)));
      },
    );
    req.on("error", (err) => {
      if (!answered) resolve(`no answer: ${err.message}`);
    });
    req.end(body);
  });
}

function digest(lines: Iterable<string>): string {
  return createHash("sha256")
    .update([...lines].sort().join("\n"))
    .digest("hex")
    .slice(0, 16);
}

describe("end-to-end faults", () => {
  it("3 collectors -> Kafka -> 2 aggregators -> ClickHouse -> query: every acknowledged entry is queryable once through six faults", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-faults-"));
    const t0 = Date.now();
    const at = () => Number(((Date.now() - t0) / 1000).toFixed(1));
    const progress = (message: string) => process.stderr.write(`faults [${at()} s] ${message}\n`);

    progress("starting a private Kafka broker and ClickHouse engine");
    const chPort = await freePort();
    let [kafka, clickhouse] = await Promise.all([privateKafka(), startChdbHttp([], chPort)]);
    const processes: BifrostProcess[] = [];
    const loads: NodeLoad[] = [];
    try {
      const topic = uniqueName("faults");
      await createTopics(new Kafka({ clientId: "faults-test", brokers: kafka.brokers, logLevel: logLevel.NOTHING }), [
        { topic, numPartitions: 6 },
        { topic: `${topic}.dlq`, numPartitions: 1 },
      ]);
      const shared = {
        log: { level: "warn" },
        kafka: { brokers: kafka.brokers, topic, dead_letter_topic: `${topic}.dlq` },
        clickhouse: { url: clickhouse.url, database: uniqueName("faults") },
        storage: { engine: "clickhouse" },
      };
      const queryPort = await freePort();
      const query = BifrostProcess.write(dir, "query", "query", `http://127.0.0.1:${queryPort}`, {
        ...shared,
        query: { listen: `127.0.0.1:${queryPort}` },
      });
      const groupId = uniqueName("faults-group");
      const aggregators = await Promise.all(
        ["aggregator-1", "aggregator-2"].map(async (name) => {
          const port = await freePort();
          return BifrostProcess.write(dir, name, "aggregator", `http://127.0.0.1:${port}`, {
            ...shared,
            aggregator: {
              listen: `127.0.0.1:${port}`,
              group_id: groupId,
              workers: 1,
              session_timeout_ms: 6000,
              flush_ms: 200,
            },
          });
        }),
      );
      const collectors: BifrostProcess[] = [];
      for (const node of NODES) {
        const [port, grpc] = [await freePort(), await freePort()];
        mkdirSync(join(dir, node));
        const file = join(dir, node, "app.log");
        const small = node === SMALL_BUDGET;
        const collector = BifrostProcess.write(dir, node, "collector", `http://127.0.0.1:${port}`, {
          ...shared,
          node: { id: node },
          collector: {
            listen: `127.0.0.1:${port}`,
            otlp: { grpc_listen: `127.0.0.1:${grpc}` },
            wal: small
              ? { dir: join(dir, node, "wal"), max_bytes: 48 << 10, segment_bytes: 8 << 10, when_full: "block" }
              : { dir: join(dir, node, "wal") },
            batch: { max_age_ms: 200, ...(small ? { max_bytes: 4 << 10 } : {}) },
            limits: { max_body_bytes: MAX_BODY_BYTES, max_line_bytes: MAX_LINE_BYTES },
            files: [{ paths: [file], labels: { app: "filegen" } }],
            files_poll_ms: 100,
          },
        });
        collectors.push(collector);
        loads.push({
          collector,
          pusher: new Pusher(node, collector.url, { entriesPerPush: 10, intervalMs: 200, lineBytes: small ? 300 : 0 }),
          file: new FileWriter(node, file, { linesPerTick: 5, intervalMs: 250 }),
          fileInDoubt: new Set(),
        });
      }
      processes.push(query, ...aggregators, ...collectors);
      for (const p of processes) p.start();
      await Promise.all(processes.map((p) => p.ready()));
      progress(`pipeline up: ${processes.map((p) => `${p.name} pid ${p.pid}`).join(", ")}; logs in ${dir}`);

      for (const load of loads) {
        load.pusher.start();
        load.file.start();
      }
      const faults: FaultRecord[] = [];
      const ackedNow = () => new Map(loads.map((l) => [l.pusher.node, acknowledged(l).length]));
      /** Until every node has at least what it had acknowledged at `target` stored and countable. */
      const caughtUp = (target: Map<string, number>) => async () => {
        const counts = await countByNode(query.url).catch(() => null);
        return counts !== null && [...target].every(([node, n]) => (counts.get(node) ?? 0) >= n);
      };
      const fault = async (
        name: string,
        inject: () => Promise<string>,
        repair: () => Promise<void>,
        startedAtS?: number,
      ) => {
        await sleep(2_000);
        const injectedAtS = startedAtS ?? at();
        progress(`injecting: ${name}`);
        const detail = await inject();
        await repair();
        const repairedAtS = at();
        await until(`recovery from: ${name}`, caughtUp(ackedNow()), 240_000);
        const record = {
          fault: name,
          injectedAtS,
          repairedAtS,
          recoveredAfterS: Number((at() - repairedAtS).toFixed(1)),
          detail,
        };
        progress(`recovered: ${JSON.stringify(record)}`);
        faults.push(record);
      };
      const small = loads.find((l) => l.pusher.node === SMALL_BUDGET)!.pusher;
      const metric = async (p: BifrostProcess, name: string) => {
        const text = await fetch(`${p.url}/metrics`).then(
          (r) => r.text(),
          () => "",
        );
        return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].reduce(
          (n, m) => n + Number(m[1]),
          0,
        );
      };

      await until("the first entries of every node stored", caughtUp(new Map(NODES.map((n) => [n, 50]))), 120_000);

      await fault(
        `Kafka stopped and restarted; ${SMALL_BUDGET}'s disk budget (48 KiB, policy block) exhausted meanwhile`,
        async () => {
          const before = small.stats.retried["503"] ?? 0;
          const retryAfterBefore = small.stats.retryAfterSeen;
          await kafka.run("down");
          const downAt = Date.now();
          await until(
            `${SMALL_BUDGET} answering 503 with its disk budget full`,
            () => (small.stats.retried["503"] ?? 0) > before + 2,
            180_000,
          );
          await sleep(Math.max(0, 10_000 - (Date.now() - downAt)));
          return `Kafka down for ${((Date.now() - downAt) / 1000).toFixed(1)} s; ${SMALL_BUDGET} answered 503 ${(small.stats.retried["503"] ?? 0) - before} times (${small.stats.retryAfterSeen - retryAfterBefore} with Retry-After), pushes retried until accepted`;
        },
        () => kafka.run("up"),
      );

      // The malformed input runs while ClickHouse and an aggregator fail: only the collectors see it.
      const malformedStartS = at();
      const ackedBefore = loads.map((l) => l.pusher.stats.accepted);
      progress(
        `injecting: ${MALFORMED_BYTES_PER_KIND >> 20} MiB of malformed input per receiver kind, in the background`,
      );
      const malformedRun = sendMalformed(collectors);

      await fault(
        "ClickHouse killed with kill -9 and restarted on its data",
        async () => {
          const retries = async () =>
            (await metric(aggregators[0]!, "bifrost_aggregator_store_retries_total")) +
            (await metric(aggregators[1]!, "bifrost_aggregator_store_retries_total"));
          const before = await retries();
          await clickhouse.stop("SIGKILL");
          const downAt = Date.now();
          await until("the aggregators retrying writes", async () => (await retries()) > before, 120_000);
          await sleep(Math.max(0, 10_000 - (Date.now() - downAt)));
          return `ClickHouse down for ${((Date.now() - downAt) / 1000).toFixed(1)} s; aggregators retried writes ${(await retries()) - before} times`;
        },
        async () => {
          clickhouse = await startChdbHttp([], chPort, clickhouse.dataDir);
        },
      );

      await fault(
        "aggregator-1 killed with kill -9",
        async () => {
          await aggregators[0]!.stop("SIGKILL");
          return "aggregator-2 takes over its partitions after the session timeout (6 s); aggregator-1 restarted once caught up";
        },
        async () => {},
      );
      aggregators[0]!.start();
      await aggregators[0]!.ready();

      const malformed = await malformedRun;
      await fault(
        `${MALFORMED_BYTES_PER_KIND >> 20} MiB of malformed input per receiver kind (during the two faults above)`,
        async () => {
          const dead = collectors.filter((c) => !c.running).map((c) => c.name);
          if (dead.length > 0) throw new Error(`collectors died under malformed input: ${dead.join(", ")}`);
          const answers = Object.entries(malformed.byKind).map(
            ([kind, t]) =>
              `${kind}: ${t.requests} requests, ${(t.bytes / 2 ** 20).toFixed(0)} MiB, ${JSON.stringify(t.statuses)}`,
          );
          return `${answers.join("; ")}; good pushes accepted meanwhile: ${loads.map((l, i) => `${l.pusher.node} ${l.pusher.stats.accepted - ackedBefore[i]!}`).join(", ")}`;
        },
        async () => {},
        malformedStartS,
      );

      const victim = loads[0]!;
      await fault(
        `collector ${victim.pusher.node} killed with kill -9`,
        async () => {
          await victim.collector.stop("SIGKILL");
          for (const line of victim.file.written) victim.fileInDoubt.add(line);
          await sleep(3_000);
          return `restarted on its disk buffer after 3 s; ${victim.pusher.inDoubt.size} pushed entries in doubt (request in flight at the kill, sent again)`;
        },
        async () => {
          victim.collector.start();
          await victim.collector.ready();
        },
      );

      for (const load of loads) {
        await load.pusher.stop();
        load.file.stop();
      }
      progress("load stopped; reading everything back through the Loki API");
      await until("every acknowledged entry stored", caughtUp(ackedNow()), 240_000);

      const startNs = BigInt(t0 - 3_600_000) * 1_000_000n;
      const endNs = BigInt(Date.now() + 3_600_000) * 1_000_000n;
      const rows = [];
      for (const load of loads) {
        const acked = acknowledged(load);
        let read: Entry[] = [];
        let missing: string[] = [];
        // The count above may include entries sent twice; the exact check waits a little more if one is late.
        for (let attempt = 0; attempt < 5; attempt++) {
          read = await readAllEntries(query.url, `{node="${load.pusher.node}"}`, startNs, endNs);
          const present = new Set(read.map((e) => e.line));
          missing = acked.filter((line) => !present.has(line));
          if (missing.length === 0) break;
          await sleep(5_000);
        }
        const inDoubt = new Set([...load.pusher.inDoubt, ...load.fileInDoubt]);
        const seen = new Map<string, number>();
        for (const e of read) seen.set(e.line, (seen.get(e.line) ?? 0) + 1);
        const duplicated = [...seen].filter(([, n]) => n > 1);
        const ackedSet = new Set(acked);
        const unacknowledged = [...seen.keys()].filter((line) => !ackedSet.has(line));
        rows.push({
          node: load.pusher.node,
          acknowledged: acked.length,
          pushed: load.pusher.acked.length,
          file_lines: load.file.written.length,
          queryable: read.length,
          lost: missing.length,
          duplicated: duplicated.reduce((n, [, c]) => n + c - 1, 0),
          duplicated_in_doubt: duplicated.filter(([line]) => inDoubt.has(line)).length,
          unacknowledged_stored: unacknowledged.length,
          unacknowledged_in_doubt: unacknowledged.filter((line) => inDoubt.has(line)).length,
          acknowledged_hash: digest(ackedSet),
          queryable_hash: digest(seen.keys()),
          push_retries: load.pusher.stats.retried,
          examples_lost: missing.slice(0, 3),
          examples_unacknowledged: unacknowledged.slice(0, 3),
        });
      }

      const report = [
        "",
        "=== end-to-end fault report ===",
        `pipeline: ${NODES.join(", ")} (collectors) -> Kafka ${kafka.brokers.join(",")} (private) -> aggregator-1, aggregator-2 -> ClickHouse ${clickhouse.url} (private chDB) -> query`,
        `load per collector: 50 entries/s over Loki JSON, Loki protobuf and OTLP/HTTP in turn, 20 lines/s appended to a tailed file; wall time ${at()} s`,
        "faults (seconds since start):",
        ...faults
          .sort((a, b) => a.injectedAtS - b.injectedAtS)
          .map(
            (f) =>
              `  [${f.injectedAtS} s] ${f.fault}: repaired at ${f.repairedAtS} s, every acknowledged entry queryable ${f.recoveredAfterS} s later. ${f.detail}`,
          ),
        "per node:",
        ...rows.map(
          (r) =>
            `  ${r.node}: acknowledged ${r.acknowledged} (${r.pushed} pushed, ${r.file_lines} file lines), queryable ${r.queryable}, lost ${r.lost}, duplicated ${r.duplicated}` +
            ` (${r.duplicated_in_doubt} of them in doubt), stored but never acknowledged ${r.unacknowledged_stored} (${r.unacknowledged_in_doubt} in doubt),` +
            ` hash acknowledged ${r.acknowledged_hash} / queryable ${r.queryable_hash}, push retries ${JSON.stringify(r.push_retries)}` +
            (r.examples_unacknowledged.length > 0
              ? `, e.g. never acknowledged: ${JSON.stringify(r.examples_unacknowledged)}`
              : ""),
        ),
        `lost in total: ${rows.reduce((n, r) => n + r.lost, 0)} (policy block: must be 0)`,
        "",
      ].join("\n");
      process.stdout.write(report);

      for (const load of loads)
        assert.deepEqual(load.pusher.stats.failed, [], `${load.pusher.node}: pushes answered neither 2xx nor 429/503`);
      assert.deepEqual(malformed.failures.slice(0, 10), [], "malformed input answered with something other than 4xx");
      for (const [i, load] of loads.entries())
        assert.ok(
          load.pusher.stats.accepted > ackedBefore[i]!,
          `${load.pusher.node} accepted good pushes during the malformed input`,
        );
      for (const r of rows) {
        assert.equal(r.lost, 0, `${r.node}: acknowledged entries lost, e.g. ${JSON.stringify(r.examples_lost)}`);
        // Only an entry in doubt (its push got no answer, or its line was tailed before a crash) may come twice.
        assert.equal(r.duplicated - r.duplicated_in_doubt, 0, `${r.node}: duplicates at the query level`);
        assert.equal(
          r.unacknowledged_stored,
          r.unacknowledged_in_doubt,
          `${r.node}: entries stored that were never acknowledged nor in doubt`,
        );
        if (r.duplicated === 0 && r.unacknowledged_stored === 0)
          assert.equal(r.queryable_hash, r.acknowledged_hash, `${r.node}: content`);
      }
    } finally {
      for (const load of loads) {
        await load.pusher.stop();
        load.file.stop();
      }
      await Promise.all(processes.map((p) => p.stop()));
      await clickhouse.stop();
      await kafka.run("down");
    }
  });
});
