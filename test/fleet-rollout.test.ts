import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import type { RolloutRecord } from "../proto/fleet.js";
import { FleetServerProcess, writeKeys } from "./helpers/fleet.js";
import { BifrostProcess, Pusher, readAllEntries, sleep } from "./helpers/pipeline.js";
import {
  CLICKHOUSE_URL,
  createTopics,
  deleteTopics,
  freePort,
  KAFKA_BROKERS,
  REPO_ROOT,
  uniqueName,
} from "./helpers/services.js";
import { until } from "./helpers/wait.js";

// A staged rollout over twenty collector processes, end to end: collectors -> Kafka -> aggregator -> ClickHouse
// -> query, with the fleet server (its state in the same ClickHouse) rolling configurations out by a GitOps
// directory, while every collector takes a steady Loki push load.
// 1. A good configuration passes three waves (5%, 25%, 100%: 1, 4 and 15 nodes) and ends on every node.
// 2. A configuration under which collectors reject their inputs halts in the first wave and rolls back by itself;
//    the senders' refused pushes go through again once the node runs its previous configuration.
// 3. During the next rollout the fleet server and two collectors are killed with SIGKILL: the collectors come back
//    on their last good configuration without the server, and the rollout goes on from its stored state.
// At the end every entry any collector acknowledged is read back through the Loki API, once.

const NODES = Array.from({ length: 20 }, (_, i) => `fleet-${String(i).padStart(2, "0")}`);

function rolloutYaml(soakMs: number): string {
  return `waves:\n  - { percent: 5 }\n  - { percent: 25 }\n  - { percent: 100 }\nsoak_ms: ${soakMs}\napply_timeout_ms: 240000\ngates:\n  requests_rejected: 1\n  restarts: 1\n`;
}

