import { formatFloatG } from "../../../common/go/float-format.js";
import { type MetricMetadata, type MetricType, SampleKind, type Series } from "../../../proto/batch.js";
import type { Labels } from "../../../proto/labels.js";

// Metrics from logs: the values the `metrics` stages keep, by tenant, metric and the entry's stream labels,
// shipped as the collector's own samples (the batcher's series path, as host metrics and scrapes are), so they
// are rolled up and answer PromQL like any other series, whatever later stages do with the lines. A series
// changed by a batch is written with that batch (the same WAL record, so a count never runs ahead of or behind
// the lines acknowledged); every live series again each `resend` period, as a scrape would, so instant
// queries find it; a series idle for its metric's max_idle_duration is forgotten, as Promtail forgets it.

export interface LogMetricFamily {
  /** The full name, prefix included. */
  name: string;
  type: Extract<MetricType, "counter" | "gauge" | "histogram">;
  help: string;
  maxIdleMs: number;
  /** Upper bounds of a histogram's buckets, ascending, +Inf excluded. */
  buckets: readonly number[];
}

interface SeriesState {
  family: LogMetricFamily;
  tenant: string;
  labels: Labels;
  value: number;
  /** A histogram's counts per bucket (not cumulative). */
  bucketCounts: number[];
  count: number;
  updatedMs: number;
}

export interface LogMetricsWrite {
  series: Series[];
  metadata: MetricMetadata[];
}

export class LogMetrics {
  private readonly families = new Map<string, LogMetricFamily>();
  private readonly series = new Map<string, SeriesState>();
  private readonly changed = new Set<SeriesState>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Declares a metric; the same name declared again must be of the same type (as a Prometheus registry requires). */
  family(family: LogMetricFamily): LogMetricFamily {
    const known = this.families.get(family.name);
    if (known !== undefined && known.type !== family.type)
      throw new Error(`metric ${family.name} is already a ${known.type}, not a ${family.type}`);
    this.families.set(family.name, family);
    return family;
  }

  /** Whether any `metrics` stage declared a metric. */
  get declared(): boolean {
    return this.families.size > 0;
  }

  /** Changes the value of `family`'s series with `labels`: `change` gets the current value (0 at first). */
  update(family: LogMetricFamily, tenant: string, labels: Labels, change: (value: number) => number): void {
    const state = this.state(family, tenant, labels);
    state.value = change(state.value);
  }

  observe(family: LogMetricFamily, tenant: string, labels: Labels, value: number): void {
    const state = this.state(family, tenant, labels);
    const bucket = family.buckets.findIndex((bound) => value <= bound);
    state.bucketCounts[bucket === -1 ? family.buckets.length : bucket]!++;
    state.count++;
    state.value += value;
  }

  /** What to write: the series changed since the last call (all live ones with `all`), by tenant. */
  take(all = false): Map<string, LogMetricsWrite> {
    const nowMs = this.now();
    const out = new Map<string, LogMetricsWrite>();
    const families = new Map<string, Set<LogMetricFamily>>();
    const states = all ? this.series.values() : this.changed.values();
    for (const state of states) {
      if (nowMs - state.updatedMs > state.family.maxIdleMs) {
        this.series.delete(seriesKey(state.family, state.tenant, state.labels));
        continue;
      }
      let write = out.get(state.tenant);
      if (write === undefined) out.set(state.tenant, (write = { series: [], metadata: [] }));
      let seen = families.get(state.tenant);
      if (seen === undefined) families.set(state.tenant, (seen = new Set()));
      if (!seen.has(state.family)) {
        seen.add(state.family);
        write.metadata.push({ name: state.family.name, type: state.family.type, help: state.family.help, unit: "" });
      }
      write.series.push(...samplesOf(state, nowMs));
    }
    this.changed.clear();
    return out;
  }

  private state(family: LogMetricFamily, tenant: string, labels: Labels): SeriesState {
    const key = seriesKey(family, tenant, labels);
    let state = this.series.get(key);
    // A family declared again by a configuration reload keeps its series' values when their shape is the same.
    if (state !== undefined && state.family !== family) {
      if (state.family.type === family.type && state.family.buckets.join() === family.buckets.join())
        state.family = family;
      else state = undefined;
    }
    if (state === undefined) {
      const bucketCounts = new Array<number>(family.buckets.length + 1).fill(0);
      state = { family, tenant, labels: { ...labels }, value: 0, bucketCounts, count: 0, updatedMs: 0 };
      this.series.set(key, state);
    }
    state.updatedMs = this.now();
    this.changed.add(state);
    return state;
  }
}

function seriesKey(family: LogMetricFamily, tenant: string, labels: Labels): string {
  let key = `${tenant}\u0000${family.name}`;
  for (const name of Object.keys(labels).sort()) key += `\u0000${name}\u0000${labels[name]}`;
  return key;
}

function samplesOf(state: SeriesState, timeUnixMs: number): Series[] {
  const { family, labels } = state;
  const point = (value: number) => [{ timeUnixMs, value }];
  if (family.type === "counter")
    return [{ name: family.name, labels, kind: SampleKind.Counter, points: point(state.value) }];
  if (family.type === "gauge")
    return [{ name: family.name, labels, kind: SampleKind.Gauge, points: point(state.value) }];
  const out: Series[] = [];
  let cumulative = 0;
  const bounds = [...family.buckets, Infinity];
  bounds.forEach((bound, i) => {
    cumulative += state.bucketCounts[i]!;
    out.push({
      name: `${family.name}_bucket`,
      labels: { ...labels, le: formatFloatG(bound) },
      kind: SampleKind.HistogramBucket,
      points: point(cumulative),
    });
  });
  out.push({ name: `${family.name}_sum`, labels, kind: SampleKind.HistogramSum, points: point(state.value) });
  out.push({ name: `${family.name}_count`, labels, kind: SampleKind.HistogramCount, points: point(state.count) });
  return out;
}
