import type { NotifierReceiverConfig } from "../config.js";
import { compileGoRegexp } from "../../common/regex.js";
import type { Delivery, Target } from "./delivery.js";
import { formatLabels, type Labels, sortedNames } from "../../proto/labels.js";
import { compareAlertLabels } from "./labels.js";
import { isResolved, webhookMessage } from "./payload.js";
import type { NotificationEntry, ReceiverState, StoredAlert } from "./state.js";

interface Group {
  key: string;
  labels: Labels;
  alerts: Map<string, StoredAlert>;
  hasFlushed: boolean;
  nextFlushAt: number;
  timer?: NodeJS.Timeout;
  flushing?: Promise<void>;
}

/**
 * One webhook receiver, dispatched as an Alertmanager route: alerts are grouped by the `group_by` labels; a new
 * group is flushed after group_wait (at once if its alert started more than group_wait ago), then every
 * group_interval. A flush notifies only if the notification log says so (Alertmanager's DedupStage): a firing
 * alert not notified before, a resolved one not notified as resolved (with send_resolved), all alerts of a
 * notified group resolved, or repeat_interval passed. After a successful flush resolved alerts leave the group,
 * and an empty group is dropped with its log entry. A failed flush keeps everything for the next one.
 */
export class ReceiverRoute {
  /** Alertmanager's route key, the part of the group key before the colon. */
  readonly routeKey: string;
  private readonly groups = new Map<string, Group>();
  private readonly notified = new Map<string, NotificationEntry>();
  private readonly matchers: [string, RegExp][];
  private readonly target: Target;
  private closed = false;

  constructor(
    private readonly config: NotifierReceiverConfig,
    private readonly delivery: Delivery,
    private readonly externalURL: string,
    private readonly changed: () => void,
  ) {
    const names = sortedNames(config.matchers);
    this.matchers = names.map((name) => [name, compileGoRegexp(config.matchers[name]!, true)]);
    this.routeKey = `{}/{${names.map((name) => `${name}=~${JSON.stringify(config.matchers[name])}`).join(",")}}`;
    this.target = {
      name: config.name,
      url: config.url,
      timeoutMs: config.timeout_ms,
      headers: config.headers,
      hmacSecret: config.hmac_secret,
    };
  }

  get name(): string {
    return this.config.name;
  }

  /** A missing label matches as the empty string, as in Alertmanager. */
  matches(labels: Labels): boolean {
    return this.matchers.every(([name, pattern]) => pattern.test(labels[name] ?? ""));
  }

  insert(incoming: StoredAlert, now: number): void {
    if (this.closed) return;
    const labels = this.groupLabels(incoming.labels);
    const key = `${this.routeKey}:${formatLabels(labels)}`;
    let group = this.groups.get(key);
    if (group === undefined) {
      group = { key, labels, alerts: new Map(), hasFlushed: false, nextFlushAt: now + this.config.group_wait_ms };
      this.groups.set(key, group);
      this.schedule(group, this.config.group_wait_ms);
    }
    const old = group.alerts.get(incoming.fingerprint);
    const alert = old === undefined ? incoming : merge(old, incoming, now);
    group.alerts.set(alert.fingerprint, alert);
    if (!group.hasFlushed && alert.startsAt + this.config.group_wait_ms < now) this.schedule(group, 0);
  }

  snapshot(): ReceiverState {
    return {
      groups: [...this.groups.values()].map((group) => ({
        key: group.key,
        labels: group.labels,
        hasFlushed: group.hasFlushed,
        nextFlushAt: group.nextFlushAt,
        alerts: [...group.alerts.values()],
      })),
      notified: Object.fromEntries(this.notified),
    };
  }

  /** Takes over the groups and log of a previous run; each group flushes when it would have. */
  restore(state: ReceiverState, now: number): void {
    for (const [key, entry] of Object.entries(state.notified)) this.notified.set(key, entry);
    for (const saved of state.groups) {
      const group: Group = {
        key: saved.key,
        labels: saved.labels,
        alerts: new Map(saved.alerts.map((alert) => [alert.fingerprint, alert])),
        hasFlushed: saved.hasFlushed,
        nextFlushAt: saved.nextFlushAt,
      };
      this.groups.set(group.key, group);
      this.schedule(group, Math.max(0, group.nextFlushAt - now));
    }
  }

  /** Stops the timers and waits for flushes under way (their deliveries end when the notifier aborts them). */
  async close(): Promise<void> {
    this.closed = true;
    for (const group of this.groups.values()) clearTimeout(group.timer);
    await Promise.all([...this.groups.values()].map((group) => group.flushing));
  }

