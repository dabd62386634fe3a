import { labelsOf, type Labels, persistedLabelsText } from "../../proto/labels.js";
import { type LabelMatcher, type LogCountSeries, type Store, VOLUME_ROLLUP_MS } from "../../storage/store.js";
import { nsToMsFloor } from "../../storage/values.js";
import type { QueryResult } from "../logql/evaluation/evaluator.js";

// /loki/api/v1/index/volume and volume_range: bytes of log lines per group of streams, the largest first, as
// Grafana's Logs Drilldown lists services. Groups are the label names of the selector (or `targetLabels`) with
// aggregateBy=series, or one group per label name with aggregateBy=labels, as Loki's series volume does.
//
// The whole minutes of the range are read from the per-minute log volume rollup (log_volume_1m), which both
// stores keep as lines are written, and only the part minutes at its ends from the lines themselves: the same
// answer as counting every line, at the cost of reading one row per stream and minute. Where a volume_range step
// would cut minutes in two, every bucket is counted from the lines.

export interface VolumeRequest {
  tenant: string;
  matchers: LabelMatcher[];
  startNs: bigint;
  endNs: bigint;
  /** Set for volume_range: one point per step bucket starting at startNs. */
  stepNs: bigint | undefined;
  limit: number;
  targetLabels: string[];
  aggregateBy: "series" | "labels";
}

function groupsOf(labels: Labels, request: VolumeRequest): Labels[] {
  const names =
    request.targetLabels.length > 0
      ? request.targetLabels
      : request.matchers.length > 0
        ? [...new Set(request.matchers.map((m) => m.name))]
        : Object.keys(labels);
  if (request.aggregateBy === "labels") {
    const present = request.targetLabels.length > 0 ? names : Object.keys(labels);
    return present.filter((name) => labels[name] !== undefined).map((name) => labelsOf([[name, ""]]));
  }
  return [labelsOf(names.filter((name) => labels[name] !== undefined).map((name) => [name, labels[name]!]))];
}

const MINUTE_NS = BigInt(VOLUME_ROLLUP_MS) * 1_000_000n;

/** Entries and bytes per stream in buckets of `stepNs` from the request's start, through the request's end. */
async function volumeCounts(store: Store, request: VolumeRequest, stepNs: bigint): Promise<LogCountSeries[]> {
  const { tenant, matchers, startNs } = request;
  const endNs = request.endNs + 1n;
  const firstMinute = ((startNs + MINUTE_NS - 1n) / MINUTE_NS) * MINUTE_NS;
  const lastMinute = (endNs / MINUTE_NS) * MINUTE_NS;
  const oneBucket = stepNs >= endNs - startNs;
  const minutesInBuckets = oneBucket || (stepNs % MINUTE_NS === 0n && startNs % MINUTE_NS === 0n);
  // The rollup's buckets are whole minutes since 1970 (bigint division truncates: no rounding before it).
  if (startNs < 0n || lastMinute <= firstMinute || !minutesInBuckets) {
    return store.countLogs({ tenant, matchers, startNs, endNs, stepNs });
  }
  const bucketOf = (ns: bigint) => startNs + ((ns - startNs) / stepNs) * stepNs;
  const parts = [
    store.logVolume({
      tenant,
      matchers,
      startMs: Number(firstMinute / 1_000_000n),
      endMs: Number(lastMinute / 1_000_000n),
      stepMs: Number((oneBucket ? lastMinute - firstMinute : stepNs) / 1_000_000n),
    }),
  ];
  // The part minutes at either end lie within one bucket each: the first, and the one holding the last minute.
  for (const [from, to] of [
    [startNs, firstMinute],
    [lastMinute, endNs],
  ] as const) {
    if (to > from) parts.push(store.countLogs({ tenant, matchers, startNs: from, endNs: to, stepNs: to - from }));
  }
  const merged = new Map<string, { labels: Labels; points: Map<bigint, { count: number; bytes: number }> }>();
  for (const series of (await Promise.all(parts)).flat()) {
    const key = persistedLabelsText(series.labels);
    let entry = merged.get(key);
    if (entry === undefined) merged.set(key, (entry = { labels: series.labels, points: new Map() }));
    for (const point of series.points) {
      const bucket = bucketOf(point.startNs);
      const sum = entry.points.get(bucket) ?? { count: 0, bytes: 0 };
      sum.count += point.count;
      sum.bytes += point.bytes;
      entry.points.set(bucket, sum);
    }
  }
  return [...merged.values()].map(({ labels, points }) => ({
    labels,
    points: [...points].map(([bucket, sum]) => ({ startNs: bucket, ...sum })),
  }));
}

export async function volume(store: Store, request: VolumeRequest): Promise<QueryResult> {
  const span = request.endNs - request.startNs + 1n;
  const stepNs = request.stepNs ?? span;
  const counts = await volumeCounts(store, request, stepNs);
  const groups = new Map<string, { labels: Labels; total: number; buckets: Map<bigint, number> }>();
  for (const series of counts) {
    for (const labels of groupsOf(series.labels, request)) {
      const key = persistedLabelsText(labels);
      let group = groups.get(key);
      if (group === undefined) {
        group = { labels, total: 0, buckets: new Map() };
        groups.set(key, group);
      }
      for (const point of series.points) {
        group.total += point.bytes;
        group.buckets.set(point.startNs, (group.buckets.get(point.startNs) ?? 0) + point.bytes);
      }
    }
  }
  const top = [...groups.values()].sort(
    (a, b) => b.total - a.total || persistedLabelsText(a.labels).localeCompare(persistedLabelsText(b.labels)),
  );
  const kept = top.slice(0, request.limit);
  if (request.stepNs === undefined) {
    const tsMs = nsToMsFloor(request.endNs);
    return { type: "vector", samples: kept.map((group) => ({ labels: group.labels, tsMs, value: group.total })) };
  }
  return {
    type: "matrix",
    series: kept.map((group) => ({
      labels: group.labels,
      points: [...group.buckets]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([startNs, bytes]) => [nsToMsFloor(startNs), bytes] as [number, number]),
    })),
  };
}
