import type { Delivery, Target } from "./delivery.js";
import { sortedLabelsOf } from "../../proto/labels.js";
import { formatGoTimeJson } from "../../common/go/time-layout.js";
import type { GroupAlert } from "./payload.js";
import type { PostableAlert } from "./types.js";

/** Prometheus's notifier posts at most this many alerts per request. */
const MAX_BATCH = 64;

/**
 * Alertmanager targets, fed as Prometheus's rule manager feeds them: a firing alert is posted when first seen and
 * then again once resend_delay has passed since it was last posted, each time with endsAt = now + 4 × resend_delay
 * so that Alertmanager resolves it by itself if Bifrost goes silent; a resolved alert is posted with its end (the ruler hands it over once).
 * Each target has one request in flight at a time; what arrives meanwhile waits, the newest version of each
 * alert replacing older ones, as in Prometheus's queue.
 */
export class AlertmanagerTargets {
  private readonly lastSent = new Map<string, number>();
  private readonly queues: { target: Target; pending: Map<string, PostableAlert>; draining?: Promise<void> }[];

  constructor(
    urls: string[],
    timeoutMs: number,
    private readonly resendDelayMs: number,
    private readonly delivery: Delivery,
  ) {
    this.queues = urls.map((url) => ({
      target: { name: `alertmanager:${url}`, url: `${url.replace(/\/+$/, "")}/api/v2/alerts`, timeoutMs, headers: {} },
      pending: new Map(),
    }));
  }

  send(alerts: GroupAlert[], now: number): void {
    if (this.queues.length === 0) return;
    const due: [string, PostableAlert][] = [];
    for (const alert of alerts) {
      const resolved = alert.endsAt !== 0 && alert.endsAt <= now;
      if (resolved) {
        this.lastSent.delete(alert.fingerprint);
        due.push([alert.fingerprint, postable(alert, alert.endsAt)]);
      } else {
        const last = this.lastSent.get(alert.fingerprint);
        if (last !== undefined && last + this.resendDelayMs >= now) continue;
        this.lastSent.set(alert.fingerprint, now);
        due.push([alert.fingerprint, postable(alert, now + 4 * this.resendDelayMs)]);
      }
    }
    // Alerts Alertmanager has already let expire need not be remembered.
    for (const [fingerprint, at] of this.lastSent)
      if (at + 4 * this.resendDelayMs < now) this.lastSent.delete(fingerprint);
    if (due.length === 0) return;
    for (const queue of this.queues) {
      for (const [fingerprint, alert] of due) queue.pending.set(fingerprint, alert);
      queue.draining ??= this.drain(queue);
    }
  }

  /** Resolves when no request is in flight. */
  async idle(): Promise<void> {
    await Promise.all(this.queues.map((queue) => queue.draining));
  }

  private async drain(queue: (typeof this.queues)[number]): Promise<void> {
    try {
      while (queue.pending.size > 0) {
        const batch = [...queue.pending].slice(0, MAX_BATCH);
        for (const [fingerprint] of batch) queue.pending.delete(fingerprint);
        await this.delivery.deliver(
          queue.target,
          batch.map(([, alert]) => alert),
          batch.map(([fingerprint]) => fingerprint).join(","),
        );
      }
    } finally {
      queue.draining = undefined;
    }
  }
}

function postable(alert: GroupAlert, endsAt: number): PostableAlert {
  return {
    labels: sortedLabelsOf(alert.labels),
    annotations: sortedLabelsOf(alert.annotations),
    startsAt: formatGoTimeJson(alert.startsAt),
    endsAt: formatGoTimeJson(endsAt),
    generatorURL: alert.generatorURL,
  };
}
