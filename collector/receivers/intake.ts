import type { IngestContract } from "../../common/ingest-contract.js";
import type { TenantLimits } from "../../common/limits.js";
import type { Logger } from "../../common/log.js";
import { type LogEntry, type LogStream } from "../../proto/batch.js";
import { type Labels, NO_LABELS } from "../../proto/labels.js";
import { type BatchLimits, checkLabels, ValidationError } from "../../proto/validate.js";
import { persistedLabelsText } from "../../proto/labels.js";
import type { Batcher } from "../buffer/batcher.js";
import { WalFullError } from "../buffer/wal.js";
import type { TenantRateLimiter } from "../../common/rate-limit.js";

// What the collector's own log inputs (syslog, journal, Kubernetes pod logs) share on the way to the batcher:
// entries grouped into streams, each entry checked against its tenant's limits on its own, so that one bad
// message is refused and counted while the others of the same read go on.

export interface IntakeLimits {
  limits: BatchLimits;
  tenantLimits?: TenantLimits | undefined;
  /** The ingestion contract (common/ingest-contract.ts): with it, entries are screened as the receivers check them. */
  contract?: Pick<IngestContract, "screen"> | undefined;
}

/** Entries gathered into streams by label set, in arrival order within each stream. */
export class StreamGroups {
  private readonly streams = new Map<string, LogStream>();
  entries = 0;
  bytes = 0;

  add(labels: Labels, entry: LogEntry): void {
    const key = persistedLabelsText(labels);
    let stream = this.streams.get(key);
    if (!stream) {
      stream = { labels, entries: [] };
      this.streams.set(key, stream);
    }
    stream.entries.push(entry);
    this.entries++;
    this.bytes += entry.line.length;
  }

  get size(): number {
    return this.entries;
  }

  list(): LogStream[] {
    return [...this.streams.values()];
  }
}

export interface Screened {
  streams: LogStream[];
  entries: number;
  /** Entries refused, by ValidationError reason, with the first message of each. */
  refused: Map<string, { count: number; message: string }>;
}

/** Splits `streams` into what the tenant's limits accept and what they refuse, entry by entry. */
export function screen(tenant: string, streams: LogStream[], options: IntakeLimits): Screened {
  if (options.contract) {
    const { data, entries, refused } = options.contract.screen(tenant, { streams });
    return { streams: data.streams ?? [], entries, refused };
  }
  const limits = options.tenantLimits?.batchLimits(tenant, options.limits) ?? options.limits;
  const refused = new Map<string, { count: number; message: string }>();
  const refuse = (err: unknown, count: number) => {
    if (!(err instanceof ValidationError)) throw err;
    const known = refused.get(err.reason);
    if (known) known.count += count;
    else
      refused.set(err.reason, {
        count,
        message: options.tenantLimits?.explain(tenant, err) ?? err.message,
      });
  };
  const out: LogStream[] = [];
  let entries = 0;
  for (const stream of streams) {
    try {
      checkLabels(stream.labels, limits, `stream ${persistedLabelsText(stream.labels).slice(0, 200)}`);
    } catch (err) {
      refuse(err, stream.entries.length);
      continue;
    }
    const kept = stream.entries.filter((entry) => {
      try {
        if (entry.line.length * 3 > limits.max_line_bytes && Buffer.byteLength(entry.line) > limits.max_line_bytes)
          throw new ValidationError(
            "line_too_long",
            `a line of ${Buffer.byteLength(entry.line)} bytes, the limit is ${limits.max_line_bytes}`,
          );
        if (entry.metadata !== NO_LABELS) checkLabels(entry.metadata, limits, "structured metadata");
        return true;
      } catch (err) {
        refuse(err, 1);
        return false;
      }
    });
    if (kept.length === 0) continue;
    out.push(kept.length === stream.entries.length ? stream : { labels: stream.labels, entries: kept });
    entries += kept.length;
  }
  return { streams: out, entries, refused };
}

/** Screened streams read together, with what the reader wants back once they are in the disk buffer. */
export interface IntakeGroup<T = undefined> extends Screened {
  bytes: number;
  /** The reader's own: the journal's cursor after the group's last entry. */
  mark: T;
}

