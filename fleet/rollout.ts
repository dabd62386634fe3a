import { createHash } from "node:crypto";
import type { AgentRecord, RolloutRecord, WaveRecord } from "../proto/fleet.js";
import { AgentCapabilities } from "../proto/opamp.js";
import { evaluateGates, snapshot } from "./gates.js";
import { selectorMatches } from "./render.js";
import type { Revision } from "./source.js";

// A staged rollout of one source revision, as Argo Rollouts or Fleet stage theirs: waves by cumulative percentage
// of the targets (the agents whose configuration the revision changes) or by selector. A wave's members get the
// new configuration; once every member reports it applied, the wave soaks for its soak time while its health
// gates are evaluated at every tick; a failed gate halts the rollout and rolls every member back to what it ran
// before; a passed wave hands over to the next. Everything the rollout decides is in its record, which the fleet
// server persists after each step, so a restarted server goes on from where it was.

const MAX_EVENTS = 100;

/** What the rollout needs of the fleet server. */
export interface RolloutContext {
  nowMs: number;
  staleAfterMs: number;
  /** When this fleet server started: its own downtime does not count as agents' silence. */
  startedMs: number;
  agents: Map<string, AgentRecord>;
  /** Live agents (not stale) that accept remote configuration and are not members yet, whose configuration
   * under the rollout's revision differs from what the fleet gives them now. */
  eligible(rollout: RolloutRecord): string[];
  /** Why the rollout's configuration for `uid` cannot be offered; undefined when it can. */
  problem(rollout: RolloutRecord, uid: string): string | undefined;
  /** The hash an agent should report applied: what the fleet gives it now. */
  desiredHash(uid: string): string;
  /** The revision the fleet gives `uid` now. */
  revisionOf(uid: string): string;
  /** Gives `uid` the configuration of `revision` (and pushes it to connected agents). */
  assign(uid: string, revision: string): void;
}

export function newRollout(revision: Revision, nowMs: number): RolloutRecord {
  const spec = revision.rollout;
  return {
    id: `${revision.id.slice(0, 12)}-${nowMs.toString(36)}`,
    revision: revision.id,
    commit: revision.commit,
    status: "progressing",
    reason: "",
    created_ms: nowMs,
    updated_ms: nowMs,
    apply_timeout_ms: spec.applyTimeoutMs,
    gates: spec.gates,
    waves: spec.waves.map((wave): WaveRecord => ({
      spec: wave,
      status: "pending",
      members: [],
      started_ms: 0,
      soak_started_ms: 0,
      soak_ms: wave.soak_ms ?? spec.soakMs,
      ended_ms: 0,
      gates: [],
      snapshot: {},
    })),
    current_wave: 0,
    previous: {},
    events: [{ time_ms: nowMs, message: `rollout of revision ${revision.id.slice(0, 12)} created` }],
  };
}

function event(rollout: RolloutRecord, nowMs: number, message: string): void {
  rollout.events.push({ time_ms: nowMs, message });
  if (rollout.events.length > MAX_EVENTS) rollout.events.splice(0, rollout.events.length - MAX_EVENTS);
}

/** The order percentage waves take targets in: fixed by the revision, so `bifrost fleet plan` can show it. */
export function waveOrder(revisionId: string, uids: string[]): string[] {
  const key = (uid: string) => createHash("sha256").update(`${revisionId}\u0000${uid}`).digest("hex");
  return uids
    .map((uid) => [key(uid), uid] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, uid]) => uid);
}

function allMembers(rollout: RolloutRecord): string[] {
  return rollout.waves.flatMap((w) => w.members);
}

function startWave(rollout: RolloutRecord, wave: WaveRecord, ctx: RolloutContext): void {
  const eligible = waveOrder(rollout.revision, ctx.eligible(rollout));
  let members: string[];
  if (wave.spec.selector !== undefined) {
    const selector = wave.spec.selector;
    members = eligible.filter((uid) => selectorMatches(selector, ctx.agents.get(uid)?.labels ?? {}));
  } else {
    const done = allMembers(rollout).length;
    const want = Math.ceil(((wave.spec.percent ?? 100) * (done + eligible.length)) / 100);
    members = eligible.slice(0, Math.max(0, want - done));
  }
  const invalid = members.flatMap((uid) => {
    const problem = ctx.problem(rollout, uid);
    return problem === undefined ? [] : [`${ctx.agents.get(uid)?.node ?? uid}: ${problem}`];
  });
  if (invalid.length > 0) {
    rollout.status = "failed";
    rollout.reason = `the revision's configuration is invalid for ${invalid.length} node(s): ${invalid.slice(0, 3).join("; ")}`;
    event(rollout, ctx.nowMs, rollout.reason);
    return;
  }
  wave.members = members;
  wave.started_ms = ctx.nowMs;
  if (members.length === 0) {
    wave.status = "passed";
    wave.ended_ms = ctx.nowMs;
    event(rollout, ctx.nowMs, `wave ${rollout.current_wave + 1} has no targets; passed`);
    rollout.current_wave++;
    return;
  }
  for (const uid of members) {
    rollout.previous[uid] = ctx.revisionOf(uid);
    ctx.assign(uid, rollout.revision);
  }
  wave.status = "applying";
  event(rollout, ctx.nowMs, `wave ${rollout.current_wave + 1} started: ${members.length} node(s)`);
}

