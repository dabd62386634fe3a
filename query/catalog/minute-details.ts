import type { Labels } from "../../proto/labels.js";
import type { LogCountSeries } from "../../storage/store.js";
import { MINUTE_MS, type StreamTest } from "./tenant-catalog.js";

// The entries of a few recent minutes by stream and timestamp, as Store.countLogs counts them (an entry repeated by
// several batches once): what the part minutes at the ends of an index/stats or index/volume range need, which the
// per-minute volume cannot tell. A minute is read from the store once and kept until the catalog sees it change.

const MINUTE_NS = BigInt(MINUTE_MS) * 1_000_000n;

/** One stream's entries in the minute: parallel columns of nanoseconds into the minute (ascending), counts, bytes. */
interface StreamDetail {
  labels: Labels;
  offsets: number[];
  counts: number[];
  bytes: number[];
}

export class MinuteDetails {
  /** In the order last used, the least recently used first. */
  private readonly minutes = new Map<number, StreamDetail[]>();
  private readonly pending = new Map<number, { epoch: number; read: Promise<StreamDetail[]> }>();
  /** Moves at each invalidation: a read begun before one may hold what changed, and is not kept. */
  private epoch = 0;

  /**
   * @param read the minute's entries from the store, counted per timestamp
   * @param maxMinutes most minutes kept
   */
  constructor(
    private readonly read: (minuteNs: bigint) => Promise<LogCountSeries[]>,
    private readonly maxMinutes: number,
  ) {}

  /** Forgets the minutes that overlap [fromMs, toMs]. */
  invalidate(fromMs: number, toMs: number): void {
    this.epoch++;
    for (const minute of this.minutes.keys()) {
      if (minute + MINUTE_MS > fromMs && minute <= toMs) this.minutes.delete(minute);
    }
  }

  clear(): void {
    this.epoch++;
    this.minutes.clear();
  }

  private async get(minuteMs: number): Promise<StreamDetail[]> {
    const kept = this.minutes.get(minuteMs);
    if (kept !== undefined) {
      this.minutes.delete(minuteMs);
      this.minutes.set(minuteMs, kept);
      return kept;
    }
    const pending = this.pending.get(minuteMs);
    if (pending !== undefined && pending.epoch === this.epoch) return pending.read;
    const epoch = this.epoch;
    const minuteNs = BigInt(minuteMs) * 1_000_000n;
    const read = this.read(minuteNs).then((series) => {
      const detail = series.map(({ labels, points }) => ({
        labels,
        offsets: points.map((point) => Number(point.startNs - minuteNs)),
        counts: points.map((point) => point.count),
        bytes: points.map((point) => point.bytes),
      }));
      if (this.epoch === epoch) {
        this.minutes.set(minuteMs, detail);
        for (const oldest of this.minutes.keys()) {
          if (this.minutes.size <= this.maxMinutes) break;
          this.minutes.delete(oldest);
        }
      }
      return detail;
    });
    this.pending.set(minuteMs, { epoch, read });
    try {
      return await read;
    } finally {
      if (this.pending.get(minuteMs)?.read === read) this.pending.delete(minuteMs);
    }
  }

  /**
   * Store.countLogs of the streams passing `test` over [startNs, endNs), a part of one minute counted as one bucket
   * starting at startNs, in the order of the store's answer for the whole minute (sorted by label text).
   */
  async count(test: StreamTest, startNs: bigint, endNs: bigint): Promise<LogCountSeries[]> {
    const minuteNs = (startNs / MINUTE_NS) * MINUTE_NS;
    const detail = await this.get(Number(minuteNs / 1_000_000n));
    const from = Number(startNs - minuteNs);
    const to = Number(endNs - minuteNs);
    const out: LogCountSeries[] = [];
    for (const stream of detail) {
      if (!test(stream.labels)) continue;
      let count = 0;
      let bytes = 0;
      for (let i = 0; i < stream.offsets.length; i++) {
        const offset = stream.offsets[i]!;
        if (offset < from || offset >= to) continue;
        count += stream.counts[i]!;
        bytes += stream.bytes[i]!;
      }
      if (count > 0) out.push({ labels: stream.labels, points: [{ startNs, count, bytes }] });
    }
    return out;
  }
}
