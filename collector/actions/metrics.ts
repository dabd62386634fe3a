import { Counter, Histogram, type Registry } from "prom-client";

export type ActionMetrics = ReturnType<typeof actionMetrics>;

export function actionMetrics(registry: Registry) {
  return {
    received: new Counter({
      name: "bifrost_collector_actions_received_total",
      help: "Action requests received.",
      registers: [registry],
    }),
    refused: new Counter({
      name: "bifrost_collector_actions_refused_total",
      help: "Action requests refused, by reason.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    executed: new Counter({
      name: "bifrost_collector_actions_executed_total",
      help: "Actions run, by action and outcome (succeeded, failed, timed_out).",
      labelNames: ["action", "status"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "bifrost_collector_action_duration_seconds",
      help: "How long actions ran, by action.",
      labelNames: ["action"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
  };
}