/** Every live agent the rollout has not updated. */
function baseline(rollout: RolloutRecord, ctx: RolloutContext): string[] {
  const members = new Set(allMembers(rollout));
  return [...ctx.agents.values()]
    .filter((a) => !members.has(a.uid) && ctx.nowMs - Math.max(a.last_seen_ms, ctx.startedMs) <= ctx.staleAfterMs)
    .map((a) => a.uid);
}

function applied(uid: string, ctx: RolloutContext): boolean {
  const agent = ctx.agents.get(uid);
  return agent !== undefined && agent.remote_status === "applied" && agent.remote_hash === ctx.desiredHash(uid);
}

/**
 * Whether the gates have seen the whole soak: every member that reports health has reported since the soak
 * ended, so that a slow or busy node cannot pass on counters from before its trouble showed.
 */
function covered(wave: WaveRecord, ctx: RolloutContext): boolean {
  const end = wave.soak_started_ms + wave.soak_ms;
  return wave.members.every((uid) => {
    const agent = ctx.agents.get(uid);
    if (agent === undefined || (agent.capabilities & AgentCapabilities.ReportsHealth) === 0) return true;
    return (agent.health?.reported_ms ?? 0) >= end;
  });
}

/** Rolls every member back to what it ran before the rollout. */
export function rollBack(rollout: RolloutRecord, ctx: RolloutContext, reason: string): void {
  rollout.status = "rolling_back";
  rollout.reason = reason;
  const wave = rollout.waves[rollout.current_wave];
  if (wave !== undefined && wave.status !== "passed") {
    wave.status = "failed";
    wave.ended_ms = ctx.nowMs;
  }
  for (const uid of allMembers(rollout)) ctx.assign(uid, rollout.previous[uid] ?? "");
  event(rollout, ctx.nowMs, `halted and rolling back: ${reason}`);
}

/** One step; returns whether the record changed (and so needs writing). */
export function advance(rollout: RolloutRecord, ctx: RolloutContext): boolean {
  const before = JSON.stringify([rollout.status, rollout.current_wave, rollout.waves.map((w) => [w.status, w.gates])]);
  if (rollout.status === "rolling_back") {
    const live = allMembers(rollout).filter((uid) => {
      const agent = ctx.agents.get(uid);
      return agent !== undefined && ctx.nowMs - Math.max(agent.last_seen_ms, ctx.startedMs) <= ctx.staleAfterMs;
    });
    if (live.every((uid) => applied(uid, ctx))) {
      rollout.status = "rolled_back";
      event(rollout, ctx.nowMs, `rolled back: ${live.length} node(s) run their previous configuration again`);
    }
  }
  for (let guard = 0; rollout.status === "progressing" && guard < rollout.waves.length + 1; guard++) {
    const wave = rollout.waves[rollout.current_wave];
    if (wave === undefined) {
      rollout.status = "completed";
      event(rollout, ctx.nowMs, "completed: every wave passed");
      break;
    }
    if (wave.status === "pending") {
      startWave(rollout, wave, ctx);
      // A wave without targets passes at once, and the next one starts in the same step.
      if ((wave.status as WaveRecord["status"]) === "passed") continue;
      break;
    }
    const gates = evaluateGates(wave, rollout.gates, {
      agents: ctx.agents,
      desiredHash: (uid) => ctx.desiredHash(uid),
      baseline: baseline(rollout, ctx),
      nowMs: ctx.nowMs,
      staleAfterMs: ctx.staleAfterMs,
      startedMs: ctx.startedMs,
    });
    wave.gates = gates;
    const failed = gates.filter((g) => !g.ok);
    if (failed.length > 0) {
      rollBack(
        rollout,
        ctx,
        `wave ${rollout.current_wave + 1}: ${failed.map((g) => `${g.gate} (${g.detail})`).join("; ")}`,
      );
      break;
    }
    if (wave.status === "applying") {
      if (wave.members.every((uid) => applied(uid, ctx))) {
        wave.status = "soaking";
        wave.soak_started_ms = ctx.nowMs;
        wave.snapshot = snapshot(ctx.agents.values());
        event(
          rollout,
          ctx.nowMs,
          `wave ${rollout.current_wave + 1} applied by every node; soaking for ${wave.soak_ms} ms`,
        );
      } else if (ctx.nowMs - wave.started_ms > rollout.apply_timeout_ms) {
        const late = wave.members.filter((uid) => !applied(uid, ctx)).map((uid) => ctx.agents.get(uid)?.node ?? uid);
        rollBack(
          rollout,
          ctx,
          `wave ${rollout.current_wave + 1}: ${late.length} node(s) did not apply within ${rollout.apply_timeout_ms} ms: ${late.slice(0, 5).join(", ")}`,
        );
      }
      break;
    }
    if (wave.status === "soaking" && ctx.nowMs - wave.soak_started_ms >= wave.soak_ms && covered(wave, ctx)) {
      wave.status = "passed";
      wave.ended_ms = ctx.nowMs;
      event(rollout, ctx.nowMs, `wave ${rollout.current_wave + 1} passed its gates`);
      rollout.current_wave++;
      continue;
    }
    break;
  }
  const changed =
    before !== JSON.stringify([rollout.status, rollout.current_wave, rollout.waves.map((w) => [w.status, w.gates])]);
  if (changed) rollout.updated_ms = ctx.nowMs;
  return changed;
}
