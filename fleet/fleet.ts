import type { Registry } from "prom-client";
import type { Logger } from "../common/log.js";
import { certifiesNode, type ClientIdentity } from "../common/service.js";
import type { SigningKey } from "../common/signing.js";
import type { AgentRecord, FleetStateRecord, RevisionRecord, RolloutRecord } from "../proto/fleet.js";
import {
  AgentCapabilities,
  type AgentToServer,
  AgentToServerFlags,
  ServerCapabilities,
  ServerErrorType,
  type ServerToAgent,
  ServerToAgentFlags,
  uidText,
  uuidV7,
} from "../proto/opamp.js";
import type { FleetRecord, FleetRecords } from "../storage/fleet-records.js";
import { applyReport, Inventory } from "./inventory.js";
import { fleetMetrics, type FleetMetrics } from "./metrics.js";
import { EMPTY_HASH, type Offer, OfferChecker, OfferSigner } from "./offer.js";
import { Renderer } from "./render.js";
import { advance, newRollout, rollBack, type RolloutContext } from "./rollout.js";
import { EMPTY_REVISION, type Revision, revisionOf, revisionRecord } from "./source.js";

// The fleet server's core: it takes agents' status reports (from either transport), keeps the inventory, decides
// which revision each agent runs (the stable one, or another while a rollout moves it), offers the matching
// configuration, and advances the rollout at every tick. Its state (stable revision, per-agent assignments,
// rollouts, revisions) is written to the store at every change, so a restarted server goes on where it was.

const SERVER_CAPABILITIES =
  ServerCapabilities.AcceptsStatus | ServerCapabilities.OffersRemoteConfig | ServerCapabilities.AcceptsEffectiveConfig;
const STATE_ID = "fleet";
const ROLLOUTS_KEPT = 50;
/** A configuration an agent has not confirmed is sent again after this long. */
const RESEND_AFTER_MS = 10_000;

/** An agent's connection: WebSocket connections can be pushed to; HTTP agents get news when they poll. */
export interface Connection {
  transport: "websocket" | "http";
  send?(message: ServerToAgent): void;
  identity?: ClientIdentity | undefined;
}

export interface FleetOptions {
  store: FleetRecords;
  registry: Registry;
  log: Logger;
  staleAfterMs: number;
  forgetAfterMs: number;
  lastSeenPersistMs: number;
  signingKey: SigningKey | undefined;
  now?: () => number;
}

export class Fleet {
  readonly inventory: Inventory;
  readonly rollouts: RolloutRecord[] = [];
  private stable = "";
  private sourceRevision = "";
  private readonly assignments = new Map<string, string>();
  private readonly revisions = new Map<string, Revision>([["", EMPTY_REVISION]]);
  private readonly connections = new Map<string, Connection>();
  private readonly sequence = new Map<string, number>();
  private readonly renderer = new Renderer();
  private readonly checker = new OfferChecker();
  private readonly signer: OfferSigner;
  private readonly metrics: FleetMetrics;
  private readonly refused = new Set<string>();
  /** The last configuration sent to each agent and when: not sent again while the agent has had no time to say. */
  private readonly sent = new Map<string, { hash: string; atMs: number }>();
  private readonly now: () => number;
  private readonly startedMs: number;
  private persisting: Promise<void> = Promise.resolve();
  /** A write of the state failed: the next tick writes it again. */
  private unsaved = false;

  constructor(private readonly options: FleetOptions) {
    this.now = options.now ?? Date.now;
    this.startedMs = this.now();
    this.signer = new OfferSigner(options.signingKey);
    this.inventory = new Inventory({ ...options, now: this.now });
    this.metrics = fleetMetrics(
      options.registry,
      () => this.rollouts,
      () => new Map([["websocket", this.connections.size]]),
    );
  }

  /** The stable revision, the rollout in force (progressing or rolling back), and the source revision taken. */
  get status(): { stable: string; source: string; active: RolloutRecord | undefined } {
    return { stable: this.stable, source: this.sourceRevision, active: this.active() };
  }

  revision(id: string): Revision | undefined {
    return this.revisions.get(id);
  }

  private active(): RolloutRecord | undefined {
    const last = this.rollouts[this.rollouts.length - 1];
    return last?.status === "progressing" || last?.status === "rolling_back" ? last : undefined;
  }

