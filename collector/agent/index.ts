import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { Counter, Gauge } from "prom-client";
import type { Config } from "../../config.js";
import { loadClientTls } from "../../common/http-client.js";
import { sha256Hex } from "../../common/remote-config.js";
import type { Runtime, Running } from "../../runtime.js";
import { AgentCapabilities, RemoteConfigStatus } from "../../proto/opamp.js";
import { type CollectorWiring, startCollector } from "../index.js";
import { type RemoteConfigOffer, OpampClient } from "./client.js";
import { agentDescription, effectiveConfigMap } from "./describe.js";
import { collectorHealth } from "./health.js";
import { checkRemoteConfig, effectiveConfig, RemoteConfigRefused } from "./remote.js";
import { AgentStateDir, type RemoteStatusRecord, type StoredConfig } from "./state.js";

// `bifrost collector` with collector.fleet.enabled: the collector as an OpAMP agent. It runs the collector with
// its local file and, over it, the last remote configuration that ran well; it applies a new one by stopping the
// collector's components and starting them again with it, in the same process: listeners close once their
// requests are answered, the batcher flushes into the disk buffer, the shipper stops after its batch in flight,
// and the new components reopen the same disk buffer and ship on from its cursor, so nothing buffered is lost.
// A configuration that fails to start is replaced by the one before; one under which the process keeps dying
// (max_starts starts without running confirm_ms) is given up at the next start for the last good one.

const CAPABILITIES =
  AgentCapabilities.ReportsStatus |
  AgentCapabilities.AcceptsRemoteConfig |
  AgentCapabilities.ReportsEffectiveConfig |
  AgentCapabilities.ReportsHealth |
  AgentCapabilities.ReportsRemoteConfig |
  AgentCapabilities.ReportsHeartbeat;

const STATUS: Record<RemoteStatusRecord["status"] | "applying", RemoteConfigStatus> = {
  applied: RemoteConfigStatus.Applied,
  applying: RemoteConfigStatus.Applying,
  failed: RemoteConfigStatus.Failed,
};

interface Incarnation {
  running: Running;
  config: Config;
  stored: StoredConfig | undefined;
  /** Metric names its components registered: removed when it stops, so the next can register them again. */
  metrics: string[];
}

