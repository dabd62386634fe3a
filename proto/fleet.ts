// The fleet server's records as it keeps them in the store (storage/fleet-records.ts) and serves them from its
// API: the inventory of agents and the rollouts. The fleet server writes them; the query service's fleet page and
// `bifrost fleet` read them. Field names are the JSON the API answers with.

/** Health counters a Bifrost collector reports (ComponentHealth attributes), cumulative since its process start. */
export const HEALTH_COUNTERS = [
  "entries_accepted",
  "requests_rejected",
  "batches_dropped",
  "ship_retries",
  "batches_shipped",
] as const;
export type HealthCounter = (typeof HEALTH_COUNTERS)[number];

export interface ComponentState {
  healthy: boolean;
  status: string;
  last_error: string;
}

export interface AgentHealth extends ComponentState {
  /** The agent process's start, Unix milliseconds; a change is a restart. */
  start_ms: number;
  components: Record<string, ComponentState>;
  /** Counters and gauges: HEALTH_COUNTERS, buffer_bytes, buffer_fill (0 to 1), shipper_lag_batches, ... */
  values: Record<string, number>;
  /** When the agent reported it, Unix milliseconds. */
  reported_ms: number;
}

export type RemoteStatus = "unset" | "applied" | "applying" | "failed";

export interface AgentRecord {
  /** OpAMP instance uid, canonical UUID text. */
  uid: string;
  /** The node id: bifrost.node.id, else service.instance.id, else host.name, else the uid. */
  node: string;
  /** service.name: bifrost-collector for Bifrost's collector. */
  agent_type: string;
  version: string;
  /** What the fleet's selectors match: node, site, region, arch, os, version and every description attribute. */
  labels: Record<string, string>;
  capabilities: number;
  /** Hash (hex) and size of the effective configuration the agent reported; its text when small enough. */
  effective_hash: string;
  effective_config: string;
  /** The last remote configuration the agent reported on, and what became of it. */
  remote_hash: string;
  remote_status: RemoteStatus;
  remote_error: string;
  /** The configuration the fleet wants this agent to run ("" when it offers none), and its revision. */
  desired_hash: string;
  desired_revision: string;
  health: AgentHealth | null;
  /** Process restarts seen by the fleet server. */
  restarts: number;
  first_seen_ms: number;
  last_seen_ms: number;
  /** "websocket", "http", or "" once the agent said goodbye or its connection closed. */
  connection: string;
  disconnected: boolean;
}

export type AgentState = "healthy" | "unhealthy" | "disconnected" | "stale";
export const AGENT_STATES: AgentState[] = ["healthy", "unhealthy", "disconnected", "stale"];

/** stale: not heard from for staleAfterMs; disconnected: said goodbye; unhealthy: its health or last apply failed. */
export function agentState(agent: AgentRecord, nowMs: number, staleAfterMs: number): AgentState {
  if (nowMs - agent.last_seen_ms > staleAfterMs) return "stale";
  if (agent.disconnected) return "disconnected";
  if (agent.remote_status === "failed" || agent.health?.healthy === false) return "unhealthy";
  return "healthy";
}

export type Selector = Record<string, string | string[]>;

export interface WaveSpec {
  /** Cumulative share of the rollout's targets updated once this wave is done. */
  percent?: number;
  /** Or: every target matching this selector. */
  selector?: Selector;
  soak_ms?: number;
}

/** Health gate thresholds: each is how much worse the wave may be than the nodes not yet updated. */
export interface GateThresholds {
  /** Wave nodes that reported a failed apply. */
  failed_applies: number;
  /** Wave nodes not heard from for stale_after_ms. */
  silent_nodes: number;
  /** Per node over the soak, the wave's average minus the baseline's. */
  requests_rejected: number;
  batches_dropped: number;
  ship_retries: number;
  restarts: number;
}

export interface GateResult {
  gate: keyof GateThresholds;
  /** The wave's value (a count, or a per-node average). */
  value: number;
  /** The baseline's per-node average, for the per-node gates. */
  baseline: number;
  threshold: number;
  ok: boolean;
  detail: string;
}

