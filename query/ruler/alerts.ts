import { labelsKey, type Labels } from "../../proto/labels.js";

// The life of one alerting rule's alerts, as Prometheus' rules/alerting.go evaluates it: an element of the
// expression's result becomes a pending alert; after `for` it fires; when it leaves the result it resolves, or with
// `keep_firing_for` keeps firing that long after the condition was last met. A pending alert that leaves the
// result is dropped without a notification. All times come from the caller, so the machine is exact and testable.

export type AlertState = "pending" | "firing";

export interface Alert {
  labels: Labels;
  annotations: Labels;
  value: number;
  state: AlertState;
  activeAtMs: number;
  /** When it turned firing: the notification's startsAt. */
  firedAtMs?: number;
  /** The first evaluation at which the condition no longer held while `keep_firing_for` kept it firing. */
  keepFiringSinceMs?: number;
}

export interface ResolvedAlert extends Alert {
  resolvedAtMs: number;
}

/** One element of the rule's result, with its final labels (alertname and the rule's labels added) and annotations. */
export interface ActiveElement {
  labels: Labels;
  annotations: Labels;
  value: number;
}

export interface Transition {
  /** Alerts resolved at this evaluation (they are no longer in the rule's state). */
  resolved: ResolvedAlert[];
}

export class AlertStates {
  private readonly alerts = new Map<string, Alert>();

  constructor(
    private readonly forMs: number,
    private readonly keepFiringForMs: number,
  ) {}

  /** Applies one evaluation's result at `timeMs`. */
  update(elements: ActiveElement[], timeMs: number): Transition {
    const seen = new Set<string>();
    for (const element of elements) {
      const key = labelsKey(element.labels);
      seen.add(key);
      const alert = this.alerts.get(key);
      if (alert !== undefined) {
        alert.value = element.value;
        alert.annotations = element.annotations;
        delete alert.keepFiringSinceMs;
      } else {
        this.alerts.set(key, { ...element, state: "pending", activeAtMs: timeMs });
      }
    }
    const resolved: ResolvedAlert[] = [];
    for (const [key, alert] of this.alerts) {
      if (!seen.has(key)) {
        if (alert.state === "pending") {
          this.alerts.delete(key);
          continue;
        }
        alert.keepFiringSinceMs ??= timeMs;
        if (timeMs - alert.keepFiringSinceMs >= this.keepFiringForMs) {
          this.alerts.delete(key);
          resolved.push({ ...alert, resolvedAtMs: timeMs });
        }
        continue;
      }
      if (alert.state === "pending" && timeMs - alert.activeAtMs >= this.forMs) {
        alert.state = "firing";
        alert.firedAtMs = timeMs;
      }
    }
    return { resolved };
  }

  /** Forgets every alert (a rule over its limit): they resolve, as in Prometheus. */
  clear(timeMs: number): ResolvedAlert[] {
    const resolved = [...this.alerts.values()]
      .filter((a) => a.state === "firing")
      .map((a) => ({ ...a, resolvedAtMs: timeMs }));
    this.alerts.clear();
    return resolved;
  }

  /** Puts back an alert read from the store after a restart. */
  restore(alert: Alert): void {
    this.alerts.set(labelsKey(alert.labels), alert);
  }

  list(): Alert[] {
    return [...this.alerts.values()];
  }

  get size(): number {
    return this.alerts.size;
  }
}
