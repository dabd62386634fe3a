import { randomUUID } from "node:crypto";
import type { Logger } from "../../common/log.js";
import { alertFingerprint, type AlertNotice } from "../ruler/notice.js";
import { type ActionBinding, actionsForAlert, type PlannedAction } from "./bindings.js";
import type { StoreAudit } from "./audit.js";
import type { ActionOutcome, ActionSender } from "./sender.js";

export interface RemediatorOptions {
  sender: Pick<ActionSender, "send">;
  audit: Pick<StoreAudit, "write">;
  bindings: ActionBinding[];
  nodeLabel: string;
  /** Receives the alert a refused, failed or undeliverable action raises, to page like the ruler's own. */
  onActionFailed?: (alert: AlertNotice) => void;
  log: Logger;
}

/** What the ruler calls when an alert fires: the alert's bound actions, sent, audited, failures alerted. */
export class Remediator {
  constructor(private readonly options: RemediatorOptions) {}

  actionsForAlert(alert: Pick<AlertNotice, "labels">): PlannedAction[] {
    return actionsForAlert(alert, this.options.bindings, this.options.nodeLabel);
  }

  /** Sends every action the alert is bound to, one after another, and returns their outcomes. */
  async remediate(alert: Pick<AlertNotice, "labels">): Promise<ActionOutcome[]> {
    const outcomes: ActionOutcome[] = [];
    for (const planned of this.actionsForAlert(alert)) outcomes.push(await this.run(planned, alert));
    return outcomes;
  }

  async run(planned: PlannedAction, cause?: Pick<AlertNotice, "labels">): Promise<ActionOutcome> {
    const { options } = this;
    const id = randomUUID();
    const request = { ...planned, id };
    await this.audited(() => options.audit.write("sending", request, { alert: cause?.labels }));
    const outcome = await options.sender.send(planned, id);
    const { id: _id, node: _node, action: _action, params: _params, ...details } = outcome;
    await this.audited(() => options.audit.write(outcome.status, request, details));
    if (outcome.status !== "succeeded") {
      options.log.warn({ ...outcome }, "self-healing action did not succeed");
      options.onActionFailed?.(failedAlert(outcome, cause));
    }
    return outcome;
  }

  /** A store that cannot take the audit record must not stop the action: the collector audits it too. */
  private async audited(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (err) {
      this.options.log.error({ err }, "cannot write the action audit record");
    }
  }
}

export function failedAlert(outcome: ActionOutcome, cause?: Pick<AlertNotice, "labels">): AlertNotice {
  const labels: Record<string, string> = {
    alertname: "BifrostActionFailed",
    severity: "warning",
    node: outcome.node,
    action: outcome.action,
    outcome: outcome.status,
  };
  if (outcome.reason !== undefined) labels["reason"] = outcome.reason;
  const annotations: Record<string, string> = {
    summary: `self-healing action ${outcome.action} on ${outcome.node}: ${outcome.status}${outcome.reason ? ` (${outcome.reason})` : ""}`,
    description: (outcome.error ?? outcome.stderr ?? "").slice(0, 1000),
    action_id: outcome.id,
  };
  if (cause?.labels["alertname"] !== undefined) annotations["cause"] = cause.labels["alertname"];
  return {
    labels,
    annotations,
    state: "firing",
    startsAt: new Date().toISOString(),
    generatorURL: "",
    fingerprint: alertFingerprint(labels),
  };
}