  /** Reads the inventory and the server's progress back from the store. */
  async load(): Promise<void> {
    const store = this.options.store;
    await this.inventory.load();
    const [state] = await store.fleetRecords("state", STATE_ID);
    if (state !== undefined) {
      const s = JSON.parse(state.body) as FleetStateRecord;
      this.stable = s.stable_revision;
      this.sourceRevision = s.source_revision;
      for (const [uid, revision] of Object.entries(s.assignments)) this.assignments.set(uid, revision);
    }
    const rollouts = (await store.fleetRecords("rollout")).map((r) => JSON.parse(r.body) as RolloutRecord);
    rollouts.sort((a, b) => a.created_ms - b.created_ms);
    this.rollouts.push(...rollouts.slice(-ROLLOUTS_KEPT));
    const needed = new Set([
      this.stable,
      this.sourceRevision,
      ...this.assignments.values(),
      this.active()?.revision ?? "",
    ]);
    for (const id of needed) {
      if (id === "" || this.revisions.has(id)) continue;
      const [record] = await store.fleetRecords("revision", id);
      try {
        if (record !== undefined) this.revisions.set(id, revisionOf(JSON.parse(record.body) as RevisionRecord));
      } catch (err) {
        // Agents of a revision that cannot be read are offered nothing new: they keep what they run.
        this.options.log.error({ err, revision: id }, "a stored fleet revision no longer parses");
      }
    }
    for (const agent of this.inventory.agents.values()) agent.connection = "";
  }

  /** The revision the source directory holds; a new one starts a rollout. */
  async takeRevision(revision: Revision): Promise<void> {
    this.revisions.set(revision.id, revision);
    if (revision.id === this.sourceRevision) return;
    await this.options.store.putFleetRecords([
      { kind: "revision", id: revision.id, updatedMs: this.now(), body: JSON.stringify(revisionRecord(revision)) },
    ]);
    const now = this.now();
    const previous = this.active();
    if (previous !== undefined) {
      previous.status = "superseded";
      previous.reason = `superseded by revision ${revision.id.slice(0, 12)}`;
      previous.updated_ms = now;
      previous.events.push({ time_ms: now, message: previous.reason });
    }
    this.sourceRevision = revision.id;
    const rollout = newRollout(revision, now);
    this.rollouts.push(rollout);
    if (this.rollouts.length > ROLLOUTS_KEPT) this.rollouts.splice(0, this.rollouts.length - ROLLOUTS_KEPT);
    this.options.log.info({ rollout: rollout.id, revision: revision.id, commit: revision.commit }, "rollout created");
    await this.persist([previous, rollout]);
    await this.tick();
  }

  /** An operator's rollback of the rollout in force. */
  async rollBackActive(reason: string): Promise<RolloutRecord | undefined> {
    const rollout = this.active();
    if (rollout?.status !== "progressing") return undefined;
    const assigned: string[] = [];
    rollBack(rollout, this.context(assigned), reason);
    this.metrics.rollbacks.inc();
    this.push(assigned);
    await this.persist([rollout]);
    return rollout;
  }

  /** One step of the rollout in force; called every rollout tick. */
  async tick(): Promise<void> {
    const rollout = this.active();
    if (rollout === undefined) {
      if (this.unsaved) await this.persist([this.rollouts[this.rollouts.length - 1]]);
      return;
    }
    const assigned: string[] = [];
    const wasProgressing = rollout.status === "progressing";
    const changed = advance(rollout, this.context(assigned));
    if (wasProgressing && rollout.status === "rolling_back") {
      this.metrics.rollbacks.inc();
      this.options.log.warn({ rollout: rollout.id, reason: rollout.reason }, "rollout halted; rolling back");
    }
    if (rollout.status === "completed") {
      this.stable = rollout.revision;
      for (const [uid, revision] of this.assignments) if (revision === this.stable) this.assignments.delete(uid);
      this.options.log.info({ rollout: rollout.id, revision: rollout.revision }, "rollout completed");
      this.push([...this.inventory.agents.keys()]);
    }
    this.push(assigned);
    if (changed || this.unsaved) await this.persist([rollout]);
  }

