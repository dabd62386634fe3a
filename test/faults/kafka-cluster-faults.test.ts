import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Partitioners } from "kafkajs";
import { encodeBatch } from "../../proto/codec.js";
import { until } from "../helpers/aggregation.js";
import { makeBatch } from "../helpers/batches.js";
import { KafkaCluster } from "../helpers/kafka-cluster.js";
import { BifrostProcess, countByNode, type Entry, Pusher, readAllEntries, sleep } from "../helpers/pipeline.js";
import { createTopics, freePort, startChdbHttp, uniqueName } from "../helpers/services.js";

// Issue 14, item 7: three collectors -> a 3-node Kafka KRaft cluster (replication factor 3, min.insync.replicas
// 2) -> two aggregators -> ClickHouse -> query, all real processes, under steady load, with in turn: the broker
// that coordinates the aggregators' consumer group killed with kill -9, the leader of a partition killed, two
// brokers down at once, and a rolling restart. After each fault every aggregator must consume again (its own
// batches stored anew), and at the end every acknowledged entry must be readable exactly once per node.

const PARTITIONS = 3;
const SESSION_TIMEOUT_MS = 6000;
/** How long a killed broker stays down: past the controller's broker session timeout (9 s), so leadership moves. */
const DOWN_MS = 12_000;
/** Bound on the wait for an aggregator to consume again; a stalled one never does. */
const RESUME_TIMEOUT_MS = 120_000;

/** Node ids whose keys the producers' default partitioner sends to distinct partitions, so every partition gets load. */
function nodeIdsCoveringPartitions(): string[] {
  const partition = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: PARTITIONS }, (_, p) => ({
    partitionId: p,
    leader: 1,
    partitionErrorCode: 0,
    replicas: [],
    isr: [],
  }));
  const byPartition = new Map<number, string>();
  for (let i = 1; byPartition.size < PARTITIONS; i++) {
    const node = `edge-${i}`;
    const p = partition({ topic: "t", partitionMetadata, message: { key: node, value: null } });
    if (!byPartition.has(p)) byPartition.set(p, node);
  }
  return [...byPartition.values()];
}

interface Resumed {
  aggregator: string;
  /** Until it stored a batch after the repair. */
  afterRepairS: number | null;
  /** The longest time it stored nothing, from the injection to then. */
  longestPauseS: number | null;
}

interface FaultRecord {
  fault: string;
  injectedAtS: number;
  repairedAtS: number;
  resumed: Resumed[];
  caughtUpAfterS: number;
  detail: string;
}

