import type { Hono } from "hono";
import {
  type AgentRecord,
  agentFilter,
  agentMatches,
  AGENT_STATES,
  agentState,
  type RolloutRecord,
} from "../proto/fleet.js";
import type { Fleet } from "./fleet.js";
import type { SourceWatcher } from "./source-watcher.js";

// The fleet's HTTP API, JSON under /fleet/api/v1, what `bifrost fleet status` and `bifrost fleet plan` read:
//   GET    status                  agents by state, the source in force and its problems, recent rollouts
//   GET    agents?site=&region=&version=&config_hash=&state=&last_seen=    the inventory, filtered
//   GET    agents/:uid             one agent, with its effective and offered configuration
//   DELETE agents/:uid             forget an agent (a decommissioned node)
//   GET    rollouts, rollouts/:id  rollouts with their waves and gate results, newest first
//   POST   rollouts/:id/rollback   halt the rollout in force and roll its nodes back

export interface FleetApiOptions {
  fleet: () => Fleet | undefined;
  watcher: () => SourceWatcher | undefined;
  sourceDir: string;
  staleAfterMs: number;
}

/** A rollout as the API shows it: without the gates' per-agent starting points. */
export function rolloutView(rollout: RolloutRecord): RolloutRecord {
  return { ...rollout, waves: rollout.waves.map((w) => ({ ...w, snapshot: {} })) };
}

function agentView(agent: AgentRecord, nowMs: number, staleAfterMs: number) {
  const { effective_config: _text, ...rest } = agent;
  return { ...rest, state: agentState(agent, nowMs, staleAfterMs) };
}

export function fleetApiRoutes(app: Hono, options: FleetApiOptions): void {
  const base = "/fleet/api/v1";
  app.use(`${base}/*`, async (c, next) => {
    if (options.fleet() === undefined)
      return c.json({ status: "error", error: "the fleet's state is still loading from the store" }, 503, {
        "Retry-After": "5",
      });
    return next();
  });

  app.get(`${base}/status`, (c) => {
    const fleet = options.fleet()!;
    const watcher = options.watcher();
    const now = Date.now();
    const counts: Record<string, number> = Object.fromEntries(AGENT_STATES.map((s) => [s, 0]));
    for (const agent of fleet.inventory.agents.values()) counts[agentState(agent, now, options.staleAfterMs)]!++;
    const { stable, source } = fleet.status;
    return c.json({
      agents: { total: fleet.inventory.agents.size, ...counts },
      source: {
        dir: options.sourceDir,
        revision: watcher?.revision?.id ?? source,
        commit: watcher?.revision?.commit ?? fleet.revision(source)?.commit ?? "",
        problems: watcher?.loadProblems ?? [],
      },
      stable_revision: stable,
      rollouts: fleet.rollouts.slice(-10).reverse().map(rolloutView),
    });
  });

  app.get(`${base}/agents`, (c) => {
    const fleet = options.fleet()!;
    let filter;
    try {
      filter = agentFilter((name) => c.req.query(name));
    } catch (err) {
      return c.json({ status: "error", error: (err as Error).message }, 400);
    }
    const now = Date.now();
    const agents = [...fleet.inventory.agents.values()]
      .filter((a) => agentMatches(a, filter, now, options.staleAfterMs))
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.uid < b.uid ? -1 : 1))
      .map((a) => agentView(a, now, options.staleAfterMs));
    return c.json({ agents });
  });

  app.get(`${base}/agents/:uid`, (c) => {
    const fleet = options.fleet()!;
    const agent = fleet.inventory.get(c.req.param("uid"));
    if (agent === undefined) return c.json({ status: "error", error: "no such agent" }, 404);
    const offer = fleet.offer(agent);
    const offered = Object.entries(offer?.config ?? {}).find(([name]) => !name.endsWith(".sig"))?.[1];
    return c.json({
      ...agentView(agent, Date.now(), options.staleAfterMs),
      effective_config: agent.effective_config,
      offered_config: offered === undefined ? "" : Buffer.from(offered.body).toString("utf8"),
    });
  });

  app.delete(`${base}/agents/:uid`, (c) => {
    const fleet = options.fleet()!;
    return fleet.forget(c.req.param("uid"))
      ? c.body(null, 204)
      : c.json({ status: "error", error: "no such agent" }, 404);
  });

  app.get(`${base}/rollouts`, (c) =>
    c.json({ rollouts: options.fleet()!.rollouts.slice().reverse().map(rolloutView) }),
  );

  app.get(`${base}/rollouts/:id`, (c) => {
    const rollout = options.fleet()!.rollouts.find((r) => r.id === c.req.param("id"));
    return rollout === undefined
      ? c.json({ status: "error", error: "no such rollout" }, 404)
      : c.json(rolloutView(rollout));
  });

  app.post(`${base}/rollouts/:id/rollback`, async (c) => {
    const fleet = options.fleet()!;
    const active = fleet.status.active;
    if (active?.id !== c.req.param("id") || active.status !== "progressing")
      return c.json({ status: "error", error: "only the progressing rollout can be rolled back" }, 409);
    const rollout = await fleet.rollBackActive("rolled back by an operator through the fleet API");
    return c.json(rolloutView(rollout!));
  });
}
