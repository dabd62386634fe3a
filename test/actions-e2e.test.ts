import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { Wal } from "../collector/buffer/wal.js";
import { createLogger } from "../common/log.js";
import { KeyRing, signingKey } from "../common/signing.js";
import { decodeBatch } from "../proto/codec.js";
import { StoreAudit } from "../query/actions/audit.js";
import { CollectorDirectory } from "../query/actions/directory.js";
import { Remediator } from "../query/actions/remediator.js";
import { ActionSender } from "../query/actions/sender.js";
import { DuckDBStore } from "../storage/duckdb.js";
import { ed25519Keys, hmacKey, processAlive, restartServiceAction } from "./helpers/actions.js";
import { until } from "./helpers/aggregation.js";
import { freePort, REPO_ROOT } from "./helpers/services.js";
import { TEST_RETENTION } from "./helpers/store-contract.js";

// A test service (writes its pid to a file and runs until killed).
const SERVICE = `import { writeFileSync } from "node:fs";
writeFileSync(process.argv[2], String(process.pid));
setInterval(() => {}, 1000);
`;

const NODE = "edge-e2e";

describe("self-healing end to end: alert -> signed action -> collector process -> restarted service", () => {
  it("restarts the test service on a signed restart_service found through the collector's heartbeat, audited on both sides", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-actions-e2e-"));
    const pidFile = join(dir, "testsvc.pid");
    writeFileSync(join(dir, "testsvc.mjs"), SERVICE);
    const service = spawn(process.execPath, [join(dir, "testsvc.mjs"), pidFile], { detached: true, stdio: "ignore" });
    service.unref();
    await until(
      "the test service wrote its pid",
      () => readFileSync(pidFile, { encoding: "utf8", flag: "a+" }) === String(service.pid),
      10_000,
    );
    const firstPid = service.pid!;

    const keys = ed25519Keys("e2e", dir);
    const heartbeatKey = hmacKey("hb");
    const directory = new CollectorDirectory({
      collectors: {},
      ttlMs: 60_000,
      keys: new KeyRing([heartbeatKey]),
      maxSkewMs: 60_000,
    });
    const app = new Hono();
    directory.route(app);
    const queryPort = await freePort();
    const query = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: queryPort });

    const walDir = join(dir, "wal");
    const [collectorPort, grpcPort, deadKafkaPort] = [await freePort(), await freePort(), await freePort()];
    const configFile = join(dir, "collector.yaml");
    writeFileSync(
      configFile,
      JSON.stringify({
        log: { level: "error" },
        node: { id: NODE },
        kafka: { brokers: [`127.0.0.1:${deadKafkaPort}`] },
        collector: {
          listen: `127.0.0.1:${collectorPort}`,
          default_tenant: "ops",
          wal: { dir: walDir, fsync: "always" },
          batch: { max_age_ms: 50 },
          otlp: { grpc_listen: `127.0.0.1:${grpcPort}` },
          actions: {
            enabled: true,
            keys: [keys.verifier],
            allowed: [restartServiceAction(dir, pidFile, "SIGTERM")],
            heartbeat: {
              url: `http://127.0.0.1:${queryPort}/bifrost/v1/heartbeat`,
              interval_ms: 200,
              key: heartbeatKey,
            },
          },
        },
      }),
    );
    let stderr = "";
    const startCollector = (): ChildProcess => {
      const child = spawn(process.execPath, [join(REPO_ROOT, "dist", "cli.js"), "collector", "--config", configFile], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      return child;
    };
    const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
    const kill = async (child: ChildProcess) => {
      child.kill("SIGKILL");
      await until("the collector stopped", () => !running(child), 30_000);
    };
    let collector = startCollector();
    const store = new DuckDBStore({ path: ":memory:", retention: TEST_RETENTION });
    await store.migrate();
    try {
      await until(
        "the collector's heartbeat",
        () => {
          if (collector.exitCode !== null) throw new Error(`the collector exited: ${stderr}`);
          return directory.urlOf(NODE) === `http://127.0.0.1:${collectorPort}`;
        },
        60_000,
      );

      const sender = new ActionSender({
        key: signingKey(keys.signer),
        directory,
        requestTimeoutMs: 30_000,
        maxAttempts: 2,
        authToken: "",
      });
      const remediator = new Remediator({
        sender,
        audit: new StoreAudit(store, "ops"),
        bindings: [
          {
            matchers: { alertname: "ServiceDown" },
            action: "restart_service",
            params: {},
            params_from_labels: { service: "job" },
          },
        ],
        nodeLabel: "node",
        onActionFailed: (alert) => assert.fail(`unexpected failure alert ${JSON.stringify(alert)}`),
        log: createLogger("silent"),
      });
      const [outcome] = await remediator.remediate({
        labels: { alertname: "ServiceDown", node: NODE, job: "testsvc" },
      });
      assert.equal(outcome?.status, "succeeded", JSON.stringify(outcome));
      assert.equal(outcome.exit_code, 0);
      const secondPid = Number(readFileSync(pidFile, "utf8"));
      assert.notEqual(secondPid, firstPid);
      assert.equal(processAlive(firstPid), false);
      assert.equal(processAlive(secondPid), true);
      assert.equal(outcome.stdout, `restarted testsvc: ${firstPid} -> ${secondPid}\n`);

      const metrics = await (await fetch(`http://127.0.0.1:${collectorPort}/metrics`)).text();
      assert.match(
        metrics,
        /^bifrost_collector_actions_executed_total\{action="restart_service",status="succeeded"\} 1$/m,
      );

      // The query side's audit, read back from the store as the Loki API would.
      const streams = await store.selectLogs({
        tenant: "ops",
        matchers: [{ name: "service", op: "=", value: "bifrost-actions" }],
        startNs: BigInt(Date.now() - 600_000) * 1_000_000n,
        endNs: BigInt(Date.now() + 60_000) * 1_000_000n,
        limit: 100,
        direction: "forward",
      });
      const queryAudit = streams.flatMap((s) =>
        s.entries.map((e) => ({ labels: { ...s.labels }, event: JSON.parse(e.line) as Record<string, unknown> })),
      );
      assert.deepEqual(
        queryAudit.map((r) => [
          r.labels["source"],
          r.labels["node"],
          r.labels["action"],
          r.labels["outcome"],
          r.event["id"],
        ]),
        [
          ["query", NODE, "restart_service", "sending", outcome.id],
          ["query", NODE, "restart_service", "succeeded", outcome.id],
        ],
      );

      // A second restart_service inside the cooldown is refused, but its nonce is used. After a crash and a
      // restart the cooldown is forgotten, the nonce is not: the same envelope replayed is refused as a replay.
      const post = async (body: string) => {
        const response = await fetch(`http://127.0.0.1:${collectorPort}/bifrost/v1/actions`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body,
        });
        return { status: response.status, reason: ((await response.json()) as { reason?: string }).reason };
      };
      const captured = JSON.stringify(
        sender.envelope({ node: NODE, action: "restart_service", params: { service: "testsvc" } }, "captured-1"),
      );
      assert.deepEqual(await post(captured), { status: 429, reason: "cooldown" });
      // Each audit record was in the disk buffer before the answer, so even a crash (SIGKILL) keeps it.
      await kill(collector);
      collector = startCollector();
      await until(
        "the restarted collector is ready",
        async () => (await fetch(`http://127.0.0.1:${collectorPort}/ready`).catch(() => null))?.status === 200,
        60_000,
      );
      assert.deepEqual(await post(captured), { status: 409, reason: "replay" });
      assert.equal(Number(readFileSync(pidFile, "utf8")), secondPid);
      await kill(collector);

      // The collector's audit, from its disk buffer, where it waits for Kafka like any other log.
      const wal = Wal.open({
        dir: walDir,
        maxBytes: 1 << 30,
        segmentBytes: 16 << 20,
        fsync: "never",
        whenFull: "block",
      });
      const collectorAudit = wal.tail(1000).flatMap((record) => {
        const batch = decodeBatch(record.payload);
        return batch.streams
          .filter((s) => s.labels["service"] === "bifrost-actions")
          .flatMap((s) =>
            s.entries.map((e) => ({
              tenant: batch.tenant,
              labels: { ...s.labels },
              event: JSON.parse(e.line) as Record<string, unknown>,
            })),
          );
      });
      wal.close();
      assert.deepEqual(
        collectorAudit.map((r) => [
          r.tenant,
          r.labels["source"],
          r.labels["node"],
          r.labels["action"],
          r.labels["outcome"],
          r.event["id"],
        ]),
        [
          ["ops", "collector", NODE, "restart_service", "accepted", outcome.id],
          ["ops", "collector", NODE, "restart_service", "succeeded", outcome.id],
          ["ops", "collector", NODE, "restart_service", "refused", "captured-1"],
          ["ops", "collector", NODE, "restart_service", "refused", "captured-1"],
        ],
      );
      assert.deepEqual(
        collectorAudit.slice(2).map((r) => r.event["reason"]),
        ["cooldown", "replay"],
      );
      assert.equal(collectorAudit[1]!.event["stdout"], outcome.stdout);
    } finally {
      if (running(collector)) collector.kill("SIGKILL");
      const pid = Number(readFileSync(pidFile, "utf8"));
      if (processAlive(pid)) process.kill(pid, "SIGKILL");
      query.close();
      await store.close();
    }
  });
});
