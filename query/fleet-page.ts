import type { Hono } from "hono";
import {
  type AgentFilter,
  agentFilter,
  agentMatches,
  type AgentRecord,
  AGENT_STATES,
  agentState,
  type RolloutRecord,
} from "../proto/fleet.js";
import type { Store } from "../storage/store.js";

// GET /fleet: the fleet page of the query service, server-rendered HTML from the fleet server's records in the
// store (as persisted, so a few seconds behind the fleet server itself): agents with their state, version,
// configuration, disk-buffer fill, shipping lag and counters, filtered by site, region, version, configuration
// hash, state and last seen; and each recent rollout's waves with their gate results. No script: a form of
// filters and a refresh every 15 seconds.

export interface FleetPageOptions {
  store: Store;
  staleAfterMs: number;
  now?: () => number;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const short = (hash: string) => (hash === "" ? "—" : hash.slice(0, 12));

function ago(ms: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}.sub{color:#667}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 2px #0001}
th,td{padding:6px 10px;border-bottom:1px solid #e4e6ea;text-align:left;white-space:nowrap}
th{background:#eef0f3;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.state{padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.healthy,.passed,.completed,.ok{background:#dcf5e3;color:#176b34}.unhealthy,.failed,.rolled_back,.FAIL{background:#fde2e1;color:#a0251c}
.stale,.rolling_back{background:#fff1cc;color:#7a5300}.disconnected,.pending,.superseded{background:#e9ebef;color:#555}
.progressing,.applying,.soaking{background:#dde9ff;color:#1d4fa8}
form{display:flex;gap:8px;flex-wrap:wrap;align-items:end;margin:12px 0}label{display:flex;flex-direction:column;font-size:12px;color:#556}
input,select{font:inherit;padding:4px 6px}.bar{display:inline-block;height:8px;background:#3b82f6;border-radius:2px;vertical-align:middle}
.barbox{display:inline-block;width:60px;height:8px;background:#e4e6ea;border-radius:2px;margin-right:6px}code{font-size:12px}
.why{color:#a0251c;margin:6px 0}.rollout{background:#fff;padding:12px;margin:12px 0;box-shadow:0 1px 2px #0001}`;

function state(name: string): string {
  return `<span class="state ${escape(name)}">${escape(name.replace("_", " "))}</span>`;
}

function filterForm(filter: AgentFilter, agents: AgentRecord[], raw: Record<string, string>): string {
  const values = (pick: (a: AgentRecord) => string) => [...new Set(agents.map(pick).filter((v) => v !== ""))].sort();
  const select = (name: string, label: string, options: string[]) =>
    `<label>${label}<select name="${name}"><option value="">any</option>${options
      .map((o) => `<option${raw[name] === o ? " selected" : ""}>${escape(o)}</option>`)
      .join("")}</select></label>`;
  return `<form method="get" action="/fleet">
${select(
  "site",
  "site",
  values((a) => a.labels["site"] ?? ""),
)}
${select(
  "region",
  "region",
  values((a) => a.labels["region"] ?? ""),
)}
${select(
  "version",
  "version",
  values((a) => a.version),
)}
<label>config hash<input name="config_hash" size="14" value="${escape(filter.config_hash ?? "")}" placeholder="prefix"></label>
${select("state", "health", AGENT_STATES)}
<label>last seen within<input name="last_seen" size="6" value="${escape(raw["last_seen"] ?? "")}" placeholder="5m"></label>
<button type="submit">Filter</button> <a href="/fleet">clear</a></form>`;
}

function agentRows(agents: AgentRecord[], nowMs: number, staleAfterMs: number): string {
  if (agents.length === 0) return `<tr><td colspan="12">No agent matches.</td></tr>`;
  return agents
    .map((a) => {
      const values = a.health?.values ?? {};
      const fill = values["buffer_fill"] ?? 0;
      const config =
        a.remote_status === "unset"
          ? short(a.desired_hash)
          : `${short(a.remote_hash)} ${state(a.remote_status)}${a.remote_hash !== a.desired_hash && a.desired_hash !== "" ? ` → ${short(a.desired_hash)}` : ""}`;
      return `<tr title="${escape(a.remote_error)}"><td><b>${escape(a.node)}</b><br><code>${escape(a.uid)}</code></td>
<td>${state(agentState(a, nowMs, staleAfterMs))}</td><td>${escape(a.labels["site"] ?? "")}</td><td>${escape(a.labels["region"] ?? "")}</td>
<td>${escape(a.agent_type)} ${escape(a.version)}</td><td><code>${config}</code></td><td><code>${short(a.effective_hash)}</code></td>
<td><span class="barbox"><span class="bar" style="width:${Math.round(Math.min(1, fill) * 60)}px"></span></span>${(fill * 100).toFixed(1)}%</td>
<td class="num">${values["shipper_lag_batches"] ?? "—"}</td><td class="num">${values["requests_rejected"] ?? "—"}</td>
<td class="num">${values["batches_dropped"] ?? "—"}</td><td>${ago(a.last_seen_ms, nowMs)}</td></tr>`;
    })
    .join("\n");
}

function rolloutSection(r: RolloutRecord, nowMs: number): string {
  const waves = r.waves
    .map((w, i) => {
      const what =
        w.spec.selector !== undefined
          ? `selector <code>${escape(JSON.stringify(w.spec.selector))}</code>`
          : `${w.spec.percent}%`;
      const gates = w.gates
        .map(
          (g) =>
            `<span class="state ${g.ok ? "ok" : "FAIL"}" title="${escape(g.detail)}">${escape(g.gate)} ${g.ok ? "ok" : "failed"}</span>`,
        )
        .join(" ");
      return `<tr><td>${i + 1}</td><td>${what}</td><td>${state(w.status)}</td><td class="num">${w.members.length}</td>
<td class="num">${w.soak_ms / 1000}s</td><td>${gates || "—"}</td></tr>`;
    })
    .join("\n");
  return `<div class="rollout"><b>Rollout ${escape(r.id)}</b> ${state(r.status)} <span class="sub">revision <code>${short(r.revision)}</code>${r.commit ? ` commit <code>${short(r.commit)}</code>` : ""}, created ${ago(r.created_ms, nowMs)}</span>
${r.reason ? `<div class="why">${escape(r.reason)}</div>` : ""}
<table><tr><th>wave</th><th>targets</th><th>status</th><th>nodes</th><th>soak</th><th>health gates</th></tr>${waves}</table></div>`;
}

export function fleetPageRoutes(app: Hono, options: FleetPageOptions): void {
  app.get("/fleet", async (c) => {
    const store = options.store;
    if (store.fleetRecords === undefined) return c.text("this store keeps no fleet records\n", 404);
    const raw = Object.fromEntries(Object.entries(c.req.queries()).map(([k, v]) => [k, v[0] ?? ""]));
    let filter: AgentFilter;
    try {
      filter = agentFilter((name) => raw[name]);
    } catch (err) {
      return c.text(`${(err as Error).message}\n`, 400);
    }
    const now = (options.now ?? Date.now)();
    const [agentRecords, rolloutRecords] = await Promise.all([
      store.fleetRecords("agent"),
      store.fleetRecords("rollout"),
    ]);
    const agents = agentRecords
      .map((r) => JSON.parse(r.body) as AgentRecord)
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    const shown = agents.filter((a) => agentMatches(a, filter, now, options.staleAfterMs));
    const rollouts = rolloutRecords
      .map((r) => JSON.parse(r.body) as RolloutRecord)
      .sort((a, b) => b.created_ms - a.created_ms)
      .slice(0, 5);
    const counts = AGENT_STATES.map(
      (s) => `${agents.filter((a) => agentState(a, now, options.staleAfterMs) === s).length} ${s}`,
    ).join(", ");
    const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="15">
<title>Bifrost fleet</title><style>${STYLE}</style></head><body>
<h1>Bifrost fleet</h1><div class="sub">${agents.length} agents: ${counts}</div>
${filterForm(filter, agents, raw)}
<table id="agents"><tr><th>node</th><th>health</th><th>site</th><th>region</th><th>version</th><th>config (remote → wanted)</th>
<th>effective</th><th>disk buffer</th><th>lag (batches)</th><th>rejected</th><th>dropped</th><th>last seen</th></tr>
${agentRows(shown, now, options.staleAfterMs)}</table>
<div class="sub">${shown.length} of ${agents.length} shown</div>
<h2>Rollouts</h2>${rollouts.length === 0 ? "<p>No rollout yet.</p>" : rollouts.map((r) => rolloutSection(r, now)).join("\n")}
</body></html>`;
    return c.html(html);
  });
}
