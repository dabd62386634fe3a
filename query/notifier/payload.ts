import { sortedLabelsOf } from "../../proto/labels.js";
import { formatGoTimeJson } from "../../common/go/time-layout.js";
import type { Labels } from "../../proto/labels.js";
import type { WebhookAlert, WebhookMessage } from "./types.js";

/** An alert as a group holds it; times in epoch milliseconds, endsAt 0 while it has no end. */
export interface GroupAlert {
  fingerprint: string;
  labels: Labels;
  annotations: Labels;
  startsAt: number;
  endsAt: number;
  generatorURL: string;
}

export function isResolved(alert: GroupAlert, now: number): boolean {
  return alert.endsAt !== 0 && alert.endsAt <= now;
}

export interface MessageContext {
  receiver: string;
  groupKey: string;
  groupLabels: Labels;
  externalURL: string;
  /** 0 keeps every alert. */
  maxAlerts: number;
}

/**
 * Alertmanager's webhook notifier: the first `max_alerts` alerts (the count of the rest in truncatedAlerts), and
 * the status and common labels and annotations computed over the alerts that remain, as its template data does.
 */
export function webhookMessage(context: MessageContext, alerts: GroupAlert[], now: number): WebhookMessage {
  const kept = context.maxAlerts > 0 ? alerts.slice(0, context.maxAlerts) : alerts;
  const rendered = kept.map((alert) => webhookAlert(alert, now));
  return {
    receiver: context.receiver,
    status: rendered.some((alert) => alert.status === "firing") ? "firing" : "resolved",
    alerts: rendered,
    groupLabels: sortedLabelsOf(context.groupLabels),
    commonLabels: common(kept.map((alert) => alert.labels)),
    commonAnnotations: common(kept.map((alert) => alert.annotations)),
    externalURL: context.externalURL,
    version: "4",
    groupKey: context.groupKey,
    truncatedAlerts: alerts.length - kept.length,
  };
}

function webhookAlert(alert: GroupAlert, now: number): WebhookAlert {
  return {
    status: isResolved(alert, now) ? "resolved" : "firing",
    labels: sortedLabelsOf(alert.labels),
    annotations: sortedLabelsOf(alert.annotations),
    startsAt: formatGoTimeJson(alert.startsAt),
    endsAt: formatGoTimeJson(alert.endsAt),
    generatorURL: alert.generatorURL,
    fingerprint: alert.fingerprint,
  };
}

function common(sets: Labels[]): Labels {
  const [first, ...rest] = sets;
  if (first === undefined) return {};
  const out = sortedLabelsOf(first);
  for (const set of rest) for (const [name, value] of Object.entries(out)) if (set[name] !== value) delete out[name];
  return out;
}
