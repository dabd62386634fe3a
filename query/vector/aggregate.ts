import { expandReplacement } from "../../common/regex.js";
import { METRIC_NAME, dropLabels, keepLabels, labelsKey, sortedLabelsOf, type Labels } from "../../proto/labels.js";

// Instant-vector operations shared by the LogQL and PromQL evaluators: aggregation, binary operators with vector
// matching, set operators and label_replace. They work on one step's vector of {labels, value}; the evaluators
// walk the steps. Where Loki and Prometheus differ, `Semantics` says which behaviour to follow.

export interface Sample {
  labels: Labels;
  value: number;
}

export interface Semantics {
  /** Loki returns NaN for `x / 0` and `x % 0`; Prometheus follows IEEE 754 (±Inf, NaN). */
  divisionByZero: "nan" | "ieee";
  /**
   * Prometheus drops `__name__` from the results of arithmetic, `bool` comparisons and `without` aggregations,
   * and never matches on it with `ignoring`. Loki has no metric names and keeps every label.
   */
  dropMetricName: boolean;
}

export const LOKI_SEMANTICS: Semantics = { divisionByZero: "nan", dropMetricName: false };
export const PROMETHEUS_SEMANTICS: Semantics = { divisionByZero: "ieee", dropMetricName: true };

/** A query error the user caused (HTTP 400), e.g. a binary operation whose sides cannot be matched. */
export class EvaluationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EvaluationError";
  }
}

export type ArithmeticOp = "+" | "-" | "*" | "/" | "%" | "^" | "atan2";
export type ComparisonOp = "==" | "!=" | ">" | ">=" | "<" | "<=";
export type SetOp = "and" | "or" | "unless";

export interface Grouping {
  without: boolean;
  labels: string[];
}

export interface VectorMatching {
  on: boolean;
  labels: string[];
  card: "one-to-one" | "many-to-one" | "one-to-many";
  include: string[];
}

const DEFAULT_MATCHING: VectorMatching = { on: false, labels: [], card: "one-to-one", include: [] };

export function isComparison(op: string): op is ComparisonOp {
  return op === "==" || op === "!=" || op === ">" || op === ">=" || op === "<" || op === "<=";
}

export function isSetOp(op: string): op is SetOp {
  return op === "and" || op === "or" || op === "unless";
}

/** Go's math.Pow where it differs from `**`: 1^y is 1 and (-1)^±Inf is 1, even for NaN and infinite y. */
function goPow(base: number, exponent: number): number {
  if (base === 1) return 1;
  if (base === -1 && (exponent === Infinity || exponent === -Infinity)) return 1;
  return base ** exponent;
}

export function arithmetic(op: ArithmeticOp, left: number, right: number, semantics: Semantics): number {
  switch (op) {
    case "+":
      return left + right;
    case "-":
      return left - right;
    case "*":
      return left * right;
    case "/":
      if (right === 0 && semantics.divisionByZero === "nan") return NaN;
      return left / right;
    case "%":
      // Go's math.Mod and `%` agree: the sign of the dividend, NaN for a zero divisor or an infinite dividend.
      return left % right;
    case "^":
      return goPow(left, right);
    case "atan2":
      return Math.atan2(left, right);
  }
}

export function compare(op: ComparisonOp, left: number, right: number): boolean {
  switch (op) {
    case "==":
      return left === right;
    case "!=":
      return left !== right;
    case ">":
      return left > right;
    case ">=":
      return left >= right;
    case "<":
      return left < right;
    case "<=":
      return left <= right;
  }
}

/** `a op b` between two scalars; a comparison yields 1 or 0 (scalar comparisons need `bool` in PromQL). */
export function scalarBinary(
  op: ArithmeticOp | ComparisonOp,
  left: number,
  right: number,
  semantics: Semantics,
): number {
  if (isComparison(op)) return compare(op, left, right) ? 1 : 0;
  return arithmetic(op, left, right, semantics);
}

function withoutMetricName(labels: Labels, semantics: Semantics): Labels {
  return semantics.dropMetricName && labels[METRIC_NAME] !== undefined ? dropLabels(labels, [METRIC_NAME]) : labels;
}

/**
 * `vector op scalar`, or `scalar op vector` when `scalarOnLeft`. A comparison keeps the samples for which it holds,
 * with the vector's value, or with `returnBool` returns every sample with 1 or 0.
 */
export function vectorScalar(
  op: ArithmeticOp | ComparisonOp,
  vector: readonly Sample[],
  scalar: number,
  scalarOnLeft: boolean,
  returnBool: boolean,
  semantics: Semantics,
): Sample[] {
  const out: Sample[] = [];
  for (const sample of vector) {
    const left = scalarOnLeft ? scalar : sample.value;
    const right = scalarOnLeft ? sample.value : scalar;
    if (isComparison(op)) {
      const holds = compare(op, left, right);
      if (returnBool) out.push({ labels: withoutMetricName(sample.labels, semantics), value: holds ? 1 : 0 });
      else if (holds) out.push(sample);
    } else {
      out.push({ labels: withoutMetricName(sample.labels, semantics), value: arithmetic(op, left, right, semantics) });
    }
  }
  return out;
}

function signatureOf(labels: Labels, matching: VectorMatching, semantics: Semantics): string {
  if (matching.on) return labelsKey(keepLabels(labels, matching.labels));
  const ignored = semantics.dropMetricName ? [...matching.labels, METRIC_NAME] : matching.labels;
  return labelsKey(dropLabels(labels, ignored));
}

