import { SampleKind, type Series } from "../../proto/batch.js";
import { labelsOf, type Labels } from "../../proto/labels.js";
import type { Store } from "../../storage/store.js";
import { dropName } from "../promql/evaluation/values.js";
import type { Alert } from "./alerts.js";

// Alert state as samples, so that a restarted query service neither re-pages nor forgets an alert in the middle of
// its `for`. Prometheus' own series: ALERTS{alertstate} = 1 and ALERTS_FOR_STATE = activeAt in seconds, which it
// reads back on start. Bifrost adds when an alert fired (the notification's startsAt, so the restarted ruler sends
// the same alert rather than a new one) and when keep_firing_for started, and one sample per group evaluation
// that tells which evaluation was the last: only alerts written at that evaluation are still active.

export const ALERTS = "ALERTS";
export const FOR_STATE = "ALERTS_FOR_STATE";
export const FIRED_AT = "ALERTS_FIRED_AT";
export const KEEP_FIRING_SINCE = "ALERTS_KEEP_FIRING_SINCE";
export const GROUP_EVALUATION = "bifrost_rule_group_last_evaluation_timestamp_seconds";

export function gauge(name: string, labels: Labels, timeMs: number, value: number): Series {
  return { name, labels, kind: SampleKind.Gauge, points: [{ timeUnixMs: timeMs, value }] };
}

export function groupKey(file: string, name: string): string {
  return `${file};${name}`;
}

/** The samples that record `alerts` as they stand after an evaluation at `timeMs`. */
export function alertSeries(alerts: Alert[], timeMs: number): Series[] {
  const out: Series[] = [];
  for (const alert of alerts) {
    out.push(gauge(ALERTS, { ...alert.labels, alertstate: alert.state }, timeMs, 1));
    out.push(gauge(FOR_STATE, alert.labels, timeMs, alert.activeAtMs / 1000));
    if (alert.firedAtMs !== undefined) out.push(gauge(FIRED_AT, alert.labels, timeMs, alert.firedAtMs / 1000));
    if (alert.keepFiringSinceMs !== undefined)
      out.push(gauge(KEEP_FIRING_SINCE, alert.labels, timeMs, alert.keepFiringSinceMs / 1000));
  }
  return out;
}

/**
 * The alerts of a group as its last evaluation left them, by alert name; none when that evaluation lies further
 * back than `outageToleranceMs` (Prometheus' rules.alert.for-outage-tolerance), as their state is then too old.
 */
export async function restoreAlerts(
  store: Store,
  tenant: string,
  key: string,
  alertNames: string[],
  nowMs: number,
  outageToleranceMs: number,
): Promise<Map<string, Alert[]>> {
  const restored = new Map<string, Alert[]>();
  if (alertNames.length === 0) return restored;
  const evaluations = await store.selectSamples({
    tenant,
    matchers: [
      { name: "__name__", op: "=", value: GROUP_EVALUATION },
      { name: "rule_group", op: "=", value: key },
    ],
    startMs: nowMs - outageToleranceMs,
    endMs: nowMs + 1,
  });
  const lastMs = Math.max(-Infinity, ...evaluations.flatMap((s) => s.points.map((p) => p.timeMs)));
  if (!Number.isFinite(lastMs)) return restored;
  const read = async (name: string) => {
    const series = await store.selectSamples({
      tenant,
      matchers: [
        { name: "__name__", op: "=", value: name },
        { name: "alertname", op: "=~", value: alertNames.map(escapeRegex).join("|") },
      ],
      startMs: lastMs,
      endMs: lastMs + 1,
    });
    const byLabels = new Map<string, number>();
    for (const s of series) {
      const point = s.points.at(-1);
      if (point !== undefined)
        byLabels.set(JSON.stringify(sortedEntries(dropName(s.labels))), Math.round(point.value * 1000));
    }
    return byLabels;
  };
  const [activeAt, firedAt, keepFiringSince] = await Promise.all([
    read(FOR_STATE),
    read(FIRED_AT),
    read(KEEP_FIRING_SINCE),
  ]);
  for (const [key, activeAtMs] of activeAt) {
    const labels = labelsOf(JSON.parse(key) as [string, string][]);
    const fired = firedAt.get(key);
    const since = keepFiringSince.get(key);
    const alert: Alert = {
      labels,
      annotations: labelsOf([]),
      value: 0,
      state: fired === undefined ? "pending" : "firing",
      activeAtMs,
    };
    if (fired !== undefined) alert.firedAtMs = fired;
    if (since !== undefined) alert.keepFiringSinceMs = since;
    const name = labels["alertname"] ?? "";
    restored.set(name, [...(restored.get(name) ?? []), alert]);
  }
  return restored;
}

function sortedEntries(labels: Labels): [string, string][] {
  return Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}
