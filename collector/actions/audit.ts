import type { Batcher } from "../buffer/batcher.js";

/** One audit record: a request's verdict, or the outcome of an action that ran. */
export interface AuditEvent {
  /** "refused" (with reason), "accepted", "duplicate", or the outcome: "succeeded", "failed", "timed_out". */
  outcome: string;
  /** The allow-listed action's name, or "unknown" for any other name (kept out of labels: it is untrusted). */
  action: string;
  fields: Record<string, unknown>;
}

/**
 * The collector's audit trail: log entries in the tenant's normal data path (batcher -> disk buffer -> Kafka
 * -> store), in streams {service="bifrost-actions", source="collector", action, outcome} that the batcher
 * gives this node's `node` label, so they are queried with LogQL like any log. The line is the event as JSON.
 */
export class CollectorAudit {
  constructor(
    private readonly batcher: Pick<Batcher, "add">,
    private readonly tenant: string,
  ) {}

  /** Resolves once the record is in the disk buffer. */
  write(event: AuditEvent): Promise<void> {
    const id = typeof event.fields["id"] === "string" ? event.fields["id"] : "";
    return this.batcher.add(
      this.tenant,
      {
        streams: [
          {
            labels: { service: "bifrost-actions", source: "collector", action: event.action, outcome: event.outcome },
            entries: [
              {
                timeUnixNano: BigInt(Date.now()) * 1_000_000n,
                line: JSON.stringify({ outcome: event.outcome, ...event.fields }),
                metadata: { action_id: id.slice(0, 128) },
              },
            ],
          },
        ],
      },
      // The action's sender waits for its answer, which follows the record.
      { senderWaits: true },
    );
  }
}
