import { Gauge, type Registry } from "prom-client";
import type { Logger } from "../common/log.js";
import { sha256Hex } from "../common/remote-config.js";
import {
  AGENT_STATES,
  type AgentHealth,
  type AgentRecord,
  agentState,
  type ComponentState,
  type RemoteStatus,
} from "../proto/fleet.js";
import {
  type AgentConfigMap,
  type AgentToServer,
  type Attributes,
  type ComponentHealth,
  RemoteConfigStatus,
} from "../proto/opamp.js";
import type { FleetRecords } from "../storage/fleet-records.js";

// Every agent the fleet server has heard from, what it last reported, and when. Kept in memory and written to the
// store: changed records together every persist interval, and a record whose only news is a heartbeat at most
// every last_seen_persist_ms, so that ten thousand agents heartbeating cost one small write now and then.

/** Effective configurations larger than this are kept as their hash only. */
const MAX_EFFECTIVE_TEXT = 64 << 10;

const REMOTE_STATUS: Record<number, RemoteStatus> = {
  [RemoteConfigStatus.Unset]: "unset",
  [RemoteConfigStatus.Applied]: "applied",
  [RemoteConfigStatus.Applying]: "applying",
  [RemoteConfigStatus.Failed]: "failed",
};

export function newAgent(uid: string, nowMs: number): AgentRecord {
  return {
    uid,
    node: uid,
    agent_type: "",
    version: "",
    labels: { node: uid },
    capabilities: 0,
    effective_hash: "",
    effective_config: "",
    remote_hash: "",
    remote_status: "unset",
    remote_error: "",
    desired_hash: "",
    desired_revision: "",
    health: null,
    restarts: 0,
    first_seen_ms: nowMs,
    last_seen_ms: nowMs,
    connection: "",
    disconnected: false,
  };
}

/**
 * The labels selectors match: every description attribute by its own name, and the short names a fleet is
 * sorted by: node, site, region, arch, os, version.
 */
export function agentLabels(identifying: Attributes, nonIdentifying: Attributes, uid: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...nonIdentifying, ...identifying })) attributes[key] = String(value);
  const first = (...keys: string[]) => keys.map((k) => attributes[k]).find((v) => v !== undefined && v !== "");
  const short: Record<string, string | undefined> = {
    node: first("bifrost.node.id", "service.instance.id", "host.name") ?? uid,
    site: first("bifrost.site"),
    region: first("bifrost.region", "cloud.region"),
    arch: first("host.arch"),
    os: first("os.type"),
    version: first("service.version"),
  };
  for (const [key, value] of Object.entries(short)) if (value !== undefined) attributes[key] = value;
  return attributes;
}

function componentState(health: ComponentHealth): ComponentState {
  return { healthy: health.healthy, status: health.status ?? "", last_error: health.lastError ?? "" };
}

function agentHealth(health: ComponentHealth, nowMs: number): AgentHealth {
  const values: Record<string, number> = {};
  for (const [key, value] of Object.entries(health.attributes ?? {}))
    if (typeof value === "number") values[key] = value;
  return {
    ...componentState(health),
    start_ms: Number((health.startTimeUnixNano ?? 0n) / 1_000_000n),
    components: Object.fromEntries(Object.entries(health.components ?? {}).map(([k, c]) => [k, componentState(c)])),
    values,
    reported_ms: nowMs,
  };
}

/** The effective configuration's hash and (small enough) text: one file as it is, several each under its name. */
export function effectiveConfig(map: AgentConfigMap): { hash: string; text: string } {
  const names = Object.keys(map).sort();
  if (names.length === 0) return { hash: "", text: "" };
  const parts =
    names.length === 1
      ? [Buffer.from(map[names[0]!]!.body)]
      : names.flatMap((n) => [Buffer.from(`# ${n}\n`), Buffer.from(map[n]!.body), Buffer.from("\n")]);
  const bytes = Buffer.concat(parts);
  return { hash: sha256Hex(bytes), text: bytes.length <= MAX_EFFECTIVE_TEXT ? bytes.toString("utf8") : "" };
}

/** Takes what a status report carries into the agent's record; returns whether anything but liveness changed. */
export function applyReport(agent: AgentRecord, message: AgentToServer, nowMs: number): boolean {
  const before = JSON.stringify([
    agent.labels,
    agent.capabilities,
    agent.effective_hash,
    agent.remote_hash,
    agent.remote_status,
    agent.health?.healthy,
    agent.disconnected,
  ]);
  agent.last_seen_ms = nowMs;
  agent.capabilities = message.capabilities;
  agent.disconnected = message.agentDisconnect === true;
  const description = message.agentDescription;
  if (description) {
    agent.labels = agentLabels(description.identifying, description.nonIdentifying, agent.uid);
    agent.node = agent.labels["node"]!;
    agent.agent_type = String(description.identifying["service.name"] ?? "");
    agent.version = String(description.identifying["service.version"] ?? "");
  }
  let healthChanged = false;
  if (message.health) {
    const health = agentHealth(message.health, nowMs);
    if (
      agent.health !== null &&
      health.start_ms !== 0 &&
      agent.health.start_ms !== 0 &&
      health.start_ms !== agent.health.start_ms
    )
      agent.restarts++;
    healthChanged =
      JSON.stringify(health.values) !== JSON.stringify(agent.health?.values) || health.status !== agent.health?.status;
    agent.health = health;
  }
  if (message.effectiveConfig) {
    const effective = effectiveConfig(message.effectiveConfig);
    agent.effective_hash = effective.hash;
    agent.effective_config = effective.text;
  }
  const status = message.remoteConfigStatus;
  if (status) {
    agent.remote_hash = Buffer.from(status.lastRemoteConfigHash).toString("hex");
    agent.remote_status = REMOTE_STATUS[status.status] ?? "unset";
    agent.remote_error = status.errorMessage;
  }
  const after = JSON.stringify([
    agent.labels,
    agent.capabilities,
    agent.effective_hash,
    agent.remote_hash,
    agent.remote_status,
    agent.health?.healthy,
    agent.disconnected,
  ]);
  return before !== after || healthChanged;
}

