import type { Admin } from "kafkajs";
import type { Logger } from "../common/log.js";
import type { AggregatorMetrics } from "./metrics.js";

export interface ConsumerHealthOptions {
  admin: Admin;
  groupId: string;
  topic: string;
  /** The consumer's session timeout: how long without progress (or membership, or an answer) is a stall. */
  sessionTimeoutMs: number;
  /** How often the group's offsets and members are read from Kafka. */
  intervalMs: number;
  metrics: AggregatorMetrics;
  log: Logger;
}

interface PartitionState {
  /** Messages between the group's committed offset and the high watermark. */
  lag: number;
  committed: string;
  /** When the committed offset was last seen to move (by this member's commit or in Kafka). */
  movedAt: number;
}

/**
 * Watches one member of a consumer group from outside the Kafka client, as a Kafka operator's lag monitor
 * (Burrow, kafka-consumer-groups.sh) would: every interval it reads the group's committed offsets, the
 * partitions' high watermarks and the group's members from Kafka. The lag gauge is thus the group's true
 * backlog whatever state the client is in, and readiness fails with the reason when this member is not
 * consuming: the group's coordinator no longer lists it, or a partition it owns has messages waiting and its
 * committed offset has not moved for longer than the session timeout, or Kafka has not answered for as long.
 */
export class ConsumerHealth {
  private readonly partitions = new Map<number, PartitionState>();
  private memberId: string | undefined;
  private assigned: number[] = [];
  private joinedAt = 0;
  private notListedSince: number | undefined;
  private lastAnswerAt = Date.now();
  private lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private connected = false;

  constructor(private readonly options: ConsumerHealthOptions) {}

  start(): void {
    if (this.timer !== undefined) return;
    this.lastAnswerAt = Date.now();
    this.timer = setInterval(() => {
      this.options.metrics.stalled.set(this.stall() === null ? 0 : 1);
      this.probing ??= this.probe().finally(() => (this.probing = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops probing after a last probe (bounded), so that the lag gauge reads the offsets committed at the stop. */
  async stop(): Promise<void> {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      (this.probing ?? Promise.resolve()).then(() => this.probe()),
      new Promise((resolve) => (timer = setTimeout(resolve, 3_000))),
    ]);
    clearTimeout(timer);
    if (this.connected) await this.options.admin.disconnect().catch(() => {});
    this.connected = false;
  }

  /** This member joined the group (again) with these partitions of the topic. */
  joined(memberId: string, partitions: number[]): void {
    this.memberId = memberId;
    this.assigned = partitions;
    this.joinedAt = Date.now();
    this.notListedSince = undefined;
    // Kafka just answered the client; probes that failed before (a topic not created yet) are history.
    this.lastAnswerAt = Math.max(this.lastAnswerAt, this.joinedAt);
  }

  /** This member is out of the group: its client stopped or crashed. */
  left(): void {
    this.memberId = undefined;
    this.assigned = [];
  }

  /** This member committed `offset` for `partition`. */
  committed(partition: number, offset: string): void {
    const state = this.partitions.get(partition);
    const now = Date.now();
    this.options.metrics.lastCommit.set(now / 1000);
    if (state === undefined) this.partitions.set(partition, { lag: 0, committed: offset, movedAt: now });
    else {
      state.committed = offset;
      state.movedAt = now;
    }
  }

  /** null while this member consumes (or has nothing to consume), otherwise why it does not. */
  readiness(): string | null {
    return this.stall();
  }

  private stall(): string | null {
    const now = Date.now();
    const limit = this.options.sessionTimeoutMs;
    const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;
    if (now - this.lastAnswerAt > limit)
      return `Kafka has not answered the group's offsets and members for ${seconds(now - this.lastAnswerAt)}: ${this.lastError ?? "no answer yet"}`;
    if (this.memberId === undefined) return null;
    if (this.notListedSince !== undefined && now - this.notListedSince > limit)
      return `the group's coordinator has not listed this member (${this.memberId}) for ${seconds(now - this.notListedSince)}: its generation is over and it has not re-joined`;
    const stalled = this.assigned.filter((p) => {
      const state = this.partitions.get(p);
      return state !== undefined && state.lag > 0 && now - Math.max(state.movedAt, this.joinedAt) > limit;
    });
    if (stalled.length === 0) return null;
    const waiting = stalled.reduce((n, p) => n + (this.partitions.get(p)?.lag ?? 0), 0);
    const since = Math.min(...stalled.map((p) => Math.max(this.partitions.get(p)!.movedAt, this.joinedAt)));
    return `no offset committed for ${seconds(now - since)} on partition${stalled.length > 1 ? "s" : ""} ${stalled.join(", ")} of ${this.options.topic} while ${waiting} messages wait (session timeout ${seconds(limit)})`;
  }

  private async probe(): Promise<void> {
    const { admin, groupId, topic, metrics } = this.options;
    try {
      if (!this.connected) {
        await admin.connect();
        this.connected = true;
      }
      const [watermarks, offsets, groups] = await Promise.all([
        admin.fetchTopicOffsets(topic),
        admin.fetchOffsets({ groupId, topics: [topic] }),
        admin.describeGroups([groupId]),
      ]);
      const now = Date.now();
      const committed = new Map(
        (offsets.find((t) => t.topic === topic)?.partitions ?? []).map((p) => [p.partition, p.offset]),
      );
      for (const { partition, high, low } of watermarks) {
        const offset = committed.get(partition) ?? "-1";
        // A partition the group never committed is read from its earliest offset (fromBeginning).
        const from = BigInt(offset) >= 0n ? BigInt(offset) : BigInt(low);
        const lag = Number(BigInt(high) > from ? BigInt(high) - from : 0n);
        metrics.lag.set({ topic, partition: String(partition) }, lag);
        const state = this.partitions.get(partition);
        if (state === undefined) this.partitions.set(partition, { lag, committed: offset, movedAt: now });
        else {
          if (state.committed !== offset && BigInt(offset) > BigInt(state.committed)) {
            state.committed = offset;
            state.movedAt = now;
          }
          state.lag = lag;
        }
      }
      const group = groups.groups.find((g) => g.groupId === groupId);
      const listed = group?.members.some((m) => m.memberId === this.memberId) ?? false;
      // Only a settled group's member list is final: during a rebalance members come and go.
      const settled = ["Stable", "Empty", "Dead"].includes(group?.state ?? "");
      if (this.memberId !== undefined && settled && !listed) this.notListedSince ??= now;
      else if (listed) this.notListedSince = undefined;
      this.lastAnswerAt = now;
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.options.log.debug({ err }, "reading the consumer group's offsets failed");
    }
  }
}
