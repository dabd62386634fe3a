import type { Series } from "../../proto/batch.js";
import type {
  AppendResult,
  LabelMatcher,
  LogBatch,
  LogCountSelect,
  LogVolumeSelect,
  LogSelect,
  MetadataBatch,
  MetadataSelect,
  RollupBatch,
  RollupSelect,
  SampleBatch,
  SamplePoints,
  SampleSelect,
  SeriesSelect,
  Store,
} from "../../storage/store.js";
import { compileMatcher } from "../../common/matchers.js";
import { labelsKey, type Labels } from "../../proto/labels.js";

// The store as the rules evaluated at one time see it. A thousand rules over a handful of metrics would otherwise
// send a thousand queries to the store every interval; here the samples of each metric name are read once per
// evaluation time, for the union of the windows asked, and each selector is answered from them in memory. Samples
// that recording rules produced at this time, not yet written, are merged in, so that a rule sees the rules before
// it in its group as Prometheus' sequential group evaluation lets it.

interface Fetched {
  startMs: number;
  endMs: number;
  series: Promise<SamplePoints[]>;
}

export class TickStore implements Store {
  private readonly fetched = new Map<string, Fetched>();
  private readonly recorded = new Map<string, Map<string, SamplePoints>>();
  private readonly matchers = new Map<string, (value: string) => boolean>();

  constructor(private readonly store: Store) {}

  /** Makes series recorded at this evaluation time visible to the rules evaluated after them. */
  addRecorded(tenant: string, series: Series[]): void {
    for (const s of series) {
      const key = `${tenant}\0${s.name}`;
      let byLabels = this.recorded.get(key);
      if (byLabels === undefined) this.recorded.set(key, (byLabels = new Map()));
      const labels: Labels = { ...s.labels, __name__: s.name };
      const points = s.points.map((p) => ({ timeMs: p.timeUnixMs, value: p.value }));
      const existing = byLabels.get(labelsKey(labels));
      if (existing === undefined) byLabels.set(labelsKey(labels), { labels, kind: s.kind, points });
      else existing.points.push(...points);
    }
  }

  async selectSamples(select: SampleSelect): Promise<SamplePoints[]> {
    const name = select.matchers.find((m) => m.name === "__name__" && m.op === "=")?.value;
    if (name === undefined) return this.store.selectSamples(select);
    const key = `${select.tenant}\0${name}`;
    let fetched = this.fetched.get(key);
    if (fetched === undefined || fetched.startMs > select.startMs || fetched.endMs < select.endMs) {
      const startMs = Math.min(select.startMs, fetched?.startMs ?? Infinity);
      const endMs = Math.max(select.endMs, fetched?.endMs ?? -Infinity);
      fetched = {
        startMs,
        endMs,
        series: this.store.selectSamples({
          tenant: select.tenant,
          matchers: [{ name: "__name__", op: "=", value: name }],
          startMs,
          endMs,
        }),
      };
      this.fetched.set(key, fetched);
    }
    const merged = new Map<string, SamplePoints>();
    for (const s of await fetched.series) merged.set(labelsKey(s.labels), s);
    for (const [labels, s] of this.recorded.get(key) ?? []) {
      const stored = merged.get(labels);
      merged.set(
        labels,
        stored === undefined
          ? s
          : { ...stored, points: [...stored.points, ...s.points].sort((a, b) => a.timeMs - b.timeMs) },
      );
    }
    const out: SamplePoints[] = [];
    for (const s of merged.values()) {
      if (!select.matchers.every((m) => this.matches(s.labels, m))) continue;
      const points = s.points.filter((p) => p.timeMs >= select.startMs && p.timeMs < select.endMs);
      if (points.length > 0) out.push({ labels: s.labels, kind: s.kind, points });
    }
    return out;
  }

  private matches(labels: Labels, matcher: LabelMatcher): boolean {
    const key = `${matcher.op}\u0000${matcher.value}`;
    let test = this.matchers.get(key);
    if (test === undefined) this.matchers.set(key, (test = compileMatcher(matcher.op, matcher.value)));
    return test(labels[matcher.name] ?? "");
  }

  migrate(): Promise<void> {
    return this.store.migrate();
  }
  appendLogs(batches: LogBatch[]): Promise<AppendResult> {
    return this.store.appendLogs(batches);
  }
  appendSamples(batches: SampleBatch[]): Promise<AppendResult> {
    return this.store.appendSamples(batches);
  }
  appendRollups(batches: RollupBatch[]): Promise<AppendResult> {
    return this.store.appendRollups(batches);
  }
  appendMetadata(batches: MetadataBatch[]): Promise<void> {
    return this.store.appendMetadata(batches);
  }
  metricMetadata(select: MetadataSelect) {
    return this.store.metricMetadata(select);
  }
  series(select: SeriesSelect): Promise<Labels[]> {
    return this.store.series(select);
  }
  labelNames(select: SeriesSelect): Promise<string[]> {
    return this.store.labelNames(select);
  }
  labelValues(select: SeriesSelect, name: string): Promise<string[]> {
    return this.store.labelValues(select, name);
  }
  selectLogs(select: LogSelect) {
    return this.store.selectLogs(select);
  }
  countLogs(select: LogCountSelect) {
    return this.store.countLogs(select);
  }
  logVolume(select: LogVolumeSelect) {
    return this.store.logVolume(select);
  }
  selectRollups(select: RollupSelect) {
    return this.store.selectRollups(select);
  }
  enforceRetention(nowMs: number): Promise<void> {
    return this.store.enforceRetention(nowMs);
  }
  close(): Promise<void> {
    return this.store.close();
  }
}
