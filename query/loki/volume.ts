import { labelsOf, type Labels, persistedLabelsText } from "../../proto/labels.js";
import { type LabelMatcher, type LogCountSeries, VOLUME_ROLLUP_MS } from "../../storage/store.js";
import type { IndexReads } from "../catalog/index-catalog.js";
import { nsToMsFloor } from "../../storage/values.js";
import { ceilToStep, floorToStep } from "./step-align.js";
import type { QueryResult } from "../logql/evaluation/evaluator.js";

// /loki/api/v1/index/volume and volume_range: bytes of log lines per group of streams, the largest first, as
// Grafana's Logs Drilldown lists services. Groups are the label names of the selector (or `targetLabels`) with
// aggregateBy=series, or one group per label name with aggregateBy=labels, as Loki's series volume does.
//
// The whole minutes of the range are read from the per-minute log volume rollup (log_volume_1m), which both
// stores keep as lines are written, and only the part minutes at its ends from the lines themselves: the same
// answer as counting every line, at the cost of reading one row per stream and minute. Where a volume_range step
// is not whole minutes, every bucket is counted from the lines.

export interface VolumeRequest {
  tenant: string;
  matchers: LabelMatcher[];
  startNs: bigint;
  endNs: bigint;
  /** Set for volume_range: one point per bucket ending on a multiple of the step, and one ending at endNs. */
  stepNs: bigint | undefined;
  limit: number;
  targetLabels: string[];
  aggregateBy: "series" | "labels";
}

/**
 * The text of a stream's labels, kept for label objects that live on (the index catalog's streams and part
 * minutes), so that counting distinct streams does not render the same text on every request.
 */
const streamTexts = new WeakMap<Labels, string>();

function streamText(labels: Labels): string {
  let text = streamTexts.get(labels);
  if (text === undefined) {
    text = persistedLabelsText(labels);
    streamTexts.set(labels, text);
  }
  return text;
}

/** A group's labels and their text, its identity. */
interface GroupOf {
  labels: Labels;
  key: string;
}

/**
 * The groups of a stream's labels. `made` keeps the groups made for the request, by label name for
 * aggregateBy=labels and by the grouped values for aggregateBy=series, so that streams of one group share it.
 */
function groupsOf(labels: Labels, request: VolumeRequest, made: Map<string, GroupOf>): GroupOf[] {
  const names =
    request.targetLabels.length > 0
      ? request.targetLabels
      : request.matchers.length > 0
        ? [...new Set(request.matchers.map((m) => m.name))]
        : Object.keys(labels);
  if (request.aggregateBy === "labels") {
    const present = request.targetLabels.length > 0 ? names : Object.keys(labels);
    return present
      .filter((name) => labels[name] !== undefined)
      .map((name) => {
        let group = made.get(name);
        if (group === undefined) {
          const only = labelsOf([[name, ""]]);
          group = { labels: only, key: persistedLabelsText(only) };
          made.set(name, group);
        }
        return group;
      });
  }
  // Names and values apart by characters no label name holds: the same text for the same group only.
  let signature = "";
  for (const name of names) {
    const value = labels[name];
    if (value !== undefined) signature += `${name}\u0000${value}\u0001`;
  }
  let group = made.get(signature);
  if (group === undefined) {
    const kept = labelsOf(names.filter((name) => labels[name] !== undefined).map((name) => [name, labels[name]!]));
    group = { labels: kept, key: persistedLabelsText(kept) };
    made.set(signature, group);
  }
  return [group];
}

const MINUTE_NS = BigInt(VOLUME_ROLLUP_MS) * 1_000_000n;
const MS_NS = 1_000_000n;

/**
 * A request's buckets: one over the whole range for index/volume; for volume_range, as Loki splits it, buckets
 * that end on multiples of the step (each point stamped a millisecond before that multiple) and a last one that
 * ends at the request's end.
 */
class Buckets {
  private readonly lastKey: bigint;

  constructor(
    private readonly request: VolumeRequest,
    readonly stepNs: bigint | undefined,
  ) {
    this.lastKey = stepNs === undefined ? request.startNs : floorToStep(request.endNs - 1n, stepNs);
  }

  /** The bucket holding a time of the range, by its key. */
  keyOf(ns: bigint): bigint {
    if (this.stepNs === undefined) return this.request.startNs;
    const key = floorToStep(ns, this.stepNs);
    return key > this.lastKey ? this.lastKey : key;
  }

  stampMs(key: bigint): number {
    if (this.stepNs === undefined || key >= this.lastKey) return nsToMsFloor(this.request.endNs);
    return nsToMsFloor(key + this.stepNs - MS_NS);
  }
}

