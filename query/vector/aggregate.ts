import { dropLabels, keepLabels, labelsKey, METRIC_NAME, sortedLabelsOf, type Labels } from "../../proto/labels.js";
import { extreme } from "../../common/vector/arithmetic.js";
import type { Grouping, Sample } from "../../common/vector/types.js";

// Vector aggregations (`sum by (...)`, topk, quantile, ...) and count_values.

export type AggregationOp =
  | "sum"
  | "avg"
  | "min"
  | "max"
  | "count"
  | "stddev"
  | "stdvar"
  | "group"
  | "quantile"
  | "topk"
  | "bottomk"
  | "sort"
  | "sort_desc";

interface Group {
  labels: Labels;
  members: Sample[];
}

function groupLabels(labels: Labels, grouping: Grouping | undefined): Labels {
  if (grouping === undefined) return sortedLabelsOf([]);
  if (!grouping.without) return keepLabels(labels, grouping.labels);
  return dropLabels(labels, [...grouping.labels, METRIC_NAME]);
}

/** The mean, keeping an infinite mean when a finite value or an infinity of the same sign is added. */
function mean(values: readonly number[]): number {
  let result = values[0]!;
  for (let i = 1; i < values.length; i++) {
    const value = values[i]!;
    if (Number.isFinite(result) || Number.isNaN(result)) result += (value - result) / (i + 1);
    else if (Number.isNaN(value) || (!Number.isFinite(value) && value > 0 !== result > 0))
      result += (value - result) / (i + 1);
  }
  return result;
}

/** Population variance by Welford's algorithm, seeded with the first sample as Loki and Prometheus seed it. */
function variance(values: readonly number[]): number {
  let average = values[0]!;
  let sum = 0;
  for (let i = 1; i < values.length; i++) {
    const value = values[i]!;
    const delta = value - average;
    average += delta / (i + 1);
    sum += delta * (value - average);
  }
  return sum / values.length;
}

/** Orders by value, NaN last whichever the direction, keeping the input order between equal values. */
function byValue(descending: boolean): (a: Sample, b: Sample) => number {
  return (a, b) => {
    if (Number.isNaN(a.value)) return Number.isNaN(b.value) ? 0 : 1;
    if (Number.isNaN(b.value)) return -1;
    return descending ? b.value - a.value || 0 : a.value - b.value || 0;
  };
}

/**
 * The φ-quantile of values as Prometheus computes it (quantile(), quantile_over_time): linear interpolation
 * between the two closest ranks, NaN sorting first, φ outside [0, 1] giving ±Inf.
 */
export function quantile(phi: number, values: readonly number[]): number {
  if (values.length === 0 || Number.isNaN(phi)) return NaN;
  if (phi < 0) return -Infinity;
  if (phi > 1) return Infinity;
  const sorted = [...values].sort((a, b) =>
    Number.isNaN(a) ? (Number.isNaN(b) ? 0 : -1) : Number.isNaN(b) ? 1 : a - b,
  );
  const rank = phi * (sorted.length - 1);
  const lower = Math.max(0, Math.floor(rank));
  const upper = Math.min(sorted.length - 1, lower + 1);
  const weight = rank - Math.floor(rank);
  return sorted[lower]! * (1 - weight) + sorted[upper]! * weight;
}

function reduce(
  op: Exclude<AggregationOp, "topk" | "bottomk" | "sort" | "sort_desc">,
  members: readonly Sample[],
  param: number | undefined,
): number {
  switch (op) {
    case "group":
      return 1;
    case "count":
      return members.length;
    case "max":
      return extreme(members, (candidate, best) => candidate > best);
    case "min":
      return extreme(members, (candidate, best) => candidate < best);
  }
  const values = members.map((member) => member.value);
  switch (op) {
    case "quantile":
      return quantile(param ?? NaN, values);
    case "sum":
      return values.reduce((total, value) => total + value);
    case "avg":
      return mean(values);
    case "stdvar":
      return variance(values);
    case "stddev":
      return Math.sqrt(variance(values));
  }
}

/**
 * A vector aggregation over groups of samples (`by` keeps the named labels, `without` drops them; no grouping
 * puts every sample in one group). Groups come out in the order of their first sample. topk/bottomk keep the k
 * largest/smallest samples of each group, NaN last, equal values in input order; sort/sort_desc order each group.
 * `without` also drops `__name__`, in Loki as in Prometheus.
 */
export function aggregate(
  op: AggregationOp,
  vector: readonly Sample[],
  grouping: Grouping | undefined,
  param: number | undefined,
): Sample[] {
  if ((op === "topk" || op === "bottomk") && (param === undefined || param < 1)) return [];
  const groups = new Map<string, Group>();
  for (const sample of vector) {
    const labels = groupLabels(sample.labels, grouping);
    const key = labelsKey(labels);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { labels, members: [sample] });
    else group.members.push(sample);
  }
  const out: Sample[] = [];
  for (const { labels, members } of groups.values()) {
    switch (op) {
      case "topk":
      case "bottomk":
        out.push(...[...members].sort(byValue(op === "topk")).slice(0, param));
        break;
      case "sort":
      case "sort_desc":
        out.push(...[...members].sort(byValue(op === "sort_desc")));
        break;
      default:
        out.push({
          labels,
          value: reduce(op, members, param),
        });
    }
  }
  return out;
}

/**
 * PromQL's count_values: per group, one sample per distinct value, labelled `label` = the value as Go's
 * FormatFloat('f', -1) writes it, counting the samples that have it.
 */
export function countValues(
  vector: readonly Sample[],
  grouping: Grouping | undefined,
  label: string,
  format: (value: number) => string,
): Sample[] {
  const counts = new Map<string, Sample>();
  for (const sample of vector) {
    const base = groupLabels(sample.labels, grouping);
    const labels = sortedLabelsOf([
      ...Object.entries(base).filter(([name]) => name !== label),
      [label, format(sample.value)],
    ]);
    const key = labelsKey(labels);
    const counted = counts.get(key);
    if (counted === undefined) counts.set(key, { labels, value: 1 });
    else counted.value++;
  }
  return [...counts.values()];
}