export interface InventoryOptions {
  store: FleetRecords;
  registry: Registry;
  log: Logger;
  staleAfterMs: number;
  forgetAfterMs: number;
  lastSeenPersistMs: number;
  now?: () => number;
}

export class Inventory {
  readonly agents = new Map<string, AgentRecord>();
  /** Records changed since they were last written. */
  private readonly dirty = new Set<string>();
  /** When each record was last written. */
  private readonly written = new Map<string, number>();
  private readonly forgotten = new Set<string>();
  private flushing: Promise<void> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly options: InventoryOptions) {
    this.now = options.now ?? Date.now;
    const counts = () => {
      const byState = Object.fromEntries(AGENT_STATES.map((s) => [s, 0]));
      for (const agent of this.agents.values()) byState[this.state(agent)]!++;
      return byState;
    };
    new Gauge({
      name: "bifrost_fleet_agents",
      help: "Agents in the fleet's inventory by state: healthy, unhealthy (failed health or config apply), disconnected (said goodbye), stale (not heard from for fleet.stale_after_ms).",
      labelNames: ["state"],
      registers: [options.registry],
      collect() {
        for (const [state, count] of Object.entries(counts())) this.set({ state }, count);
      },
    });
  }

  state(agent: AgentRecord): ReturnType<typeof agentState> {
    return agentState(agent, this.now(), this.options.staleAfterMs);
  }

  async load(): Promise<void> {
    for (const record of await this.options.store.fleetRecords("agent")) {
      const agent = JSON.parse(record.body) as AgentRecord;
      this.agents.set(agent.uid, agent);
      this.written.set(agent.uid, record.updatedMs);
    }
  }

  get(uid: string): AgentRecord | undefined {
    return this.agents.get(uid);
  }

  /** The agent's record, created on first contact. */
  upsert(uid: string): AgentRecord {
    let agent = this.agents.get(uid);
    if (agent === undefined) {
      agent = newAgent(uid, this.now());
      this.agents.set(uid, agent);
      this.forgotten.delete(uid);
      this.dirty.add(uid);
    }
    return agent;
  }

  /** Marks a record for the next write: `changed` now, or only liveness (written when it is due). */
  touched(uid: string, changed: boolean): void {
    if (changed) this.dirty.add(uid);
  }

  forget(uid: string): boolean {
    if (!this.agents.delete(uid)) return false;
    this.dirty.delete(uid);
    this.forgotten.add(uid);
    return true;
  }

  /** Writes what changed; one write at a time, in order, so that a record's versions reach the store in order. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    const now = this.now();
    const { forgetAfterMs, lastSeenPersistMs, staleAfterMs } = this.options;
    for (const agent of this.agents.values()) {
      if (forgetAfterMs > 0 && now - agent.last_seen_ms > staleAfterMs + forgetAfterMs) {
        this.forget(agent.uid);
        this.options.log.info({ uid: agent.uid, node: agent.node }, "forgot a long stale agent");
      } else if (agent.last_seen_ms - (this.written.get(agent.uid) ?? 0) >= lastSeenPersistMs)
        this.dirty.add(agent.uid);
    }
    const uids = [...this.dirty];
    const gone = [...this.forgotten];
    if (uids.length === 0 && gone.length === 0) return;
    this.dirty.clear();
    this.forgotten.clear();
    const records = [
      ...uids.flatMap((uid) => {
        const agent = this.agents.get(uid);
        return agent === undefined
          ? []
          : [{ kind: "agent" as const, id: uid, updatedMs: now, body: JSON.stringify(agent) }];
      }),
      ...gone.map((uid) => ({ kind: "agent" as const, id: uid, updatedMs: now, body: "" })),
    ];
    try {
      await this.options.store.putFleetRecords(records);
      for (const uid of uids) this.written.set(uid, now);
      for (const uid of gone) this.written.delete(uid);
    } catch (err) {
      for (const uid of uids) if (this.agents.has(uid)) this.dirty.add(uid);
      for (const uid of gone) if (!this.agents.has(uid)) this.forgotten.add(uid);
      this.options.log.warn(
        { err, records: records.length },
        "writing the fleet inventory failed; retrying at the next flush",
      );
    }
  }
}