/**
 * Entries and bytes per stream, the rollup read for the whole minutes and the lines for the rest: a stream may
 * come back once per part, and its points are at the start of what they count (Buckets.keyOf places them).
 */
async function volumeCounts(store: IndexReads, request: VolumeRequest): Promise<LogCountSeries[]> {
  const { tenant, matchers, startNs } = request;
  const endNs = request.endNs + 1n;
  const firstMinute = ((startNs + MINUTE_NS - 1n) / MINUTE_NS) * MINUTE_NS;
  const lastMinute = (endNs / MINUTE_NS) * MINUTE_NS;
  const stepNs = request.stepNs;
  const linesOf = (from: bigint, to: bigint, step: bigint) =>
    store.countLogs({ tenant, matchers, startNs: from, endNs: to, stepNs: step });
  // Bucket bounds fall on whole minutes when the step is whole minutes (its multiples are), so each minute of
  // the rollup lies in one bucket; the rollup's minutes are counted since 1970 (bigint division truncates).
  const minutesInBuckets = stepNs === undefined || stepNs % MINUTE_NS === 0n;
  const parts: Promise<LogCountSeries[]>[] = [];
  if (startNs < 0n || lastMinute <= firstMinute || !minutesInBuckets) {
    // Counted from the first step multiple on, so that no count straddles a bucket's bound.
    const firstBound = stepNs === undefined ? endNs : ceilToStep(startNs, stepNs);
    if (firstBound > startNs) parts.push(linesOf(startNs, firstBound, firstBound - startNs));
    if (endNs > firstBound) parts.push(linesOf(firstBound, endNs, stepNs!));
  } else {
    const minutes = (from: bigint, to: bigint, step: bigint) =>
      store.logVolume({
        tenant,
        matchers,
        startMs: Number(from / MS_NS),
        endMs: Number(to / MS_NS),
        stepMs: Number(step / MS_NS),
      });
    // The rollup buckets from its first minute, so the minutes before the first step multiple are read apart.
    const firstBound = stepNs === undefined ? lastMinute : ceilToStep(firstMinute, stepNs);
    if (firstBound >= lastMinute) parts.push(minutes(firstMinute, lastMinute, lastMinute - firstMinute));
    else {
      if (firstBound > firstMinute) parts.push(minutes(firstMinute, firstBound, firstBound - firstMinute));
      parts.push(minutes(firstBound, lastMinute, stepNs!));
    }
    // The part minutes at either end lie within one bucket each.
    for (const [from, to] of [
      [startNs, firstMinute],
      [lastMinute, endNs],
    ] as const) {
      if (to > from) parts.push(linesOf(from, to, to - from));
    }
  }
  // A stream's parts are left apart: every later step sums them, by group and bucket, without merging them first.
  return (await Promise.all(parts)).flat();
}

/**
 * /loki/api/v1/index/stats: the streams with entries in the range and their entries and bytes, read as volume is
 * (the rollup for whole minutes, the lines for the part minutes at the ends) rather than by counting every line.
 * The range ends at `lastNs` inclusive, as volume's does.
 */
export async function indexStats(
  store: IndexReads,
  tenant: string,
  matchers: LabelMatcher[],
  startNs: bigint,
  lastNs: bigint,
): Promise<{ streams: number; entries: number; bytes: number }> {
  const request: VolumeRequest = {
    tenant,
    matchers,
    startNs,
    endNs: lastNs,
    stepNs: undefined,
    limit: 0,
    targetLabels: [],
    aggregateBy: "series",
  };
  const counts = await volumeCounts(store, request);
  const streams = new Set<string>();
  let entries = 0;
  let bytes = 0;
  for (const series of counts) {
    if (series.points.length > 0) streams.add(streamText(series.labels));
    for (const point of series.points) {
      entries += point.count;
      bytes += point.bytes;
    }
  }
  return { streams: streams.size, entries, bytes };
}

export async function volume(store: IndexReads, request: VolumeRequest): Promise<QueryResult> {
  const buckets = new Buckets(request, request.stepNs);
  const counts = await volumeCounts(store, request);
  const groups = new Map<string, { labels: Labels; total: number; buckets: Map<bigint, number> }>();
  const made = new Map<string, GroupOf>();
  for (const series of counts) {
    for (const { labels, key } of groupsOf(series.labels, request, made)) {
      let group = groups.get(key);
      if (group === undefined) {
        group = { labels, total: 0, buckets: new Map() };
        groups.set(key, group);
      }
      for (const point of series.points) {
        const bucket = buckets.keyOf(point.startNs);
        group.total += point.bytes;
        group.buckets.set(bucket, (group.buckets.get(bucket) ?? 0) + point.bytes);
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
        .map(([key, bytes]) => [buckets.stampMs(key), bytes] as [number, number]),
    })),
  };
}
