import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "../common/config.js";
import { loadConfig } from "../config.js";
import type { AgentRecord, GateResult, RolloutRecord } from "../proto/fleet.js";
import { EMPTY_HASH, OfferChecker } from "./offer.js";
import { Renderer, selectorMatches } from "./render.js";
import { waveOrder } from "./rollout.js";
import { gitCommit, parseRevision, readSourceFiles, SourceError } from "./source.js";

// `bifrost fleet status` and `bifrost fleet plan`: the fleet server's view over its API, and a dry run of a source
// directory against the inventory (which node would get which configuration, in which wave), as `terraform plan`.

const USAGE = `Usage: bifrost fleet status [--server URL] [--token TOKEN] [--json] [--config file.yaml]
       bifrost fleet plan [DIR] [--server URL] [--token TOKEN] [--json] [--config file.yaml]

  status   agents by state, the source revision in force, and each rollout's waves and gate results
  plan     reads DIR (default fleet.source_dir), checks every file, and shows per agent the configuration hash
           it runs now and the one the directory gives it, and the wave that would update it; nothing is applied

  --server URL   the fleet server (default: http://<fleet.listen>)
  --token TOKEN  bearer token, for a fleet server with auth enabled
  --json         print the answer as JSON
`;

type Print = (line?: string) => void;

const short = (hash: string) => (hash === "" ? "(none)" : hash === EMPTY_HASH ? "(local)" : hash.slice(0, 12));