describe("Kafka cluster faults", () => {
  it("3-node KRaft cluster (RF 3, min ISR 2): coordinator, leader and two brokers killed, a rolling restart: every aggregator consumes again after each fault, every acknowledged entry stored once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-kafka-faults-"));
    const t0 = Date.now();
    const at = () => Number(((Date.now() - t0) / 1000).toFixed(1));
    const progress = (message: string) => process.stderr.write(`kafka-faults [${at()} s] ${message}\n`);

    progress("starting a 3-node Kafka KRaft cluster and a private ClickHouse engine");
    const [cluster, clickhouse] = await Promise.all([KafkaCluster.start({ nodes: 3 }), startChdbHttp()]);
    const processes: BifrostProcess[] = [];
    const pushers: Pusher[] = [];
    let stopProbe = async () => {};
    try {
      const topic = uniqueName("kfaults");
      const topics = [topic, `${topic}.dlq`];
      await createTopics(cluster.client(), [
        { topic, numPartitions: PARTITIONS },
        { topic: `${topic}.dlq`, numPartitions: 1 },
      ]);
      const shared = {
        log: { level: "warn" },
        kafka: { brokers: cluster.brokers, topic, dead_letter_topic: `${topic}.dlq` },
        clickhouse: { url: clickhouse.url, database: uniqueName("kfaults") },
        storage: { engine: "clickhouse" },
      };
      const queryPort = await freePort();
      const query = BifrostProcess.write(dir, "query", "query", `http://127.0.0.1:${queryPort}`, {
        ...shared,
        query: { listen: `127.0.0.1:${queryPort}` },
      });
      const groupId = uniqueName("kfaults-group");
      const aggregators: BifrostProcess[] = [];
      for (const name of ["aggregator-1", "aggregator-2"]) {
        const port = await freePort();
        aggregators.push(
          BifrostProcess.write(dir, name, "aggregator", `http://127.0.0.1:${port}`, {
            ...shared,
            aggregator: {
              listen: `127.0.0.1:${port}`,
              group_id: groupId,
              workers: 1,
              session_timeout_ms: SESSION_TIMEOUT_MS,
              flush_ms: 200,
            },
          }),
        );
      }
      const nodes = nodeIdsCoveringPartitions();
      const collectors: BifrostProcess[] = [];
      for (const node of nodes) {
        const [port, grpc] = [await freePort(), await freePort()];
        mkdirSync(join(dir, node));
        const collector = BifrostProcess.write(dir, node, "collector", `http://127.0.0.1:${port}`, {
          ...shared,
          node: { id: node },
          collector: {
            listen: `127.0.0.1:${port}`,
            otlp: { grpc_listen: `127.0.0.1:${grpc}` },
            wal: { dir: join(dir, node, "wal") },
            batch: { max_age_ms: 200 },
          },
        });
        collectors.push(collector);
        pushers.push(new Pusher(node, collector.url, { entriesPerPush: 10, intervalMs: 200 }));
      }
      processes.push(query, ...aggregators, ...collectors);
      for (const p of processes) p.start();
      await Promise.all(processes.map((p) => p.ready()));
      progress(`pipeline up: ${processes.map((p) => `${p.name} pid ${p.pid}`).join(", ")}; logs in ${dir}`);
      for (const pusher of pushers) pusher.start();
      // Beside the collectors, whose shippers back off for up to 30 s while Kafka is away, a probe producer sends
      // a small batch to every partition every 250 ms with acks=1: data to consume as soon as a partition has a
      // leader again, so that when an aggregator consumes again measures the aggregator, not the shippers.
      const probe = cluster.client("kfaults-probe").producer({ retry: { retries: 1 } });
      await probe.connect();
      let probing = true;
      const probeStats = { sent: 0, failed: 0 };
      const probeStartNs = BigInt(t0 - 3_600_000) * 1_000_000n;
      const probeLoop = (async () => {
        for (let sequence = 1; probing; sequence++) {
          const messages = Array.from({ length: PARTITIONS }, (_, partition) => ({
            partition,
            value: encodeBatch(
              makeBatch({
                tenant: "probe",
                nodeId: `probe-${partition}`,
                sequence,
                streams: 1,
                entriesPerStream: 1,
                series: 0,
                startNs: probeStartNs,
              }),
            ),
          }));
          await probe.send({ topic, acks: 1, timeout: 5_000, messages }).then(
            () => probeStats.sent++,
            () => probeStats.failed++,
          );
          await sleep(250);
        }
      })();
      stopProbe = async () => {
        probing = false;
        await probeLoop;
        await probe.disconnect();
      };

      const ackedNow = () => new Map(pushers.map((p) => [p.node, p.acked.length]));
      const caughtUp = (target: Map<string, number>) => async () => {
        const counts = await countByNode(query.url).catch(() => null);
        return counts !== null && [...target].every(([node, n]) => (counts.get(node) ?? 0) >= n);
      };
      const metric = async (p: BifrostProcess, name: string, labels = "") => {
        const text = await fetch(`${p.url}/metrics`).then(
          (r) => r.text(),
          () => "",
        );
        return [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, "gm"))]
          .filter((m) => (m[1] ?? "").includes(labels))
          .reduce((n, m) => n + Number(m[2]), 0);
      };
      const stored = (p: BifrostProcess) => metric(p, "bifrost_aggregator_batches_total", 'result="stored"');
      const readiness = async (p: BifrostProcess) =>
        fetch(`${p.url}/ready`).then(
          async (r) => `${r.status} ${(await r.text()).trim().replaceAll("\n", " | ")}`,
          (err: unknown) => `no answer: ${(err as Error).message}`,
        );

      await until("the first entries of every node stored", caughtUp(new Map(nodes.map((n) => [n, 50]))), 180_000);
      await cluster.waitHealthy(topics);
      progress(`group ${groupId} coordinated by node ${await cluster.coordinatorOf(groupId)}`);

      const faults: FaultRecord[] = [];
      const fault = async (name: string, inject: () => Promise<string>, repair: () => Promise<void>) => {
        await cluster.waitHealthy(topics);
        await sleep(2_000);
        const injectedAtMs = Date.now();
        // When each aggregator's count of stored batches grew, polled from the injection on.
        const growth = aggregators.map(() => [] as number[]);
        let watching = true;
        const watchers = aggregators.map(async (aggregator, i) => {
          let last = await stored(aggregator);
          while (watching) {
            await sleep(250);
            const now = await stored(aggregator);
            if (now > last) growth[i]!.push(Date.now());
            last = Math.max(last, now);
          }
        });
        progress(`injecting: ${name}`);
        const detail = await inject();
        await repair();
        const repairedAtMs = Date.now();
        progress(`repaired: ${name}`);
        // Consuming again: each aggregator stores batches of its own after the repair.
        await until(
          "every aggregator storing batches after the repair",
          () => growth.every((times) => times.some((t) => t > repairedAtMs)),
          RESUME_TIMEOUT_MS,
        ).catch(() => {});
        watching = false;
        await Promise.all(watchers);
        const resumed = await Promise.all(
          aggregators.map(async (aggregator, i): Promise<Resumed> => {
            const times = growth[i]!;
            const at = times.find((t) => t > repairedAtMs);
            if (at === undefined) {
              progress(
                `${aggregator.name} stored nothing for ${RESUME_TIMEOUT_MS / 1000} s after the repair; /ready: ${await readiness(aggregator)}; log tail:\n${aggregator.logTail(8)}`,
              );
              return { aggregator: aggregator.name, afterRepairS: null, longestPauseS: null };
            }
            const marks = [injectedAtMs, ...times.filter((t) => t <= at)];
            const pause = Math.max(...marks.slice(1).map((t, k) => t - marks[k]!));
            return {
              aggregator: aggregator.name,
              afterRepairS: Number(((at - repairedAtMs) / 1000).toFixed(1)),
              longestPauseS: Number((pause / 1000).toFixed(1)),
            };
          }),
        );
        const stalled = resumed.filter((r) => r.afterRepairS === null).map((r) => r.aggregator);
        assert.deepEqual(stalled, [], `aggregators that never consumed again after: ${name}`);
        await until(`every acknowledged entry stored after: ${name}`, caughtUp(ackedNow()), 240_000);
        const record = {
          fault: name,
          injectedAtS: Number(((injectedAtMs - t0) / 1000).toFixed(1)),
          repairedAtS: Number(((repairedAtMs - t0) / 1000).toFixed(1)),
          resumed,
          caughtUpAfterS: Number(((Date.now() - repairedAtMs) / 1000).toFixed(1)),
          detail,
        };
        progress(`recovered: ${JSON.stringify(record)}`);
        faults.push(record);
      };

      let coordinator = 0;
      await fault(
        "kill -9 of the broker that coordinates the aggregators' consumer group",
        async () => {
          coordinator = await cluster.coordinatorOf(groupId);
          await cluster.stopNode(coordinator, "SIGKILL");
          await sleep(DOWN_MS);
          return `node ${coordinator} down for ${DOWN_MS / 1000} s, then restarted on its data`;
        },
        () => cluster.startNode(coordinator),
      );

      let leader = 0;
      await fault(
        "kill -9 of a partition leader",
        async () => {
          const coordinatorNow = await cluster.coordinatorOf(groupId);
          const leaders = [...(await cluster.leaders(topic))].map(([partition, node]) => ({ partition, node }));
          const chosen = leaders.find((l) => l.node !== coordinatorNow) ?? leaders[0]!;
          leader = chosen.node;
          const led = leaders.filter((l) => l.node === leader).map((l) => l.partition);
          await cluster.stopNode(leader, "SIGKILL");
          await sleep(DOWN_MS);
          return `node ${leader} (leader of partition ${led.join(", ")}; group coordinator: node ${coordinatorNow}) down for ${DOWN_MS / 1000} s`;
        },
        () => cluster.startNode(leader),
      );

      let pair: number[] = [];
      await fault(
        "two brokers down at once (kill -9 of one, then of a second)",
        async () => {
          const first = await cluster.coordinatorOf(groupId);
          const leaders = [...(await cluster.leaders(topic)).values()];
          const second = leaders.find((n) => n !== first) ?? cluster.nodes.find((n) => n.id !== first)!.id;
          pair = [first, second];
          await cluster.stopNode(first, "SIGKILL");
          await sleep(5_000);
          await cluster.stopNode(second, "SIGKILL");
          await sleep(DOWN_MS);
          return `node ${first} (group coordinator), then 5 s later node ${second}, killed; both down ${DOWN_MS / 1000} s together (no quorum, no in-sync pair: producing waits, collectors buffer)`;
        },
        async () => {
          await Promise.all(pair.map((id) => cluster.startNode(id)));
        },
      );

      await fault(
        "rolling restart (each broker in turn: controlled shutdown, restart, in sync again)",
        async () => {
          const took: string[] = [];
          for (const node of cluster.nodes) {
            const started = Date.now();
            await cluster.stopNode(node.id, "SIGTERM");
            await cluster.startNode(node.id);
            await cluster.waitHealthy(topics);
            took.push(`node ${node.id} ${((Date.now() - started) / 1000).toFixed(1)} s`);
          }
          return `restarted one at a time: ${took.join(", ")}`;
        },
        async () => {},
      );

      for (const pusher of pushers) await pusher.stop();
      await stopProbe();
      progress(
        `load stopped (probe batches: ${probeStats.sent} sends, ${probeStats.failed} failed); reading everything back through the Loki API`,
      );
      await until("every acknowledged entry stored", caughtUp(ackedNow()), 240_000);

      const startNs = BigInt(t0 - 3_600_000) * 1_000_000n;
      const endNs = BigInt(Date.now() + 3_600_000) * 1_000_000n;
      const rows = [];
      for (const pusher of pushers) {
        const acked = pusher.acked.map((e) => e.line);
        let read: Entry[] = [];
        let missing: string[] = [];
        for (let attempt = 0; attempt < 5; attempt++) {
          read = await readAllEntries(query.url, `{node="${pusher.node}"}`, startNs, endNs);
          const present = new Set(read.map((e) => e.line));
          missing = acked.filter((line) => !present.has(line));
          if (missing.length === 0) break;
          await sleep(5_000);
        }
        const seen = new Map<string, number>();
        for (const e of read) seen.set(e.line, (seen.get(e.line) ?? 0) + 1);
        const duplicated = [...seen].filter(([, n]) => n > 1);
        const ackedSet = new Set(acked);
        const unacknowledged = [...seen.keys()].filter((line) => !ackedSet.has(line));
        rows.push({
          node: pusher.node,
          acknowledged: acked.length,
          stored: read.length,
          lost: missing.length,
          duplicated: duplicated.reduce((n, [, c]) => n + c - 1, 0),
          duplicatedInDoubt: duplicated.filter(([line]) => pusher.inDoubt.has(line)).length,
          unacknowledged: unacknowledged.length,
          unacknowledgedInDoubt: unacknowledged.filter((line) => pusher.inDoubt.has(line)).length,
          retried: pusher.stats.retried,
          examplesLost: missing.slice(0, 3),
        });
      }
      const stalls = aggregators.map(
        (a) =>
          `${a.name}: ${
            a
              .logTail(100_000)
              .split("\n")
              .filter((l) => l.includes("not the correct coordinator")).length
          }`,
      );
      const report = [
        "",
        "=== Kafka cluster fault report ===",
        `pipeline: ${nodes.join(", ")} (collectors, one partition each) -> Kafka KRaft nodes ${cluster.brokers.join(", ")} (RF 3, min ISR 2, ${PARTITIONS} partitions) -> aggregator-1, aggregator-2 (session timeout ${SESSION_TIMEOUT_MS / 1000} s) -> ClickHouse ${clickhouse.url} (private chDB) -> query`,
        `load: 50 entries/s per collector over Loki JSON, Loki protobuf and OTLP/HTTP in turn, and a probe batch per partition every 250 ms (acks=1); wall time ${at()} s`,
        "faults (seconds since start; consuming again = the aggregator stored a batch after the repair; Kafka itself moves a dead broker's leaderships after its 9 s broker session timeout):",
        ...faults.map(
          (f) =>
            `  [${f.injectedAtS} s] ${f.fault}: ${f.detail}; repaired at ${f.repairedAtS} s; consuming again: ${f.resumed
              .map(
                (r) =>
                  `${r.aggregator} ${r.afterRepairS} s after the repair (${(r.afterRepairS ?? Infinity) <= SESSION_TIMEOUT_MS / 1000 ? "within" : "beyond"} the session timeout; longest pause in storing since the injection ${r.longestPauseS} s)`,
              )
              .join(", ")}; every acknowledged entry stored ${f.caughtUpAfterS} s after the repair`,
        ),
        "per node:",
        ...rows.map(
          (r) =>
            `  ${r.node}: acknowledged ${r.acknowledged}, stored ${r.stored}, lost ${r.lost}, duplicated ${r.duplicated} (${r.duplicatedInDoubt} in doubt), stored but never acknowledged ${r.unacknowledged} (${r.unacknowledgedInDoubt} in doubt), push retries ${JSON.stringify(r.retried)}`,
        ),
        `"not the correct coordinator" log lines per aggregator: ${stalls.join(", ")}`,
        "",
      ].join("\n");
      process.stdout.write(report);

      for (const pusher of pushers)
        assert.deepEqual(pusher.stats.failed, [], `${pusher.node}: pushes answered neither 2xx nor 429/503`);
      for (const r of rows) {
        assert.equal(r.lost, 0, `${r.node}: acknowledged entries lost, e.g. ${JSON.stringify(r.examplesLost)}`);
        assert.equal(r.duplicated - r.duplicatedInDoubt, 0, `${r.node}: duplicates`);
        assert.equal(r.unacknowledged, r.unacknowledgedInDoubt, `${r.node}: entries stored that were never pushed`);
      }
    } finally {
      await stopProbe().catch(() => {});
      for (const pusher of pushers) await pusher.stop();
      await Promise.all(processes.map((p) => p.stop()));
      await clickhouse.stop();
      await cluster.shutdown();
    }
  });
});
