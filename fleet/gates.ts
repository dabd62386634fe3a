import type { AgentRecord, GateResult, GateThresholds, WaveRecord } from "../proto/fleet.js";
import { HEALTH_COUNTERS } from "../proto/fleet.js";

// A wave's health gates. Two count wave nodes outright: those that reported a failed apply of the rollout's
// configuration, and those gone silent. The others compare the wave with the baseline, the nodes the rollout has
// not updated, over the same soak window: each node's increase of a counter since the soak began (a counter that
// went down restarted from zero), averaged per node, the wave's average minus the baseline's against the
// threshold. A fleet-wide problem (an aggregator down: retries everywhere) moves both averages and halts nothing;
// a bad configuration moves only the wave's.

/** The values a snapshot holds per agent: its health counters and the restarts the fleet server counted. */
export const SNAPSHOT_KEYS = [...HEALTH_COUNTERS, "restarts"] as const;

const COUNTER_GATES: [keyof GateThresholds, string][] = [
  ["requests_rejected", "requests_rejected"],
  ["batches_dropped", "batches_dropped"],
  ["ship_retries", "ship_retries"],
  ["restarts", "restarts"],
];

/** What the gates start from: every agent's counters now. */
export function snapshot(agents: Iterable<AgentRecord>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const agent of agents) out[agent.uid] = counters(agent);
  return out;
}

function counters(agent: AgentRecord): Record<string, number> {
  const values: Record<string, number> = { restarts: agent.restarts };
  for (const key of HEALTH_COUNTERS) values[key] = agent.health?.values[key] ?? 0;
  return values;
}

function increase(now: number, then: number): number {
  return now >= then ? now - then : now;
}

/** Per-node average increase of `key` over `uids` since `base`; agents without a starting point are left out. */
function average(
  uids: Iterable<string>,
  agents: Map<string, AgentRecord>,
  base: WaveRecord["snapshot"],
  key: string,
): number {
  let sum = 0;
  let n = 0;
  for (const uid of uids) {
    const agent = agents.get(uid);
    const start = base[uid];
    if (agent === undefined || start === undefined) continue;
    sum += increase(counters(agent)[key] ?? 0, start[key] ?? 0);
    n++;
  }
  return n === 0 ? 0 : sum / n;
}

export interface GateContext {
  agents: Map<string, AgentRecord>;
  /** The configuration hash each wave member should report as applied. */
  desiredHash(uid: string): string;
  /** Agents the rollout has not updated (the baseline), live ones only. */
  baseline: string[];
  nowMs: number;
  staleAfterMs: number;
  /** When the fleet server started: silence before it is the server's own downtime. */
  startedMs: number;
}

/**
 * The gates of `wave` now: during the apply phase only failed applies and silent nodes (counters have no
 * starting point yet), during the soak all of them.
 */
export function evaluateGates(wave: WaveRecord, thresholds: GateThresholds, ctx: GateContext): GateResult[] {
  const results: GateResult[] = [];
  const failed = wave.members.filter((uid) => {
    const agent = ctx.agents.get(uid);
    return agent?.remote_status === "failed" && agent.remote_hash === ctx.desiredHash(uid);
  });
  results.push({
    gate: "failed_applies",
    value: failed.length,
    baseline: 0,
    threshold: thresholds.failed_applies,
    ok: failed.length <= thresholds.failed_applies,
    detail:
      failed.length === 0
        ? "no failed apply"
        : failed
            .slice(0, 5)
            .map((uid) => `${ctx.agents.get(uid)?.node ?? uid}: ${ctx.agents.get(uid)?.remote_error || "failed"}`)
            .join("; "),
  });
  const silent = wave.members.filter((uid) => {
    const agent = ctx.agents.get(uid);
    return agent === undefined || ctx.nowMs - Math.max(agent.last_seen_ms, ctx.startedMs) > ctx.staleAfterMs;
  });
  results.push({
    gate: "silent_nodes",
    value: silent.length,
    baseline: 0,
    threshold: thresholds.silent_nodes,
    ok: silent.length <= thresholds.silent_nodes,
    detail:
      silent.length === 0
        ? "every node reports"
        : `not heard from for ${ctx.staleAfterMs} ms: ${silent
            .map((uid) => ctx.agents.get(uid)?.node ?? uid)
            .slice(0, 5)
            .join(", ")}`,
  });
  if (wave.status !== "soaking") return results;
  for (const [gate, key] of COUNTER_GATES) {
    const value = average(wave.members, ctx.agents, wave.snapshot, key);
    const baseline = average(ctx.baseline, ctx.agents, wave.snapshot, key);
    const threshold = thresholds[gate];
    results.push({
      gate,
      value: round(value),
      baseline: round(baseline),
      threshold,
      ok: value - baseline <= threshold,
      detail: `${key} per node since the soak began: wave ${round(value)}, baseline ${round(baseline)} (${ctx.baseline.length} nodes), at most ${threshold} more allowed`,
    });
  }
  return results;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