  private context(assigned: string[]): RolloutContext {
    const now = this.now();
    const staleAfterMs = this.options.staleAfterMs;
    return {
      nowMs: now,
      staleAfterMs,
      startedMs: this.startedMs,
      agents: this.inventory.agents,
      eligible: (rollout) => {
        const members = new Set(rollout.waves.flatMap((w) => w.members));
        const revision = this.revisions.get(rollout.revision) ?? EMPTY_REVISION;
        return [...this.inventory.agents.values()]
          .filter(
            (a) =>
              !members.has(a.uid) &&
              now - Math.max(a.last_seen_ms, this.startedMs) <= staleAfterMs &&
              !a.disconnected &&
              this.acceptsConfig(a) &&
              (this.renderer.render(revision, this.target(a))?.hash ?? EMPTY_HASH) !== this.offer(a)?.hash,
          )
          .map((a) => a.uid);
      },
      problem: (rollout, uid) => {
        const agent = this.inventory.get(uid);
        const rendered =
          agent && this.renderer.render(this.revisions.get(rollout.revision) ?? EMPTY_REVISION, this.target(agent));
        return rendered === undefined ? undefined : this.checker.problem(rendered);
      },
      desiredHash: (uid) => {
        const agent = this.inventory.get(uid);
        return (agent && this.offer(agent)?.hash) ?? "";
      },
      revisionOf: (uid) => this.assignments.get(uid) ?? this.stable,
      assign: (uid, revision) => {
        if (revision === this.stable) this.assignments.delete(uid);
        else this.assignments.set(uid, revision);
        assigned.push(uid);
      },
    };
  }

  private acceptsConfig(agent: AgentRecord): boolean {
    return (agent.capabilities & AgentCapabilities.AcceptsRemoteConfig) !== 0 && agent.agent_type !== "";
  }

  private target(agent: AgentRecord) {
    return { agentType: agent.agent_type, labels: agent.labels };
  }

  /** What the agent should run now; undefined when nothing is to be offered (or its revision is unreadable). */
  offer(agent: AgentRecord): Offer | undefined {
    if (!this.acceptsConfig(agent)) return undefined;
    const revisionId = this.assignments.get(agent.uid) ?? this.stable;
    const revision = this.revisions.get(revisionId);
    if (revision === undefined) return undefined;
    const rendered = this.renderer.render(revision, this.target(agent));
    const problem = rendered && this.checker.problem(rendered);
    if (problem !== undefined && rendered !== undefined) {
      const key = `${agent.uid}\u0000${rendered.hash}`;
      if (!this.refused.has(key)) {
        this.refused.add(key);
        this.options.log.error(
          { node: agent.node, revision: revisionId, problem },
          "configuration for this agent is invalid; not offered",
        );
      }
      return undefined;
    }
    const offer = this.signer.offer(agent.node, revisionId, rendered, this.now());
    if (agent.desired_hash !== offer.hash || agent.desired_revision !== revisionId) {
      agent.desired_hash = offer.hash;
      agent.desired_revision = revisionId;
      this.inventory.touched(agent.uid, true);
    }
    return offer;
  }

  /**
   * Whether the agent lacks the offer: it has not reported receiving this configuration, and it was not sent to it
   * in the last few seconds (an answer and a push crossing would otherwise send it twice).
   */
  private lacks(agent: AgentRecord, offer: Offer): boolean {
    if (agent.remote_hash === offer.hash) return false;
    // An agent that never had a remote configuration lacks no empty one: sent to an agent that connects before
    // its wave reaches it, it would only be replaced moments later.
    if (agent.remote_hash === "" && offer.hash === EMPTY_HASH) return false;
    const sent = this.sent.get(agent.uid);
    return sent === undefined || sent.hash !== offer.hash || this.now() - sent.atMs > RESEND_AFTER_MS;
  }

  private markSent(uid: string, offer: Offer): void {
    this.sent.set(uid, { hash: offer.hash, atMs: this.now() });
    this.metrics.configsSent.inc();
  }

  /** Sends their configuration to connected agents that lack it. */
  private push(uids: string[]): void {
    for (const uid of new Set(uids)) {
      const connection = this.connections.get(uid);
      const agent = this.inventory.get(uid);
      if (connection?.send === undefined || agent === undefined) continue;
      const offer = this.offer(agent);
      if (offer === undefined || !this.lacks(agent, offer)) continue;
      connection.send({
        instanceUid: Buffer.from(uid.replace(/-/g, ""), "hex"),
        remoteConfig: { config: offer.config, configHash: Buffer.from(offer.hash, "hex") },
      });
      this.markSent(uid, offer);
    }
  }