  private groupLabels(labels: Labels): Labels {
    if (this.config.group_by[0] === "...") return { ...labels };
    const out: Labels = {};
    for (const name of this.config.group_by) if (labels[name] !== undefined) out[name] = labels[name];
    return out;
  }

  private schedule(group: Group, delay: number): void {
    clearTimeout(group.timer);
    group.timer = setTimeout(() => void this.tick(group), delay);
    group.timer.unref();
  }

  private async tick(group: Group): Promise<void> {
    if (this.closed || group.flushing !== undefined) return;
    const now = Date.now();
    group.hasFlushed = true;
    group.nextFlushAt = now + this.config.group_interval_ms;
    group.flushing = this.flush(group, now);
    await group.flushing;
    group.flushing = undefined;
    if (this.closed) return;
    if (group.alerts.size === 0) {
      this.groups.delete(group.key);
      this.notified.delete(group.key);
    } else {
      this.schedule(group, Math.max(0, group.nextFlushAt - Date.now()));
    }
    this.changed();
  }

  private async flush(group: Group, now: number): Promise<void> {
    // Alerts not resolved by now are firing, whatever end they were given, and are shown without one.
    const alerts = [...group.alerts.values()]
      .map((alert) => (isResolved(alert, now) ? { ...alert } : { ...alert, endsAt: 0 }))
      .sort((a, b) => compareAlertLabels(a.labels, b.labels));
    if (alerts.length === 0) return;
    const firing = alerts.filter((alert) => alert.endsAt === 0).map((alert) => alert.fingerprint);
    const resolved = alerts.filter((alert) => alert.endsAt !== 0).map((alert) => alert.fingerprint);
    const entry = this.notified.get(group.key);
    if (this.needsUpdate(entry, firing, resolved, now)) {
      // Without send_resolved only firing alerts go out; a flush with none is logged as if it had been sent.
      const outgoing = this.config.send_resolved
        ? alerts
        : firing.length === 0
          ? []
          : alerts.filter((alert) => alert.endsAt === 0);
      if (outgoing.length > 0) {
        const message = webhookMessage(
          {
            receiver: this.config.name,
            groupKey: group.key,
            groupLabels: group.labels,
            externalURL: this.externalURL,
            maxAlerts: this.config.max_alerts,
          },
          outgoing,
          now,
        );
        if (!(await this.delivery.deliver(this.target, message, group.key))) return;
      }
      this.notified.set(group.key, { firing, resolved, at: now });
    }
    for (const alert of alerts) {
      if (alert.endsAt === 0) continue;
      // An alert updated during the delivery has news that the next flush must consider.
      if (group.alerts.get(alert.fingerprint)?.updated === alert.updated) group.alerts.delete(alert.fingerprint);
    }
  }

  private needsUpdate(
    entry: NotificationEntry | undefined,
    firing: string[],
    resolved: string[],
    now: number,
  ): boolean {
    if (entry === undefined) return firing.length > 0;
    const notifiedFiring = new Set(entry.firing);
    if (!firing.every((fp) => notifiedFiring.has(fp))) return true;
    // Everything resolved: notify (even without send_resolved, to clear the log) unless the receiver never heard
    // of these alerts because they fired and resolved between two flushes.
    if (firing.length === 0) return entry.firing.length > 0;
    const notifiedResolved = new Set(entry.resolved);
    if (this.config.send_resolved && !resolved.every((fp) => notifiedResolved.has(fp))) return true;
    return entry.at < now - this.config.repeat_interval_ms;
  }
}

/**
 * Alertmanager's merge of a re-sent alert with the one it has: when their activity overlaps the earliest start
 * wins, and an explicit end outlives a later end that only came from resolve_timeout; otherwise the new alert
 * replaces the old (a new occurrence after the old one resolved).
 */
function merge(old: StoredAlert, incoming: StoredAlert, now: number): StoredAlert {
  const overlaps =
    (incoming.endsAt > old.startsAt && incoming.endsAt < old.endsAt) ||
    (incoming.startsAt > old.startsAt && incoming.startsAt < old.endsAt);
  if (!overlaps) return incoming;
  const merged = { ...incoming, startsAt: Math.min(old.startsAt, incoming.startsAt) };
  if (isResolved(incoming, now)) {
    if (isResolved(old, now) && old.endsAt > incoming.endsAt) merged.endsAt = old.endsAt;
  } else if (old.endsAt > incoming.endsAt && !old.timeout) {
    merged.endsAt = old.endsAt;
    merged.timeout = false;
  }
  return merged;
}
