import { labelsOf, type Labels, persistedLabelsText } from "../../proto/labels.js";
import type { LabelMatcher, Store } from "../../storage/store.js";
import { nsToMsFloor } from "../../storage/values.js";
import type { QueryResult } from "../logql/evaluation/evaluator.js";

// /loki/api/v1/index/volume and volume_range: bytes of log lines per group of streams, the largest first, as
// Grafana's Logs Drilldown lists services. Groups are the label names of the selector (or `targetLabels`) with
// aggregateBy=series, or one group per label name with aggregateBy=labels, as Loki's series volume does.

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
    request.targetLabels.length > 0 ? request.targetLabels : [...new Set(request.matchers.map((m) => m.name))];
  if (request.aggregateBy === "labels") {
    const present = request.targetLabels.length > 0 ? names : Object.keys(labels);
    return present.filter((name) => labels[name] !== undefined).map((name) => labelsOf([[name, ""]]));
  }
  return [labelsOf(names.filter((name) => labels[name] !== undefined).map((name) => [name, labels[name]!]))];
}

export async function volume(store: Store, request: VolumeRequest): Promise<QueryResult> {
  const span = request.endNs - request.startNs + 1n;
  const stepNs = request.stepNs ?? span;
  const counts = await store.countLogs({
    tenant: request.tenant,
    matchers: request.matchers,
    startNs: request.startNs,
    endNs: request.endNs + 1n,
    stepNs,
  });
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