  /** One status report; the answer to send back. */
  handle(message: AgentToServer, connection: Connection): ServerToAgent {
    const transport = connection.transport;
    if (message.instanceUid.length !== 16) {
      this.metrics.messages.inc({ transport, result: "bad_request" });
      return {
        instanceUid: message.instanceUid,
        errorResponse: { type: ServerErrorType.BadRequest, message: "instance_uid must be 16 bytes" },
      };
    }
    const response: ServerToAgent = { instanceUid: message.instanceUid, capabilities: SERVER_CAPABILITIES };
    let uid = uidText(message.instanceUid);
    if (((message.flags ?? 0) & AgentToServerFlags.RequestInstanceUid) !== 0) {
      const assigned = uuidV7(this.now());
      response.agentIdentification = { newInstanceUid: assigned };
      uid = uidText(assigned);
    }
    const known = this.inventory.get(uid);
    const claimedNode =
      message.agentDescription === undefined
        ? known?.node
        : String(
            message.agentDescription.identifying["bifrost.node.id"] ??
              message.agentDescription.nonIdentifying["bifrost.node.id"] ??
              "",
          ) || undefined;
    if (
      connection.identity !== undefined &&
      claimedNode !== undefined &&
      !certifiesNode(connection.identity, claimedNode)
    ) {
      this.metrics.messages.inc({ transport, result: "bad_request" });
      return {
        instanceUid: message.instanceUid,
        errorResponse: {
          type: ServerErrorType.BadRequest,
          message: `the client certificate is not that of node ${claimedNode}`,
        },
      };
    }
    this.metrics.messages.inc({ transport, result: "ok" });
    const agent = this.inventory.upsert(uid);
    const last = this.sequence.get(uid);
    const gap = last === undefined ? message.agentDescription === undefined : message.sequenceNum !== last + 1;
    this.sequence.set(uid, message.sequenceNum);
    // A new connection (or a server that lost track) starts over: what was sent may not have arrived.
    if (gap) this.sent.delete(uid);
    const changed = applyReport(agent, message, this.now());
    if (gap || agent.agent_type === "") response.flags = ServerToAgentFlags.ReportFullState;
    if (message.agentDisconnect) {
      this.connections.delete(uid);
      this.sequence.delete(uid);
      agent.connection = "";
    } else {
      agent.connection = transport;
      if (connection.send !== undefined) this.connections.set(uid, connection);
    }
    this.inventory.touched(uid, changed || known === undefined);
    const offer = message.agentDisconnect ? undefined : this.offer(agent);
    if (offer !== undefined && this.lacks(agent, offer)) {
      response.remoteConfig = { config: offer.config, configHash: Buffer.from(offer.hash, "hex") };
      this.markSent(uid, offer);
    }
    return response;
  }

  /** A WebSocket connection closed: the agent is no longer reachable by push. */
  closed(uid: string, connection: Connection): void {
    if (this.connections.get(uid) !== connection) return;
    this.connections.delete(uid);
    this.sent.delete(uid);
    this.sequence.delete(uid);
    const agent = this.inventory.get(uid);
    if (agent !== undefined) {
      agent.connection = "";
      this.inventory.touched(uid, true);
    }
  }

  /** Removes an agent from the inventory (a decommissioned node). */
  forget(uid: string): boolean {
    this.assignments.delete(uid);
    return this.inventory.forget(uid);
  }

  /** Writes the state and the given rollouts, one write after another. */
  private persist(rollouts: (RolloutRecord | undefined)[]): Promise<void> {
    const now = this.now();
    const state: FleetStateRecord = {
      stable_revision: this.stable,
      source_revision: this.sourceRevision,
      assignments: Object.fromEntries(this.assignments),
    };
    const records: FleetRecord[] = [
      { kind: "state", id: STATE_ID, updatedMs: now, body: JSON.stringify(state) },
      ...rollouts.flatMap((r) =>
        r === undefined ? [] : [{ kind: "rollout" as const, id: r.id, updatedMs: now, body: JSON.stringify(r) }],
      ),
    ];
    this.persisting = this.persisting
      .then(() => this.options.store.putFleetRecords(records))
      .then(
        () => {
          this.unsaved = false;
        },
        (err: unknown) => {
          this.unsaved = true;
          this.options.log.error({ err }, "writing the fleet's state failed; writing it again at the next tick");
        },
      );
    return this.persisting;
  }
}
