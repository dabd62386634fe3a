import type { Logger } from "../../common/log.js";
import type { AlertNotice, AlertSink } from "../ruler/notice.js";
import type { Remediator } from "./remediator.js";

/**
 * Connects the ruler to remediation. The ruler re-sends every firing alert at each evaluation (as Prometheus
 * does for Alertmanager); an alert's actions run once when it starts firing, and again only after it resolved
 * and fired anew, never once per evaluation.
 */
export class RemediationSink implements AlertSink {
  private readonly firing = new Set<string>();

  constructor(
    private readonly remediator: Pick<Remediator, "remediate">,
    private readonly log: Logger,
  ) {}

  send(alerts: AlertNotice[]): void {
    for (const alert of alerts) {
      if (alert.state === "resolved") {
        this.firing.delete(alert.fingerprint);
        continue;
      }
      if (this.firing.has(alert.fingerprint)) continue;
      this.firing.add(alert.fingerprint);
      this.remediator
        .remediate(alert)
        .catch((err: unknown) => this.log.error({ err, alert: alert.labels }, "self-healing actions failed"));
    }
  }
}