describe("staged rollout over 20 collectors", { timeout: 1_200_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-fleet-rollout-"));
  const source = join(dir, "source");
  const topic = uniqueName("fleet-rollout");
  const kafka = new Kafka({ clientId: "fleet-rollout-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  const processes: BifrostProcess[] = [];
  const collectors = new Map<string, BifrostProcess>();
  const pushers = new Map<string, Pusher>();
  let fleet: FleetServerProcess;
  let query: BifrostProcess;
  const startNs = BigInt(Date.now()) * 1_000_000n;

  const writeSource = (batchEntries: number, extra = "", soakMs = 2000) => {
    writeFileSync(join(source, "rollout.yaml"), rolloutYaml(soakMs));
    writeFileSync(join(source, "base.yaml"), `collector:\n  batch:\n    max_entries: ${batchEntries}\n${extra}`);
  };
  const latest = async (count: number): Promise<RolloutRecord> => {
    const rollouts = await fleet.rollouts();
    assert.equal(rollouts.length, count, `expected ${count} rollouts, got ${rollouts.map((r) => r.status).join(", ")}`);
    return rollouts[0]!;
  };
  const settled = (count: number, status: string) =>
    until(
      `rollout ${count} ${status}`,
      async () => {
        const rollouts = await fleet.rollouts();
        return rollouts.length === count && rollouts[0]!.status === status;
      },
      300_000,
    );

  before(async () => {
    mkdirSync(source, { recursive: true });
    await createTopics(kafka, [
      { topic, numPartitions: 4 },
      { topic: `${topic}.dlq`, numPartitions: 1 },
    ]);
    const keys = writeKeys(dir);
    const shared = {
      log: { level: "info" },
      kafka: { brokers: KAFKA_BROKERS, topic, dead_letter_topic: `${topic}.dlq` },
      clickhouse: { url: CLICKHOUSE_URL, database: uniqueName("fleet_rollout") },
      storage: { engine: "clickhouse" },
    };
    const [queryPort, aggregatorPort] = [await freePort(), await freePort()];
    query = BifrostProcess.write(dir, "query", "query", `http://127.0.0.1:${queryPort}`, {
      ...shared,
      query: { listen: `127.0.0.1:${queryPort}` },
    });
    const aggregator = BifrostProcess.write(dir, "aggregator", "aggregator", `http://127.0.0.1:${aggregatorPort}`, {
      ...shared,
      aggregator: {
        listen: `127.0.0.1:${aggregatorPort}`,
        group_id: uniqueName("fleet-group"),
        workers: 1,
        flush_ms: 200,
      },
    });
    fleet = await FleetServerProcess.configure(dir, {
      fleet: {
        source_dir: source,
        poll_interval_ms: 300,
        rollout_tick_ms: 200,
        persist_interval_ms: 300,
        last_seen_persist_ms: 1000,
        // Generous: on a loaded machine a collector swapping its components can be busy for many seconds.
        stale_after_ms: 60_000,
        keys: [{ id: "fleet", algorithm: "ed25519", file: keys.privateFile }],
      },
      store: { log: { level: "info" }, clickhouse: shared.clickhouse, storage: shared.storage },
    });
    for (const node of NODES) {
      const port = await freePort();
      mkdirSync(join(dir, node));
      const collector = BifrostProcess.write(dir, node, "collector", `http://127.0.0.1:${port}`, {
        ...shared,
        node: { id: node, region: node < "fleet-10" ? "eu-west" : "us-east" },
        collector: {
          listen: `127.0.0.1:${port}`,
          otlp: { grpc_enabled: false },
          wal: { dir: join(dir, node, "wal") },
          batch: { max_age_ms: 200 },
          actions: { keys: [{ id: "fleet", algorithm: "ed25519", file: keys.publicFile }] },
          fleet: {
            enabled: true,
            url: fleet.wsUrl,
            heartbeat_interval_ms: 1000,
            health_interval_ms: 500,
            confirm_ms: 3000,
            reconnect_max_ms: 1000,
          },
        },
      });
      collectors.set(node, collector);
      pushers.set(
        node,
        new Pusher(node, collector.url, {
          entriesPerPush: 5,
          intervalMs: 250,
          kinds: ["loki-json"],
          maxWaitMs: 1000,
          retryStatuses: [400, 429, 503],
        }),
      );
    }
    processes.push(query, aggregator, ...collectors.values());
    await fleet.start();
    for (const p of processes) p.start();
    await Promise.all(processes.map((p) => p.ready()));
    for (const pusher of pushers.values()) pusher.start();
    await until(
      "20 agents registered",
      async () => (await fleet.agents("?state=healthy")).length === NODES.length,
      120_000,
    );
  });

  after(async () => {
    for (const pusher of pushers.values()) await pusher.stop();
    for (const p of processes) await p.stop();
    await fleet?.stop();
    await deleteTopics(kafka, [topic, `${topic}.dlq`]).catch(() => undefined);
    if (process.env["BIFROST_KEEP_TEST_DIRS"] === undefined) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`fleet rollout test: logs and state kept in ${dir}\n`);
  });

  it("plans the good configuration: 20 nodes change, in waves of 1, 4 and 15", () => {
    const staged = join(dir, "staged");
    mkdirSync(staged);
    writeFileSync(join(staged, "rollout.yaml"), rolloutYaml(2000));
    writeFileSync(join(staged, "base.yaml"), "collector:\n  batch:\n    max_entries: 5000\n");
    const plan = JSON.parse(
      execFileSync(
        process.execPath,
        [join(REPO_ROOT, "dist", "cli.js"), "fleet", "plan", staged, "--server", fleet.url, "--json"],
        {
          encoding: "utf8",
        },
      ),
    ) as { agents: { action: string; wave: number }[] };
    assert.equal(plan.agents.filter((a) => a.action === "change").length, 20);
    assert.deepEqual(
      [1, 2, 3].map((w) => plan.agents.filter((a) => a.wave === w).length),
      [1, 4, 15],
    );
  });

  it("rolls a good configuration through every wave", async () => {
    writeSource(5000);
    await settled(1, "completed");
    const rollout = await latest(1);
    assert.deepEqual(
      rollout.waves.map((w) => [w.status, w.members.length]),
      [
        ["passed", 1],
        ["passed", 4],
        ["passed", 15],
      ],
    );
    for (const wave of rollout.waves)
      assert.ok(
        wave.gates.every((g) => g.ok),
        JSON.stringify(wave.gates),
      );
    await until("every node applied it", async () =>
      (await fleet.agents()).every((a) => a.remote_status === "applied" && a.remote_hash === a.desired_hash),
    );
    for (const agent of await fleet.agents()) {
      const detail = await fleet.api<{ effective_config: string }>(`agents/${agent.uid}`);
      assert.match(detail.effective_config, /max_entries: 5000/, agent.node);
    }
  });

  it("halts a configuration that makes collectors reject their inputs in the first wave, and rolls it back", async () => {
    const good = new Map((await fleet.agents()).map((a) => [a.uid, a.remote_hash]));
    writeSource(5000, "  limits:\n    max_line_bytes: 8\n", 5000);
    await settled(2, "rolled_back");
    const rollout = await latest(2);
    assert.equal(rollout.waves[0]!.status, "failed");
    assert.equal(rollout.waves[0]!.members.length, 1);
    assert.deepEqual(
      rollout.waves.slice(1).map((w) => [w.status, w.members.length]),
      [
        ["pending", 0],
        ["pending", 0],
      ],
    );
    assert.match(rollout.reason, /requests_rejected/);
    const member = rollout.waves[0]!.members[0]!;
    await until("every node back on the good configuration", async () =>
      (await fleet.agents()).every((a) => a.remote_status === "applied" && a.remote_hash === good.get(a.uid)),
    );
    const status = execFileSync(
      process.execPath,
      [join(REPO_ROOT, "dist", "cli.js"), "fleet", "status", "--server", fleet.url],
      {
        encoding: "utf8",
      },
    );
    assert.match(status, /rolled_back/);
    assert.match(status, /FAIL requests_rejected/);
    const metrics = await (await fetch(`${fleet.url}/metrics`)).text();
    assert.match(metrics, /bifrost_fleet_rollbacks_total 1/);
    assert.match(metrics, /bifrost_fleet_agents\{state="healthy"\} 20/);
    const node = (await fleet.agents()).find((a) => a.uid === member)!.node;
    // The refused pushes were sent again and taken once the node ran its previous configuration.
    await until("the halted node accepting again", async () => {
      const pusher = pushers.get(node)!;
      const before = pusher.stats.acceptedEntries;
      await sleep(1000);
      return pusher.stats.acceptedEntries > before;
    });
  });

  it("survives SIGKILL of the fleet server and of two collectors during a rollout, which resumes from its stored state", async () => {
    writeSource(6000, "", 4000);
    await until(
      "rollout 3 in its second wave",
      async () => {
        const rollouts = await fleet.rollouts();
        return rollouts.length === 3 && rollouts[0]!.current_wave === 1 && rollouts[0]!.waves[1]!.status === "soaking";
      },
      300_000,
    );
    const before = await latest(3);
    const updated = before.waves[1]!.members[0]!;
    const agents = await fleet.agents();
    const nodeOf = (uid: string) => agents.find((a) => a.uid === uid)!.node;
    const untouched = agents.find((a) => !before.waves.some((w) => w.members.includes(a.uid)))!;
    const previousHash = untouched.remote_hash;
    await fleet.stop("SIGKILL");
    const killed = [nodeOf(updated), untouched.node];
    for (const node of killed) await collectors.get(node)!.stop("SIGKILL");
    for (const node of killed) collectors.get(node)!.start();
    await Promise.all(killed.map((node) => collectors.get(node)!.ready()));
    // Without the fleet server, each comes back on what it ran: the one not reached yet on the previous config.
    const info = await (await fetch(`${collectors.get(untouched.node)!.url}/metrics`)).text();
    assert.match(
      info,
      new RegExp(`bifrost_collector_fleet_config_info\\{source="remote",hash="${previousHash.slice(0, 12)}"\\} 1`),
    );
    await sleep(1000);
    await fleet.start();
    await settled(3, "completed");
    const after = await latest(3);
    assert.equal(after.id, before.id, "the same rollout went on");
    assert.deepEqual(
      after.waves.map((w) => w.members.length),
      [1, 4, 15],
    );
    assert.deepEqual(after.waves[0]!.members, before.waves[0]!.members, "wave 1 was not started again");
    await until("every node on the new configuration", async () => {
      const now = await fleet.agents();
      return (
        now.every((a) => a.remote_status === "applied" && a.remote_hash === a.desired_hash) &&
        new Set(now.map((a) => a.remote_hash)).size === 1
      );
    });
    const [one] = await fleet.agents();
    assert.match(
      (await fleet.api<{ effective_config: string }>(`agents/${one!.uid}`)).effective_config,
      /max_entries: 6000/,
    );
    for (const node of killed) {
      const agent = (await fleet.agents(`?node=${node}`))[0]!;
      assert.equal(agent.restarts >= 1, true, `${node} restarted`);
    }
  });

  it("loses no entry on any node: everything acknowledged is queryable once", async () => {
    for (const pusher of pushers.values()) await pusher.stop();
    const endNs = BigInt(Date.now() + 60_000) * 1_000_000n;
    const report: string[] = [];
    await until(
      "every acknowledged entry stored",
      async () => {
        report.length = 0;
        for (const [node, pusher] of pushers) {
          const stored = await readAllEntries(query.url, `{node="${node}"}`, startNs, endNs);
          const counts = new Map<string, number>();
          for (const e of stored) counts.set(e.line, (counts.get(e.line) ?? 0) + 1);
          const lost = pusher.acked.filter((e) => !counts.has(e.line)).length;
          const duplicated = [...counts].filter(([line, n]) => n > 1 && !pusher.inDoubt.has(line)).length;
          if (lost > 0 || duplicated > 0)
            report.push(`${node}: ${pusher.acked.length} acknowledged, ${lost} lost, ${duplicated} duplicated`);
        }
        return report.length === 0;
      },
      120_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${report.join("\n")}`);
    });
    const total = [...pushers.values()].reduce((n, p) => n + p.acked.length, 0);
    assert.ok(total > 20 * 100, `a real load was pushed (${total} entries)`);
  });
});
