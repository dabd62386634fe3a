import { Gauge, type Registry } from "prom-client";
import type { Logger } from "../../common/log.js";

export interface NodeConflictOptions {
  /** A collector whose last heartbeat is older than this no longer counts as live. */
  ttlMs: number;
  registry: Registry;
  log: Logger;
}

interface Collector {
  /** Its first and latest heartbeats' own timestamps, and when the latest arrived here. */
  firstTs: number;
  lastTs: number;
  seenAt: number;
  url: string;
}

interface NodeState {
  /** The incarnation of the latest heartbeat. */
  current: string;
  collectors: Map<string, Collector>;
  conflict: boolean;
}

/**
 * Notices two live collectors presenting one node id, from their signed heartbeats: each carries the collector's
 * disk buffer incarnation, drawn at every start. A node that restarts, or is reimaged, goes over from one
 * incarnation to the next for good; two collectors take turns, and each goes on heartbeating after the other
 * began. So a conflict is an incarnation heartbeating again after another one did (in the order heartbeats
 * arrive) while the spans of their heartbeats' own timestamps overlap. The spans keep out a heartbeat still in
 * flight from before a restart, which arrives late but is older than the new incarnation's first; each span is
 * read on one collector's clock, so two machines' clocks apart by δ show the overlap δ later. Reported by the
 * gauge `bifrost_query_duplicate_node_id_collectors{node_id}` and one error log line; cleared once only one of the
 * collectors has heartbeated within the TTL.
 *
 * Heartbeats rather than batches: they reach the query service, are signed, and say that a collector runs now,
 * whereas batches reach only the aggregators and may be old (a node replaying its buffer after days offline,
 * Kafka delivering a batch again after a rebalance), so interleaved incarnations in batches do not mean two
 * live collectors.
 */
export class NodeIdConflicts {
  private readonly nodes = new Map<string, NodeState>();

  constructor(private readonly options: NodeConflictOptions) {
    const conflicts = () => this.conflicts();
    new Gauge({
      name: "bifrost_query_duplicate_node_id_collectors",
      help: "Live collectors (by their heartbeats) presenting a node id that another live collector presents too; absent for a node id with one collector.",
      // Not `node`: collectors give that label to everything they ship, naming themselves.
      labelNames: ["node_id"],
      registers: [options.registry],
      collect() {
        this.reset();
        for (const [node, count] of conflicts()) this.set({ node_id: node }, count);
      },
    });
  }

  /** A heartbeat whose signature, timestamp and certificate were checked. */
  observe(node: string, incarnation: string, ts: number, url: string, now = Date.now()): void {
    const seen = this.nodes.get(node);
    if (seen !== undefined) this.forgetSilent(node, seen, now);
    let state = this.nodes.get(node);
    if (state === undefined) {
      state = { current: incarnation, collectors: new Map(), conflict: false };
      this.nodes.set(node, state);
    }
    const known = state.collectors.get(incarnation);
    // A heartbeat replayed or overtaken by a later one of the same collector tells nothing new.
    if (known !== undefined && ts <= known.lastTs) return;
    const returned = known !== undefined && state.current !== incarnation;
    const collector = known ?? { firstTs: ts, lastTs: ts, seenAt: now, url };
    Object.assign(collector, { lastTs: ts, seenAt: now, url });
    state.collectors.set(incarnation, collector);
    state.current = incarnation;
    const overlapping = [...state.collectors].some(
      ([other, c]) => other !== incarnation && c.firstTs < collector.lastTs && collector.firstTs < c.lastTs,
    );
    if (returned && overlapping && !state.conflict) {
      state.conflict = true;
      this.options.log.error(
        {
          node,
          collectors: [...state.collectors].map(([id, c]) => ({ incarnation: id, url: c.url })),
        },
        "two live collectors present one node id: their batches are all stored, but their series share labels and actions reach whichever heartbeated last; give each its own node.id",
      );
    }
  }

  /** Node ids that more than one live collector presents, with how many do. */
  conflicts(now = Date.now()): Map<string, number> {
    const out = new Map<string, number>();
    for (const [node, state] of this.nodes) {
      this.forgetSilent(node, state, now);
      if (state.conflict) out.set(node, state.collectors.size);
    }
    return out;
  }

  private forgetSilent(node: string, state: NodeState, now: number): void {
    for (const [incarnation, collector] of state.collectors)
      if (now - collector.seenAt > this.options.ttlMs) state.collectors.delete(incarnation);
    if (state.conflict && state.collectors.size < 2) {
      state.conflict = false;
      this.options.log.info({ node }, "one live collector presents the node id again");
    }
    if (state.collectors.size === 0) this.nodes.delete(node);
  }
}
