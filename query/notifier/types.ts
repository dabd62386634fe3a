import type { Labels } from "../../proto/labels.js";

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
