// Delta temporality sums and histograms made cumulative at the collector, as the OpenTelemetry Collector's
// deltatocumulative processor does (and Prometheus with its otlp-deltatocumulative feature): per series, the
// sum of the deltas since the series' first point, whose start time the series keeps. A point that starts
// before the series did (another writer of the same series) or is not newer than its last point is dropped
// with the reason; a histogram whose bounds change starts over from that point. State is bounded: series idle
// for `maxStaleMs` are forgotten (their next point starts over, which Prometheus reads as a counter reset, as
// after a collector restart), and at `maxStreams` new series are refused until others expire.

export interface DeltaOptions {
  maxStreams: number;
  maxStaleMs: number;
  now?: () => number;
}

/** A histogram's counts: one per bucket (bounds.length + 1), the total, and the sum if sent. */
export interface HistogramCounts {
  bounds: number[];
  counts: number[];
  count: number;
  sum: number | undefined;
}

interface State<T> {
  startNs: bigint;
  timeNs: bigint;
  value: T;
  seenMs: number;
}

/** Why a delta point was not added, for the export's partial_success. */
export class DeltaRefusal {
  constructor(
    readonly kind: "delta_out_of_order" | "delta_streams_full",
    readonly message: string,
  ) {}
}

export interface Accumulated<T> {
  value: T;
  /** Takes the point back out, for an export that is refused after its conversion (and will be sent again). */
  undo: () => void;
}

function addCounts(a: HistogramCounts, b: HistogramCounts, sign: 1 | -1): HistogramCounts {
  return {
    bounds: a.bounds,
    counts: a.counts.map((count, i) => count + sign * (b.counts[i] ?? 0)),
    count: a.count + sign * b.count,
    sum: a.sum === undefined || b.sum === undefined ? undefined : a.sum + sign * b.sum,
  };
}

function sameBounds(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((bound, i) => bound === b[i]);
}

export class DeltaToCumulative {
  /** By series key, least recently updated first (updates move a series to the end). */
  private readonly states = new Map<string, State<number> | State<HistogramCounts>>();
  private readonly now: () => number;

  constructor(private readonly options: DeltaOptions) {
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.states.size;
  }

  /** Forgets series not updated within maxStaleMs. */
  expire(): void {
    const oldest = this.now() - this.options.maxStaleMs;
    for (const [key, state] of this.states) {
      if (state.seenMs > oldest) break;
      this.states.delete(key);
    }
  }

  addNumber(key: string, startNs: bigint, timeNs: bigint, delta: number): Accumulated<number> | DeltaRefusal {
    return this.add(key, startNs, timeNs, delta, {
      merge: (sum, point) => sum + point,
      restart: () => false,
      remove: (sum, point) => sum - point,
    });
  }

  addHistogram(
    key: string,
    startNs: bigint,
    timeNs: bigint,
    delta: HistogramCounts,
  ): Accumulated<HistogramCounts> | DeltaRefusal {
    return this.add(key, startNs, timeNs, delta, {
      merge: (sum, point) => addCounts(sum, point, 1),
      restart: (sum, point) => !sameBounds(sum.bounds, point.bounds),
      remove: (sum, point) => (sameBounds(sum.bounds, point.bounds) ? addCounts(sum, point, -1) : sum),
    });
  }

  private add<T>(
    key: string,
    startNs: bigint,
    timeNs: bigint,
    delta: T,
    ops: { merge(sum: T, point: T): T; restart(sum: T, point: T): boolean; remove(sum: T, point: T): T },
  ): Accumulated<T> | DeltaRefusal {
    const states = this.states as Map<string, State<T>>;
    const before = states.get(key);
    if (before === undefined && states.size >= this.options.maxStreams) {
      this.expire();
      if (states.size >= this.options.maxStreams)
        return new DeltaRefusal(
          "delta_streams_full",
          `delta-to-cumulative state holds its maximum of ${this.options.maxStreams} series (collector.otlp.delta_to_cumulative.max_streams); new delta series are dropped until others go idle`,
        );
    }
    if (before !== undefined && startNs < before.startNs)
      return new DeltaRefusal(
        "delta_out_of_order",
        "a delta point starts before its series did: more than one sender of the same series?",
      );
    if (before !== undefined && timeNs <= before.timeNs)
      return new DeltaRefusal("delta_out_of_order", "a delta point is not newer than its series' last point");
    const after: State<T> =
      before === undefined || ops.restart(before.value, delta)
        ? { startNs, timeNs, value: delta, seenMs: this.now() }
        : { startNs: before.startNs, timeNs, value: ops.merge(before.value, delta), seenMs: this.now() };
    states.delete(key);
    states.set(key, after);
    const undo = () => {
      const current = states.get(key);
      if (current === after) {
        if (before === undefined) states.delete(key);
        else states.set(key, before);
      } else if (current !== undefined && current.startNs === after.startNs) {
        // Updated since by a later export: take just this point's delta out.
        states.set(key, { ...current, value: ops.remove(current.value, delta) });
      }
    };
    return { value: after.value, undo };
  }
}
