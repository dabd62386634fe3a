import type { Config } from "../../config.js";
import type { AlertNotice } from "../ruler/notice.js";

export type ActionBinding = Config["query"]["actions"]["bindings"][number];

export interface PlannedAction {
  node: string;
  action: string;
  params: Record<string, string>;
}

/**
 * The actions an alert calls for: one per binding whose matchers all equal the alert's labels, sent to the
 * node named by the alert's `nodeLabel`, with the binding's fixed params and those it takes from the alert's
 * labels. A binding that needs a label the alert lacks (or an alert without a node) yields nothing: the
 * action could not be formed, and guessing a parameter is worse than not acting.
 */
export function actionsForAlert(
  alert: Pick<AlertNotice, "labels">,
  bindings: ActionBinding[],
  nodeLabel: string,
): PlannedAction[] {
  const node = alert.labels[nodeLabel];
  if (node === undefined || node === "") return [];
  const planned: PlannedAction[] = [];
  for (const binding of bindings) {
    if (!Object.entries(binding.matchers).every(([name, value]) => alert.labels[name] === value)) continue;
    const params: Record<string, string> = { ...binding.params };
    let complete = true;
    for (const [param, label] of Object.entries(binding.params_from_labels)) {
      const value = alert.labels[label];
      if (value === undefined) complete = false;
      else params[param] = value;
    }
    if (complete) planned.push({ node, action: binding.action, params });
  }
  return planned;
}