/** The labels of a matched pair: the "many" side's, reduced for one-to-one matching, plus `group_x` labels. */
function resultLabels(many: Labels, one: Labels, matching: VectorMatching, dropName: boolean): Labels {
  let entries = Object.entries(many);
  if (matching.card === "one-to-one") {
    const names = new Set(matching.labels);
    entries = entries.filter(([name]) => names.has(name) === matching.on);
  }
  if (dropName) entries = entries.filter(([name]) => name !== METRIC_NAME);
  const labels = new Map(entries);
  for (const name of matching.include) {
    const value = one[name];
    if (value !== undefined && value !== "") labels.set(name, value);
    else labels.delete(name);
  }
  return sortedLabelsOf(labels);
}

/**
 * `lhs op rhs` between two vectors, for arithmetic and comparison operators, with one-to-one matching unless
 * `group_left` / `group_right` ask for many-to-one / one-to-many.
 */
export function vectorBinary(
  op: ArithmeticOp | ComparisonOp,
  lhs: readonly Sample[],
  rhs: readonly Sample[],
  returnBool: boolean,
  matching: VectorMatching | undefined,
  semantics: Semantics,
): Sample[] {
  const match = matching ?? DEFAULT_MATCHING;
  const oneToMany = match.card === "one-to-many";
  const [many, one] = oneToMany ? [rhs, lhs] : [lhs, rhs];
  const dropName = semantics.dropMetricName && (!isComparison(op) || returnBool);

  const oneBySignature = new Map<string, Sample>();
  for (const sample of one) {
    const signature = signatureOf(sample.labels, match, semantics);
    if (oneBySignature.has(signature)) {
      throw new EvaluationError(
        `found duplicate series on the ${oneToMany ? "left" : "right"} hand-side;` +
          "many-to-many matching not allowed: matching labels must be unique on one side",
      );
    }
    oneBySignature.set(signature, sample);
  }

  const matched = new Map<string, Set<string>>();
  const out: Sample[] = [];
  for (const sample of many) {
    const signature = signatureOf(sample.labels, match, semantics);
    const other = oneBySignature.get(signature);
    if (other === undefined) continue;
    const labels = resultLabels(sample.labels, other.labels, match, dropName);
    const seen = matched.get(signature);
    if (match.card === "one-to-one") {
      if (seen !== undefined) {
        throw new EvaluationError(
          "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
        );
      }
      matched.set(signature, new Set());
    } else {
      const key = labelsKey(labels);
      if (seen === undefined) matched.set(signature, new Set([key]));
      else if (seen.has(key)) {
        throw new EvaluationError("multiple matches for labels: grouping labels must ensure unique matches");
      } else seen.add(key);
    }
    const [left, right] = oneToMany ? [other, sample] : [sample, other];
    if (isComparison(op)) {
      const holds = compare(op, left.value, right.value);
      if (returnBool) out.push({ labels, value: holds ? 1 : 0 });
      else if (holds) out.push({ labels, value: left.value });
    } else {
      out.push({ labels, value: arithmetic(op, left.value, right.value, semantics) });
    }
  }
  return out;
}

/** `and`, `or`, `unless`, matching on all labels unless `on` / `ignoring` say otherwise. */
export function vectorSetOp(
  op: SetOp,
  lhs: readonly Sample[],
  rhs: readonly Sample[],
  matching: VectorMatching | undefined,
  semantics: Semantics,
): Sample[] {
  const match = matching ?? DEFAULT_MATCHING;
  const signature = (sample: Sample) => signatureOf(sample.labels, match, semantics);
  switch (op) {
    case "and": {
      const right = new Set(rhs.map(signature));
      return lhs.filter((sample) => right.has(signature(sample)));
    }
    case "or": {
      const left = new Set(lhs.map(signature));
      return [...lhs, ...rhs.filter((sample) => !left.has(signature(sample)))];
    }
    case "unless": {
      const right = new Set(rhs.map(signature));
      return lhs.filter((sample) => !right.has(signature(sample)));
    }
  }
}

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
  values: number[],
  param: number | undefined,
): number {
  switch (op) {
    case "group":
      return 1;
    case "quantile":
      return quantile(param ?? NaN, values);
    case "sum":
      return values.reduce((total, value) => total + value);
    case "avg":
      return mean(values);
    case "count":
      return values.length;
    case "max":
      return values.reduce((best, value) => (best < value || Number.isNaN(best) ? value : best));
    case "min":
      return values.reduce((best, value) => (best > value || Number.isNaN(best) ? value : best));
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
          value: reduce(
            op,
            members.map((member) => member.value),
            param,
          ),
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

/**
 * label_replace: where the source label's value matches `regex` (anchored), sets `dst` to the expanded
 * replacement, or removes it when the expansion is empty. Samples that do not match pass unchanged.
 */
export function labelReplace(
  vector: readonly Sample[],
  dst: string,
  replacement: string,
  src: string,
  regex: RegExp,
): Sample[] {
  return vector.map((sample) => {
    const match = regex.exec(sample.labels[src] ?? "");
    if (match === null) return sample;
    const value = expandReplacement(replacement, match);
    const entries = Object.entries(sample.labels).filter(([name]) => name !== dst);
    if (value !== "") entries.push([dst, value]);
    return { labels: sortedLabelsOf(entries), value: sample.value };
  });
}
