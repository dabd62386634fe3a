import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { ed25519Keys, hmacKey, processAlive, restartServiceAction } from "./helpers/actions.js";
import { until } from "./helpers/aggregation.js";
import {
  CLICKHOUSE_URL,
  createTopics,
  deleteTopics,
  freePort,
  KAFKA_BROKERS,
  REPO_ROOT,
  uniqueName,
} from "./helpers/services.js";
import { WebhookReceiver } from "./helpers/webhook-receiver.js";

// The mission's loop, in one `bifrost all` process and across collector, aggregator and query processes over
// Kafka and ClickHouse: host metrics show a runaway process -> a threshold rule fires
// -> the responder's webhook gets an Alertmanager v4 payload -> the query side sends a signed restart_service to
// the node's collector (found through its heartbeat) -> the collector restarts the process -> the CPU rate falls,
// the alert resolves and the resolved notification arrives -> the audit trail in the store shows each step.

// The service under watch: burns a core while BURN=1 is in its environment (the broken state), idles otherwise.
const SERVICE = `import { writeFileSync } from "node:fs";
writeFileSync(process.argv[2], String(process.pid));
if (process.env.BURN === "1") for (;;) {}
setInterval(() => {}, 1000);
`;

const RULES = `groups:
  - name: processes
    interval: 1s
    rules:
      - alert: RunawayProcess
        expr: rate(namedprocess_namegroup_cpu_seconds_total{groupname="burner", mode="user"}[4s]) > 0.5
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.groupname }} on {{ $labels.node }} burns {{ $value | printf \\"%.2f\\" }} CPU"
`;

const NODE = "edge-heal";

interface Webhook {
  version: string;
  status: string;
  alerts: {
    status: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    fingerprint: string;
  }[];
}

/** Either one `bifrost all` process, or collector, aggregator and query processes over Kafka and ClickHouse. */
type Mode = "all-in-one" | "distributed";

