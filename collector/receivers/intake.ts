import type { TenantLimits } from "../../common/limits.js";
import { type Labels, type LogEntry, type LogStream, NO_LABELS } from "../../proto/batch.js";
import { type BatchLimits, checkLabels, ValidationError } from "../../proto/validate.js";
import { labelsText } from "../../storage/fingerprint.js";

// What the collector's own log inputs (syslog, journal, Kubernetes pod logs) share on the way to the batcher:
// entries grouped into streams, each entry checked against its tenant's limits on its own, so that one bad
// message is refused and counted while the others of the same read go on.

export interface IntakeLimits {
  limits: BatchLimits;
  tenantLimits?: TenantLimits | undefined;
}

/** Entries gathered into streams by label set, in arrival order within each stream. */
export class StreamGroups {
  private readonly streams = new Map<string, LogStream>();
  entries = 0;
  bytes = 0;

  add(labels: Labels, entry: LogEntry): void {
    const key = labelsText(labels);
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
      checkLabels(stream.labels, limits, `stream ${labelsText(stream.labels).slice(0, 200)}`);
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
