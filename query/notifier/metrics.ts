import { Counter, Histogram, type Registry } from "prom-client";

/** Delivery metrics by receiver (Alertmanager targets appear as receiver `alertmanager:<url>`). */
export class NotifierMetrics {
  readonly sent: Counter<"receiver">;
  readonly failedAttempts: Counter<"receiver" | "reason">;
  readonly deadLettered: Counter<"receiver">;
  readonly latency: Histogram<"receiver">;

  constructor(registry: Registry) {
    this.sent = metric(
      registry,
      "bifrost_notifier_notifications_sent_total",
      () =>
        new Counter({
          name: "bifrost_notifier_notifications_sent_total",
          help: "Notifications the receiver accepted (2xx).",
          labelNames: ["receiver"],
          registers: [registry],
        }),
    );
    this.failedAttempts = metric(
      registry,
      "bifrost_notifier_notification_attempts_failed_total",
      () =>
        new Counter({
          name: "bifrost_notifier_notification_attempts_failed_total",
          help: "Delivery attempts that failed, by reason: status_<code>, timeout or network.",
          labelNames: ["receiver", "reason"],
          registers: [registry],
        }),
    );
    this.deadLettered = metric(
      registry,
      "bifrost_notifier_notifications_dead_lettered_total",
      () =>
        new Counter({
          name: "bifrost_notifier_notifications_dead_lettered_total",
          help: "Notifications given up after their attempts and written to the receiver's dead-letter log.",
          labelNames: ["receiver"],
          registers: [registry],
        }),
    );
    this.latency = metric(
      registry,
      "bifrost_notifier_notification_latency_seconds",
      () =>
        new Histogram({
          name: "bifrost_notifier_notification_latency_seconds",
          help: "Duration of one delivery attempt, successful or not.",
          labelNames: ["receiver"],
          buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
          registers: [registry],
        }),
    );
  }
}

// A process may build more than one notifier on one registry (tests, reloads); they share the series.
function metric<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}