export type WaveStatus = "pending" | "applying" | "soaking" | "passed" | "failed";

export interface WaveRecord {
  spec: WaveSpec;
  status: WaveStatus;
  members: string[];
  started_ms: number;
  soak_started_ms: number;
  soak_ms: number;
  ended_ms: number;
  gates: GateResult[];
  /** Health counters of every agent when the soak began (uid -> counter -> value), the gates' starting point. */
  snapshot: Record<string, Record<string, number>>;
}

export type RolloutStatus = "progressing" | "completed" | "rolling_back" | "rolled_back" | "superseded" | "failed";

export interface RolloutRecord {
  id: string;
  revision: string;
  commit: string;
  status: RolloutStatus;
  reason: string;
  created_ms: number;
  updated_ms: number;
  apply_timeout_ms: number;
  gates: GateThresholds;
  waves: WaveRecord[];
  current_wave: number;
  /** Each member's revision before this rollout (uid -> revision id, "" for none), what a rollback restores. */
  previous: Record<string, string>;
  events: { time_ms: number; message: string }[];
}

/** The fleet server's own progress: the revision every agent not in a rollout runs, and the exceptions. */
export interface FleetStateRecord {
  stable_revision: string;
  /** The last source revision a rollout was started for (a restart does not start it again). */
  source_revision: string;
  /** uid -> revision, for agents that run another revision than the stable one. */
  assignments: Record<string, string>;
}

export interface RevisionRecord {
  id: string;
  commit: string;
  created_ms: number;
  /** The source directory's files, relative path -> text. */
  files: Record<string, string>;
}

/** What the fleet API and page filter agents by; absent fields do not filter. */
export interface AgentFilter {
  node?: string;
  site?: string;
  region?: string;
  version?: string;
  /** A prefix of the remote, desired or effective configuration hash. */
  config_hash?: string;
  state?: AgentState;
  /** Heard from within this many milliseconds. */
  seen_within_ms?: number;
}

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The filter of query parameters (node, site, region, version, config_hash, state, last_seen as 30s/5m/1h/2d). */
export function agentFilter(param: (name: string) => string | undefined): AgentFilter {
  const filter: AgentFilter = {};
  for (const key of ["node", "site", "region", "version", "config_hash"] as const) {
    const value = param(key)?.trim();
    if (value) filter[key] = value;
  }
  const state = param("state")?.trim();
  if (state) {
    if (!AGENT_STATES.includes(state as AgentState))
      throw new Error(`state must be one of ${AGENT_STATES.join(", ")}, not ${JSON.stringify(state)}`);
    filter.state = state as AgentState;
  }
  const seen = param("last_seen")?.trim();
  if (seen) {
    const match = DURATION.exec(seen);
    if (match === null)
      throw new Error(`last_seen must be a duration such as 30s, 5m, 1h or 2d, not ${JSON.stringify(seen)}`);
    filter.seen_within_ms = Number(match[1]) * DURATION_MS[match[2]!]!;
  }
  return filter;
}

export function agentMatches(agent: AgentRecord, filter: AgentFilter, nowMs: number, staleAfterMs: number): boolean {
  const label = (name: string) => agent.labels[name] ?? "";
  if (filter.node !== undefined && agent.node !== filter.node) return false;
  if (filter.site !== undefined && label("site") !== filter.site) return false;
  if (filter.region !== undefined && label("region") !== filter.region) return false;
  if (filter.version !== undefined && agent.version !== filter.version) return false;
  if (filter.config_hash !== undefined) {
    const prefix = filter.config_hash.toLowerCase();
    if (![agent.remote_hash, agent.desired_hash, agent.effective_hash].some((h) => h !== "" && h.startsWith(prefix)))
      return false;
  }
  if (filter.state !== undefined && agentState(agent, nowMs, staleAfterMs) !== filter.state) return false;
  if (filter.seen_within_ms !== undefined && nowMs - agent.last_seen_ms > filter.seen_within_ms) return false;
  return true;
}