function ago(ms: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

async function api<T>(server: string, path: string, token: string | undefined): Promise<T> {
  const response = await fetch(`${server}/fleet/api/v1/${path}`, {
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(30_000),
  });
  if (!response.ok)
    throw new Error(`${server}/fleet/api/v1/${path} answered ${response.status}: ${(await response.text()).trim()}`);
  return (await response.json()) as T;
}

function gateLine(g: GateResult): string {
  const value = ["failed_applies", "silent_nodes"].includes(g.gate)
    ? `${g.value}`
    : `wave ${g.value}, baseline ${g.baseline}`;
  return `${g.ok ? "ok  " : "FAIL"} ${g.gate.padEnd(17)} ${value} (at most ${g.threshold}${["failed_applies", "silent_nodes"].includes(g.gate) ? "" : " more"})`;
}

export function printRollout(rollout: RolloutRecord, nowMs: number, print: Print): void {
  print(
    `Rollout ${rollout.id}  ${rollout.status}  revision ${rollout.revision.slice(0, 12)}${rollout.commit ? `  commit ${rollout.commit.slice(0, 12)}` : ""}  created ${ago(rollout.created_ms, nowMs)}`,
  );
  rollout.waves.forEach((wave, i) => {
    const what =
      wave.spec.selector !== undefined ? `selector ${JSON.stringify(wave.spec.selector)}` : `${wave.spec.percent}%`;
    const soak =
      wave.status === "soaking"
        ? `soaked ${Math.round((nowMs - wave.soak_started_ms) / 1000)}s of ${wave.soak_ms / 1000}s`
        : `soak ${wave.soak_ms / 1000}s`;
    print(
      `  wave ${i + 1}  ${what.padEnd(24)} ${wave.status.padEnd(9)} ${String(wave.members.length).padStart(5)} node(s)  ${soak}`,
    );
    if (wave.status !== "pending") for (const gate of wave.gates) print(`          ${gateLine(gate)}`);
  });
  if (rollout.reason) print(`  why: ${rollout.reason}`);
}

async function status(server: string, token: string | undefined, json: boolean, print: Print): Promise<number> {
  const body = await api<{
    agents: Record<string, number>;
    source: { dir: string; revision: string; commit: string; problems: string[] };
    stable_revision: string;
    rollouts: RolloutRecord[];
  }>(server, "status", token);
  if (json) {
    print(JSON.stringify(body, null, 2));
    return 0;
  }
  const now = Date.now();
  const { agents, source } = body;
  print(`Fleet server  ${server}`);
  print(
    `Agents        ${agents["total"]} total: ${["healthy", "unhealthy", "disconnected", "stale"].map((s) => `${agents[s] ?? 0} ${s}`).join(", ")}`,
  );
  print(
    `Source        ${source.dir || "(none)"}  revision ${short(source.revision)}${source.commit ? `  commit ${source.commit.slice(0, 12)}` : ""}  ${source.problems.length === 0 ? "ok" : `${source.problems.length} problem(s), the last good revision stays in force:`}`,
  );
  for (const problem of source.problems) print(`                ${problem}`);
  print(`Stable        revision ${short(body.stable_revision)}`);
  for (const rollout of body.rollouts) {
    print();
    printRollout(rollout, now, print);
  }
  return 0;
}

async function plan(
  dir: string,
  server: string,
  token: string | undefined,
  json: boolean,
  print: Print,
): Promise<number> {
  let revision;
  try {
    revision = parseRevision(readSourceFiles(dir), gitCommit(dir));
  } catch (err) {
    if (!(err instanceof SourceError)) throw err;
    print(`${dir} has ${err.problems.length} problem(s); nothing would be applied:`);
    for (const problem of err.problems) print(`  ${problem}`);
    return 2;
  }
  const { agents } = await api<{ agents: (AgentRecord & { state: string })[] }>(server, "agents", token);
  const renderer = new Renderer();
  const checker = new OfferChecker();
  const rows = agents.map((agent) => {
    const accepts = (agent.capabilities & 0x2) !== 0 && agent.agent_type !== "";
    const rendered = accepts
      ? renderer.render(revision, { agentType: agent.agent_type, labels: agent.labels })
      : undefined;
    const problem = rendered && checker.problem(rendered);
    const next = accepts ? (rendered?.hash ?? EMPTY_HASH) : "";
    const action = !accepts
      ? "skip"
      : problem !== undefined
        ? "invalid"
        : next === agent.desired_hash
          ? "unchanged"
          : "change";
    return { agent, next, action, problem, fragments: rendered?.fragments ?? [] };
  });
  // The waves as a rollout would take them now: live targets in the revision's fixed order.
  const targets = waveOrder(
    revision.id,
    rows.filter((r) => r.action === "change" && r.agent.state !== "stale").map((r) => r.agent.uid),
  );
  const wave = new Map<string, number>();
  let done = 0;
  revision.rollout.waves.forEach((spec, i) => {
    const left = targets.filter((uid) => !wave.has(uid));
    const members = spec.selector
      ? left.filter((uid) => selectorMatches(spec.selector!, agents.find((a) => a.uid === uid)!.labels))
      : left.slice(0, Math.max(0, Math.ceil(((spec.percent ?? 100) * targets.length) / 100) - done));
    for (const uid of members) wave.set(uid, i + 1);
    done += members.length;
  });
  const summary = {
    dir,
    revision: revision.id,
    commit: revision.commit,
    fragments: revision.fragments.map((f) => ({
      id: f.id,
      selector: f.selector,
      priority: f.priority,
      agent_type: f.agentType,
    })),
    waves: revision.rollout.waves,
    agents: rows.map((r) => ({
      uid: r.agent.uid,
      node: r.agent.node,
      action: r.action,
      current_hash: r.agent.desired_hash,
      planned_hash: r.next,
      wave: wave.get(r.agent.uid) ?? null,
      fragments: r.fragments,
      ...(r.problem !== undefined ? { problem: r.problem } : {}),
    })),
  };
  if (json) print(JSON.stringify(summary, null, 2));
  else {
    print(
      `Plan for ${dir}: revision ${revision.id.slice(0, 12)}${revision.commit ? `, commit ${revision.commit.slice(0, 12)}` : ""}, ${revision.fragments.length} fragment(s), ${revision.rollout.waves.length} wave(s)`,
    );
    const sign = { change: "~", unchanged: "=", invalid: "!", skip: " " } as const;
    for (const r of summary.agents) {
      const hashes =
        r.action === "change" ? `${short(r.current_hash)} -> ${short(r.planned_hash)}` : short(r.current_hash);
      const detail =
        r.action === "invalid"
          ? `invalid: ${r.problem}`
          : r.action === "skip"
            ? "does not accept remote configuration"
            : `${r.wave === null ? "" : `wave ${r.wave}  `}fragments: ${["base", ...r.fragments].join(", ")}`;
      print(`  ${sign[r.action as keyof typeof sign]} ${r.node.padEnd(24)} ${hashes.padEnd(30)} ${detail}`);
    }
    const count = (action: string) => summary.agents.filter((a) => a.action === action).length;
    print(
      `Plan: ${count("change")} to change, ${count("unchanged")} unchanged, ${count("invalid")} invalid. Nothing was applied: commit the directory to roll it out.`,
    );
  }
  return summary.agents.some((a) => a.action === "invalid") ? 2 : 0;
}

/** Runs `bifrost fleet <command>`; returns the exit status. */
export async function fleetCommand(
  argv: string[],
  command: "plan" | "status",
  print: Print = (l = "") => process.stdout.write(`${l}\n`),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: command === "plan",
      options: {
        server: { type: "string" },
        token: { type: "string" },
        json: { type: "boolean", default: false },
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`bifrost fleet: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    print(USAGE);
    return 0;
  }
  let config;
  try {
    config = loadConfig({ file: values.config });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`bifrost fleet: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const server = (values.server ?? `${config.fleet.tls.enabled ? "https" : "http"}://${config.fleet.listen}`).replace(
    /\/$/,
    "",
  );
  try {
    if (command === "status") return await status(server, values.token, values.json, print);
    const dir = positionals[0] ?? config.fleet.source_dir;
    if (dir === "") {
      process.stderr.write("bifrost fleet plan: name a directory, or set fleet.source_dir\n");
      return 2;
    }
    return await plan(resolve(dir), server, values.token, values.json, print);
  } catch (err) {
    process.stderr.write(`bifrost fleet ${command}: ${(err as Error).message}\n`);
    return 1;
  }
}
