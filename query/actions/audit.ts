import type { Store } from "../../storage/store.js";
import type { ActionOutcome, ActionRequest } from "./sender.js";

/**
 * The query service's side of the action audit trail, written straight to the store as log entries in
 * streams {service="bifrost-actions", source="query", node, action, outcome}, beside the collector's records
 * (source="collector", which arrive through Kafka): `{service="bifrost-actions"} | json` over the Loki API
 * shows an action from the decision to send it to its outcome on the node. A log stream rather than a table of
 * its own keeps the trail queryable with the tools that read everything else, under the same retention.
 */
export class StoreAudit {
  constructor(
    private readonly store: Pick<Store, "appendLogs">,
    private readonly tenant: string,
  ) {}

  /** `sending` before an action goes out (with the alert that caused it), then its outcome. */
  async write(
    outcome: "sending" | ActionOutcome["status"],
    request: ActionRequest & { id: string },
    fields: Record<string, unknown>,
  ): Promise<void> {
    // service_name as the collector's records get it (common/service-name.ts): one service in Logs Drilldown.
    const labels = {
      service: "bifrost-actions",
      service_name: "bifrost-actions",
      source: "query",
      node: request.node,
      action: request.action,
      outcome,
    };
    const line = JSON.stringify({
      outcome,
      id: request.id,
      node: request.node,
      action: request.action,
      params: request.params,
      ...fields,
    });
    await this.store.appendLogs([
      {
        id: `actions/${request.id}/${outcome}`,
        tenant: this.tenant,
        streams: [
          {
            labels,
            entries: [{ timeUnixNano: BigInt(Date.now()) * 1_000_000n, line, metadata: { action_id: request.id } }],
          },
        ],
      },
    ]);
  }
}