function scenario(mode: Mode): void {
  it(`${mode}: fires on a runaway process, pages, restarts it through a signed action, resolves, and audits every step`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-heal-"));
    const pidFile = join(dir, "burner.pid");
    writeFileSync(join(dir, "burner.mjs"), SERVICE);
    mkdirSync(join(dir, "rules"));
    writeFileSync(join(dir, "rules", "processes.yaml"), RULES);
    const burner = spawn(process.execPath, [join(dir, "burner.mjs"), pidFile], {
      detached: true,
      stdio: "ignore",
      env: { ...process.env, BURN: "1" },
    });
    burner.unref();
    await until(
      "the service wrote its pid",
      () => readFileSync(pidFile, { encoding: "utf8", flag: "a+" }) === String(burner.pid),
      10_000,
    );
    const firstPid = burner.pid!;

    const webhook = await new WebhookReceiver().start();
    const keys = ed25519Keys("heal", dir);
    const heartbeat = hmacKey("hb");
    const [query, collector, aggregator, grpc] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const configFile = join(dir, "bifrost.yaml");
    const topic = uniqueName("heal");
    const distributed =
      mode === "distributed"
        ? {
            kafka: { brokers: KAFKA_BROKERS, topic, dead_letter_topic: `${topic}.dlq` },
            clickhouse: { url: CLICKHOUSE_URL, database: uniqueName("heal") },
            storage: { engine: "clickhouse" },
          }
        : { storage: { path: join(dir, "data") } };
    if (mode === "distributed") {
      await createTopics(new Kafka({ clientId: "heal-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }), [
        { topic, numPartitions: 1 },
        { topic: `${topic}.dlq`, numPartitions: 1 },
      ]);
    }
    writeFileSync(
      configFile,
      JSON.stringify({
        log: { level: "warn" },
        node: { id: NODE },
        ...distributed,
        aggregator: { listen: `127.0.0.1:${aggregator}`, group_id: uniqueName("heal-group"), flush_ms: 100 },
        collector: {
          listen: `127.0.0.1:${collector}`,
          wal: { dir: join(dir, "wal") },
          batch: { max_age_ms: 100 },
          otlp: { grpc_listen: `127.0.0.1:${grpc}` },
          host_metrics: {
            enabled: true,
            interval_ms: 500,
            processes: [{ name: "burner", match: { pidfile: pidFile } }],
          },
          actions: {
            enabled: true,
            keys: [keys.verifier],
            // The restarted service inherits the collector's environment, which has no BURN.
            allowed: [restartServiceAction(dir, pidFile, "SIGKILL")],
            heartbeat: { url: `http://127.0.0.1:${query}/bifrost/v1/heartbeat`, interval_ms: 200, key: heartbeat },
          },
        },
        query: {
          listen: `127.0.0.1:${query}`,
          ruler: { rules_dir: join(dir, "rules"), evaluation_interval_ms: 1000 },
          notifier: {
            receivers: [
              {
                name: "oncall",
                url: `${webhook.url}/alerts`,
                group_by: ["alertname"],
                group_wait_ms: 100,
                group_interval_ms: 300,
                repeat_interval_ms: 3_600_000,
              },
            ],
            state_file: join(dir, "notifier", "state.json"),
            dead_letter_dir: join(dir, "notifier", "dead"),
          },
          actions: {
            enabled: true,
            keys: [keys.signer],
            heartbeat_keys: [heartbeat],
            bindings: [
              {
                matchers: { alertname: "RunawayProcess" },
                action: "restart_service",
                params_from_labels: { service: "groupname" },
              },
            ],
          },
        },
      }),
    );
    let stderr = "";
    const roles = mode === "all-in-one" ? ["all"] : ["query", "aggregator", "collector"];
    const processes: ChildProcess[] = roles.map((role) => {
      const child = spawn(process.execPath, [join(REPO_ROOT, "dist", "cli.js"), role, "--config", configFile], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      return child;
    });
    const payloads = () => webhook.requests.map((r) => r.json as Webhook);
    try {
      const firing = await until(
        "a firing notification",
        () => {
          if (processes.some((p) => p.exitCode !== null)) throw new Error(`a bifrost process exited: ${stderr}`);
          return payloads().some((p) => p.status === "firing");
        },
        120_000,
      ).then(() => payloads().find((p) => p.status === "firing")!);
      assert.equal(firing.version, "4");
      const alert = firing.alerts[0]!;
      assert.equal(alert.labels["alertname"], "RunawayProcess");
      assert.equal(alert.labels["node"], NODE);
      assert.equal(alert.labels["groupname"], "burner");
      assert.match(alert.annotations["summary"] ?? "", /^burner on edge-heal burns \d+\.\d\d CPU$/);

      await until(
        "the service restarted by the signed action",
        () => Number(readFileSync(pidFile, "utf8")) !== firstPid,
        60_000,
      );
      const secondPid = Number(readFileSync(pidFile, "utf8"));
      assert.equal(processAlive(firstPid), false);
      assert.equal(processAlive(secondPid), true);

      await until(
        "the resolved notification",
        () =>
          payloads().some((p) => p.status === "resolved" && p.alerts.some((a) => a.fingerprint === alert.fingerprint)),
        120_000,
      );

      // The audit trail, read through the Loki API: the query side's send and outcome, the collector's acceptance
      // and outcome (carried through the collector's own data path).
      const now = BigInt(Date.now()) * 1_000_000n;
      const outcomes = new Set<string>();
      await until(
        "the audit records of both sides",
        async () => {
          const url = `http://127.0.0.1:${query}/loki/api/v1/query_range?query=${encodeURIComponent('{service="bifrost-actions"}')}&start=${now - 600_000_000_000n}&end=${now + 60_000_000_000n}&limit=100`;
          const body = (await (await fetch(url)).json()) as { data: { result: { stream: Record<string, string> }[] } };
          for (const stream of body.data.result) outcomes.add(`${stream.stream["source"]}:${stream.stream["outcome"]}`);
          return ["query:sending", "query:succeeded", "collector:accepted", "collector:succeeded"].every((o) =>
            outcomes.has(o),
          );
        },
        60_000,
      );
      const metrics = await (await fetch(`http://127.0.0.1:${collector}/metrics`)).text();
      assert.match(
        metrics,
        /^bifrost_collector_actions_executed_total\{action="restart_service",status="succeeded"\} 1$/m,
      );
    } finally {
      for (const child of processes) child.kill("SIGTERM");
      await until(
        "the bifrost processes stopped",
        () => processes.every((p) => p.exitCode !== null || p.signalCode !== null),
        30_000,
      ).catch(() => processes.forEach((p) => p.kill("SIGKILL")));
      await webhook.stop();
      for (const pid of [firstPid, Number(readFileSync(pidFile, "utf8"))])
        if (processAlive(pid)) process.kill(pid, "SIGKILL");
      if (mode === "distributed")
        await deleteTopics(new Kafka({ clientId: "heal-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }), [
          topic,
          `${topic}.dlq`,
        ]);
    }
  });
}

describe("self-healing loop", () => {
  scenario("all-in-one");
  scenario("distributed");
});
