import type { Registry } from "prom-client";
import type { NotifierConfig } from "../config.js";
import type { Logger } from "../../common/log.js";
import type { Runtime } from "../../runtime.js";
import { AlertmanagerTargets } from "./alertmanager.js";
import { Delivery } from "./delivery.js";
import { ReceiverRoute } from "./dispatcher.js";
import { NotifierMetrics } from "./metrics.js";
import { StateFile, type NotifierState, type StoredAlert } from "./state.js";
import type { AlertNotice, AlertSink } from "../ruler/notice.js";

export type { PostableAlert, WebhookAlert, WebhookMessage } from "./types.js";
export { SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify } from "./signature.js";
export { deadLetterPath, type DeadLetter } from "./delivery.js";

export interface NotifierOptions {
  config: NotifierConfig;
  log: Logger;
  registry: Registry;
}

/**
 * Turns the ruler's alerts into notifications: Alertmanager-style webhook notifications to each matching
 * receiver, and Prometheus-style posts to Alertmanagers. The ruler calls `send` on every evaluation with every
 * firing alert and, once, each alert that just resolved. Groups and the notification log are saved to
 * `state_file`, so that a restart neither pages again nor loses a pending notification.
 */
export class Notifier implements AlertSink {
  private readonly abort = new AbortController();
  private readonly routes: ReceiverRoute[];
  private readonly alertmanagers: AlertmanagerTargets;
  private readonly state: StateFile;
  private updates = 0;
  private closed = false;

  private constructor(private readonly options: NotifierOptions) {
    const { config, log } = options;
    const delivery = new Delivery(
      { maxAttempts: config.max_attempts, backoffMs: config.backoff_ms, maxBackoffMs: config.max_backoff_ms },
      config.dead_letter_dir,
      new NotifierMetrics(options.registry),
      log,
      this.abort.signal,
    );
    this.state = new StateFile(config.state_file, () => this.snapshot(), log);
    this.routes = config.receivers.map(
      (receiver) => new ReceiverRoute(receiver, delivery, config.external_url, () => this.state.changed()),
    );
    this.alertmanagers = new AlertmanagerTargets(
      config.alertmanagers,
      config.alertmanager_timeout_ms,
      config.resend_delay_ms,
      delivery,
    );
  }

  /** A notifier that has taken over the saved state of the previous run. */
  static async open(options: NotifierOptions): Promise<Notifier> {
    const notifier = new Notifier(options);
    const saved = await notifier.state.load();
    if (saved !== undefined) notifier.restore(saved);
    return notifier;
  }

  /**
   * Hands over the current alerts. Returns at once: notifications leave after each group's wait, and posts to
   * Alertmanager in the background. Throws on an alert whose times do not parse.
   */
  send(alerts: AlertNotice[]): void {
    if (this.closed) throw new Error("the notifier is closed");
    const now = Date.now();
    const stored = alerts.map((alert) => this.toStored(alert, now));
    for (const alert of stored)
      for (const route of this.routes) if (route.matches(alert.labels)) route.insert({ ...alert }, now);
    this.alertmanagers.send(stored, now);
    if (this.routes.length > 0) this.state.changed();
  }

  /**
   * Stops sending: requests under way finish (each within its timeout), retries are abandoned and sent again after
   * the restart, then the state is saved.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    await Promise.all([...this.routes.map((route) => route.close()), this.alertmanagers.idle()]);
    this.state.changed();
    await this.state.flush();
  }

  private toStored(alert: AlertNotice, now: number): StoredAlert {
    const startsAt = time(alert.startsAt, "startsAt");
    const given = alert.endsAt === undefined ? undefined : time(alert.endsAt, "endsAt");
    let endsAt: number;
    if (alert.state === "resolved") endsAt = Math.min(given ?? now, now);
    else endsAt = given !== undefined && given > now ? given : now + this.options.config.resolve_timeout_ms;
    return {
      fingerprint: alert.fingerprint,
      labels: { ...alert.labels },
      annotations: { ...alert.annotations },
      startsAt,
      endsAt,
      generatorURL: alert.generatorURL,
      timeout: alert.state === "firing" && (given === undefined || given <= now),
      updated: ++this.updates,
    };
  }

  private snapshot(): NotifierState {
    return {
      version: 1,
      savedAt: Date.now(),
      receivers: Object.fromEntries(this.routes.map((route) => [route.name, route.snapshot()])),
    };
  }

  /**
   * Alerts that were firing at the stop, on their resolve_timeout, get a full resolve_timeout from now: the
   * downtime is not the ruler's silence, and resolving them before its first evaluation would page twice.
   */
  private restore(saved: NotifierState): void {
    const now = Date.now();
    for (const route of this.routes) {
      const state = saved.receivers[route.name];
      if (state === undefined) continue;
      for (const group of state.groups) {
        for (const alert of group.alerts) {
          this.updates = Math.max(this.updates, alert.updated);
          if (alert.timeout && alert.endsAt > saved.savedAt)
            alert.endsAt = Math.max(alert.endsAt, now + this.options.config.resolve_timeout_ms);
        }
      }
      route.restore(state, now);
    }
  }
}

/** The notifier of a query service, configured by `query.notifier`. */
export function createNotifier(runtime: Runtime): Promise<Notifier> {
  return Notifier.open({
    config: runtime.config.query.notifier,
    log: runtime.log.child({ component: "notifier" }),
    registry: runtime.registry,
  });
}

function time(value: string, field: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new TypeError(`alert ${field} is not a valid time: ${value}`);
  return ms;
}
