import type { Labels } from "../../proto/labels.js";

/**
 * One alert as the ruler hands it over on every evaluation: every firing alert, and each alert once when it resolves.
 * Its identity is its label set (see `alertFingerprint`).
 */
export interface Alert {
  labels: Labels;
  annotations: Labels;
  state: "firing" | "resolved";
  /** When the alert started firing (Prometheus's FiredAt). */
  startsAt: Date | string;
  /**
   * Resolved: when it resolved (default: when `send` is called). Firing: optional; when absent the alert resolves by
   * itself `resolve_timeout_ms` after the last `send` that carried it, as Alertmanager treats alerts without an end.
   */
  endsAt?: Date | string;
  generatorURL: string;
}

/** One alert of a webhook message, as Alertmanager's template.Alert marshals. */
export interface WebhookAlert {
  status: "firing" | "resolved";
  labels: Labels;
  annotations: Labels;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

/** Alertmanager's webhook message, version 4, field for field and in its field order. */
export interface WebhookMessage {
  receiver: string;
  status: "firing" | "resolved";
  alerts: WebhookAlert[];
  groupLabels: Labels;
  commonLabels: Labels;
  commonAnnotations: Labels;
  externalURL: string;
  version: "4";
  groupKey: string;
  truncatedAlerts: number;
}

/** What Alertmanager's `POST /api/v2/alerts` takes, as Prometheus's notifier sends it. */
export interface PostableAlert {
  labels: Labels;
  annotations: Labels;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
}