export async function startManagedCollector(runtime: Runtime, wiring: CollectorWiring = {}): Promise<Running> {
  const local = runtime.config;
  const f = local.collector.fleet;
  if (!f.enabled) return startCollector(runtime, wiring);
  if (local.collector.actions.keys.length === 0)
    throw new Error(
      "collector.fleet.enabled needs collector.actions.keys: remote configurations are verified with them",
    );
  const log = runtime.log.child({ component: "fleet-agent" });
  const registry = runtime.registry;
  const state = new AgentStateDir(f.state_dir || join(local.collector.wal.dir, "fleet"));
  const ctx = { localFile: runtime.configFile, local };
  const startedUnixNano = BigInt(Date.now()) * 1_000_000n;
  const metrics = {
    connected: new Gauge({
      name: "bifrost_collector_fleet_connected",
      help: "1 while the OpAMP server is reachable.",
      registers: [registry],
    }),
    applies: new Counter({
      name: "bifrost_collector_fleet_remote_configs_total",
      help: "Remote configurations received, by result (applied, unchanged, failed).",
      labelNames: ["result"],
      registers: [registry],
    }),
    config: new Gauge({
      name: "bifrost_collector_fleet_config_info",
      help: "1 for the configuration running: source (local, remote) and its hash.",
      labelNames: ["source", "hash"],
      registers: [registry],
    }),
  };

  let remoteStatus = state.remoteStatus();
  let current: Incarnation | undefined;
  let lastError = "";

  const start = async (stored: StoredConfig | undefined): Promise<Incarnation> => {
    const config = effectiveConfig(ctx, stored);
    runtime.log.level = config.log.level;
    const before = new Set(registry.getMetricsAsArray().map((m) => m.name));
    const mine = () =>
      registry
        .getMetricsAsArray()
        .map((m) => m.name)
        .filter((n) => !before.has(n));
    try {
      const running = await startCollector({ ...runtime, config }, wiring);
      metrics.config.reset();
      metrics.config.set(
        {
          source: stored === undefined || stored.body === "" ? "local" : "remote",
          hash: stored?.hash.slice(0, 12) ?? "",
        },
        1,
      );
      return { running, config, stored, metrics: mine() };
    } catch (err) {
      for (const name of mine()) registry.removeSingleMetric(name);
      throw err;
    }
  };
  const stop = async (incarnation: Incarnation) => {
    await incarnation.running.stop();
    for (const name of incarnation.metrics) registry.removeSingleMetric(name);
  };

  // What to start with: a configuration still being tried (unless the process keeps dying with it), the last
  // good one, the local file alone.
  let pending = state.pending();
  if (pending !== undefined) {
    pending.starts++;
    if (pending.starts > f.max_starts) {
      remoteStatus = {
        hash: pending.hash,
        status: "failed",
        error: `crash loop: ${pending.starts - 1} starts without running ${f.confirm_ms} ms; back to the last good configuration`,
      };
      state.setRemoteStatus(remoteStatus);
      state.clearPending();
      log.error(
        { hash: pending.hash, starts: pending.starts - 1 },
        "remote configuration crash-looped; using the last good one",
      );
      pending = undefined;
    } else state.setPending(pending);
  }
  const stored = [pending, state.lastGood()].filter((c): c is StoredConfig => c !== undefined);
  for (const candidate of [...stored, undefined]) {
    try {
      current = await start(candidate);
      break;
    } catch (err) {
      if (candidate === undefined) throw err;
      lastError = `configuration ${candidate.hash.slice(0, 12)} did not start: ${(err as Error).message}`;
      log.error({ err, hash: candidate.hash }, "a stored remote configuration did not start; trying the one before");
      if (candidate === pending) {
        remoteStatus = { hash: candidate.hash, status: "failed", error: lastError };
        state.setRemoteStatus(remoteStatus);
        state.clearPending();
        pending = undefined;
      }
    }
  }
  let running = current!;

  let confirmTimer: NodeJS.Timeout | undefined;
  const confirmLater = () => {
    clearTimeout(confirmTimer);
    confirmTimer = setTimeout(() => {
      const tried = state.pending();
      if (tried === undefined || tried.hash !== running.stored?.hash) return;
      state.setLastGood({ hash: tried.hash, body: tried.body, signature: tried.signature, issued_at: tried.issued_at });
      state.clearPending();
      log.info({ hash: tried.hash }, "remote configuration confirmed: it is the last good one now");
    }, f.confirm_ms);
    confirmTimer.unref();
  };
  if (pending !== undefined && running.stored?.hash === pending.hash) confirmLater();

  const client = new OpampClient({
    url: f.url,
    authToken: f.auth_token,
    tls: loadClientTls(f.tls),
    instanceUid: state.instanceUid(),
    capabilities: CAPABILITIES,
    heartbeatMs: f.heartbeat_interval_ms,
    maxMessageBytes: f.max_message_bytes,
    reconnectMaxMs: f.reconnect_max_ms,
    log,
    onRemoteConfig: (offer) => {
      applying = applying
        .then(() => apply(offer))
        .catch((err: unknown) => log.error({ err }, "applying a remote configuration failed"));
    },
    onInstanceUid: (uid) => {
      state.setInstanceUid(uid);
      client.set("agentDescription", agentDescription(local, uid));
    },
    onConnected: (connected) => metrics.connected.set(connected ? 1 : 0),
  });
  let applying: Promise<void> = Promise.resolve();

  const report = (status: RemoteStatusRecord | { hash: string; status: "applying"; error: string }) => {
    client.set("remoteConfigStatus", {
      lastRemoteConfigHash: Buffer.from(status.hash, "hex"),
      status: STATUS[status.status],
      errorMessage: status.error,
    });
  };
  const settle = (status: RemoteStatusRecord, result: string = status.status) => {
    remoteStatus = status;
    state.setRemoteStatus(status);
    report(status);
    metrics.applies.inc({ result });
  };
  const reportRunning = async () => {
    client.set("effectiveConfig", effectiveConfigMap(running.config));
    client.set(
      "health",
      await collectorHealth({
        registry,
        config: running.config,
        startedUnixNano,
        running: true,
        lastError,
        configStatus:
          running.stored === undefined || running.stored.body === ""
            ? "local"
            : `remote ${running.stored.hash.slice(0, 12)}`,
      }),
    );
  };

  async function apply(offer: RemoteConfigOffer): Promise<void> {
    const hash = Buffer.from(offer.configHash).toString("hex") || sha256Hex("");
    if (hash === (running.stored?.hash ?? "") && remoteStatus?.hash === hash && remoteStatus.status === "applied")
      return;
    if (remoteStatus?.hash === hash && remoteStatus.status === "failed") {
      report(remoteStatus);
      return;
    }
    report({ hash, status: "applying", error: "" });
    let checked;
    try {
      checked = checkRemoteConfig(offer.config, hash, {
        ...ctx,
        lastIssuedAt: Math.max(state.lastGood()?.issued_at ?? 0, running.stored?.issued_at ?? 0),
        nowMs: Date.now(),
      });
    } catch (err) {
      if (!(err instanceof RemoteConfigRefused)) throw err;
      log.error({ hash, reason: err.message }, "remote configuration refused");
      settle({ hash, status: "failed", error: err.message });
      return;
    }
    if (isDeepStrictEqual(checked.config, running.config)) {
      // Nothing the collector runs with changes: no restart, and nothing to try.
      running.stored = checked.stored;
      state.setLastGood(checked.stored);
      state.clearPending();
      settle({ hash, status: "applied", error: "" }, "unchanged");
      await reportRunning();
      return;
    }
    state.setPending({ ...checked.stored, starts: 1 });
    const previous = running;
    await stop(previous);
    try {
      running = await start(checked.stored);
      lastError = "";
      log.info({ hash }, "remote configuration applied");
      settle({ hash, status: "applied", error: "" });
      confirmLater();
    } catch (err) {
      lastError = `configuration ${hash.slice(0, 12)} did not start: ${(err as Error).message}`;
      log.error({ err, hash }, "remote configuration did not start; back to the one before");
      state.clearPending();
      settle({ hash, status: "failed", error: lastError });
      try {
        running = await start(previous.stored);
      } catch (restartErr) {
        // Nothing runs: end the process, for its service manager to start it again on the last good configuration.
        log.fatal({ err: restartErr }, "the configuration before did not start again either; exiting");
        process.exit(1);
      }
    }
    await reportRunning();
  }

  client.set("agentDescription", agentDescription(local, state.instanceUid()));
  if (remoteStatus !== undefined) report(remoteStatus);
  await reportRunning();
  const health = setInterval(() => void reportRunning().catch(() => undefined), f.health_interval_ms);
  health.unref();
  client.start();

  return {
    role: "collector",
    address: running.running.address,
    ...(running.running.otlpGrpc ? { otlpGrpc: running.running.otlpGrpc } : {}),
    stop: async () => {
      clearInterval(health);
      clearTimeout(confirmTimer);
      await client.stop();
      await applying;
      // A clean stop is no crash: it does not count against a configuration being tried.
      const tried = state.pending();
      if (tried !== undefined && tried.hash === running.stored?.hash)
        state.setPending({ ...tried, starts: tried.starts - 1 });
      await stop(running);
    },
  };
}
