import { Counter, Gauge, type Registry } from "prom-client";
import type { RolloutRecord } from "../proto/fleet.js";

const ROLLOUT_STATUSES = ["progressing", "completed", "rolling_back", "rolled_back", "superseded", "failed"];

export function fleetMetrics(
  registry: Registry,
  rollouts: () => RolloutRecord[],
  connections: () => Map<string, number>,
) {
  return {
    messages: new Counter({
      name: "bifrost_fleet_messages_total",
      help: "OpAMP messages received from agents, by transport (websocket, http) and result (ok, bad_request).",
      labelNames: ["transport", "result"],
      registers: [registry],
    }),
    configsSent: new Counter({
      name: "bifrost_fleet_remote_configs_sent_total",
      help: "Remote configurations sent to agents (in answers and pushed over WebSocket).",
      registers: [registry],
    }),
    rollbacks: new Counter({
      name: "bifrost_fleet_rollbacks_total",
      help: "Rollouts halted by a failed health gate (or by an operator) and rolled back.",
      registers: [registry],
    }),
    rollouts: new Gauge({
      name: "bifrost_fleet_rollouts",
      help: "Rollouts the fleet server remembers, by status; progressing is 0 or 1.",
      labelNames: ["status"],
      registers: [registry],
      collect() {
        const counts = Object.fromEntries(ROLLOUT_STATUSES.map((s) => [s, 0]));
        for (const rollout of rollouts()) counts[rollout.status] = (counts[rollout.status] ?? 0) + 1;
        for (const [status, count] of Object.entries(counts)) this.set({ status }, count);
      },
    }),
    connections: new Gauge({
      name: "bifrost_fleet_connections",
      help: "Open OpAMP WebSocket connections.",
      labelNames: ["transport"],
      registers: [registry],
      collect() {
        for (const [transport, count] of connections()) this.set({ transport }, count);
      },
    }),
  };
}

export type FleetMetrics = ReturnType<typeof fleetMetrics>;