export interface OrderedIntakeOptions<T> {
  tenant: string;
  batcher: Pick<Batcher, "add" | "flush">;
  rate?: TenantRateLimiter | undefined;
  /** Bytes handed to the batcher and not yet written before the source is no longer read. */
  maxPendingBytes: number;
  /** Stop (true) or go on (false) reading the source. */
  hold(hold: boolean): void;
  /** Waiting (true) for room in the disk buffer or for the tenant's rate, or no longer (false). */
  onWaiting?: (waiting: boolean) => void;
  onAccepted(group: IntakeGroup<T>): void;
  log?: Logger | undefined;
}

const RETRY_MS = 1000;

/**
 * Hands what a source reads to the batcher in order, and holds the source back instead of dropping anything:
 * while more than `maxPendingBytes` are on their way into the disk buffer, while the tenant is over its rate,
 * and while the buffer is full under policy `block` (retried every second). What was read stays queued, in
 * order, until the buffer takes it; the queue is bounded by the window plus one read of the source.
 */
export class OrderedIntake<T = undefined> {
  private readonly queue: (IntakeGroup<T> & { order: number })[] = [];
  private last: (IntakeGroup<T> & { order: number }) | undefined;
  private inflight = 0;
  private order = 0;
  private timer: NodeJS.Timeout | undefined;
  private held = false;
  private waiting = false;
  private settled: (() => void) | undefined;

  constructor(private readonly options: OrderedIntakeOptions<T>) {}

  push(group: IntakeGroup<T>): void {
    if (group.entries === 0) {
      // Nothing to write, but its mark (a cursor past refused entries) must follow what was read before it:
      // it rides on the newest group not yet written, or is accepted now when everything before it is.
      if (this.last && !this.idle) this.last.mark = group.mark;
      else this.options.onAccepted(group);
      return;
    }
    this.last = { ...group, order: this.order++ };
    this.queue.push(this.last);
    this.pump();
  }

  get idle(): boolean {
    return this.queue.length === 0 && this.inflight === 0;
  }

  /** Entries read and not yet in the disk buffer. */
  get pendingEntries(): number {
    return this.queue.reduce((n, group) => n + group.entries, 0);
  }

  /** Waits, up to `ms`, until what was read is in the disk buffer; then stops retrying. */
  async drain(ms: number): Promise<void> {
    if (!this.idle)
      await new Promise<void>((resolve) => {
        const timeout = setTimeout(resolve, ms);
        this.settled = () => {
          clearTimeout(timeout);
          resolve();
        };
      });
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flow();
  }

  private pump(): void {
    if (this.timer) return;
    const { tenant, rate, maxPendingBytes } = this.options;
    // Within the window: a retry after a full buffer must not hand the batcher everything read so far as one
    // batch, which might not fit the buffer at all.
    while (this.queue.length > 0 && this.inflight < maxPendingBytes) {
      const head = this.queue[0]!;
      const wait = rate?.take(tenant, head.entries) ?? 0;
      if (wait > 0) return this.waitFor(wait * 1000);
      this.queue.shift();
      this.send(head);
    }
    // A full window waits for its batch: written now, not when it is max_age_ms old, or the window would cap
    // a fast sender at one window per max_age_ms.
    if (this.queue.length > 0 && this.timer === undefined) this.options.batcher.flush();
    this.flow();
  }

  private send(group: IntakeGroup<T> & { order: number }): void {
    this.inflight += group.bytes;
    this.options.batcher.add(this.options.tenant, { streams: group.streams }).then(
      () => {
        this.inflight -= group.bytes;
        this.options.onAccepted(group);
        this.pump();
      },
      (err: unknown) => {
        this.inflight -= group.bytes;
        if (!(err instanceof WalFullError)) this.options.log?.error({ err }, "the batcher refused entries; retrying");
        // Back in the queue where it was read, before what was read after it.
        const at = this.queue.findIndex((queued) => queued.order > group.order);
        this.queue.splice(at < 0 ? this.queue.length : at, 0, group);
        this.waitFor(RETRY_MS);
      },
    );
  }

  private waitFor(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, ms);
    this.flow();
  }

  private flow(): void {
    const waiting = this.timer !== undefined;
    const hold = waiting || this.queue.length > 0 || this.inflight >= this.options.maxPendingBytes;
    if (hold !== this.held) {
      this.held = hold;
      this.options.hold(hold);
    }
    // Reported only while waiting for the buffer or the rate; the window closes and opens all the time.
    if (waiting !== this.waiting) {
      this.waiting = waiting;
      this.options.onWaiting?.(waiting);
    }
    if (this.idle) this.settled?.();
  }
}
