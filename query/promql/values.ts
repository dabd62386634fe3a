import type { Labels } from "../../proto/batch.js";
import { compareText } from "../../storage/values.js";

// What PromQL expressions evaluate to, and the label-set helpers the evaluator and the API share.

/** One element of an instant vector. */
export interface Sample {
  labels: Labels;
  value: number;
}

export interface Point {
  timeMs: number;
  value: number;
}

/** One series of a range vector, or of a range query's result. */
export interface Series {
  labels: Labels;
  points: Point[];
}

export type Value =
  | { type: "scalar"; value: number }
  | { type: "string"; value: string }
  | { type: "vector"; samples: Sample[] }
  | { type: "matrix"; series: Series[] };

/** Thrown for errors that Prometheus reports while evaluating (errorType "execution"). */
export class PromqlEvalError extends Error {
  override readonly name = "PromqlEvalError";
}

const SEPARATOR = "\xff";

/** Label names in byte order, as Prometheus keeps a label set. */
export function sortedNames(labels: Labels): string[] {
  return Object.keys(labels).sort(compareText);
}

/** A key that is equal for equal label sets. */
export function labelsKey(labels: Labels): string {
  return sortedNames(labels)
    .map((name) => `${name}${SEPARATOR}${labels[name]}`)
    .join(SEPARATOR);
}

/** Prometheus' labels.Compare: name by name, then value by value, a prefix first. */
export function compareLabels(a: Labels, b: Labels): number {
  const an = sortedNames(a);
  const bn = sortedNames(b);
  for (let i = 0; i < Math.min(an.length, bn.length); i++) {
    const byName = compareText(an[i]!, bn[i]!);
    if (byName !== 0) return byName;
    const byValue = compareText(a[an[i]!]!, b[bn[i]!]!);
    if (byValue !== 0) return byValue;
  }
  return an.length - bn.length;
}

export function withoutLabels(labels: Labels, drop: readonly string[]): Labels {
  const out: Labels = Object.create(null);
  for (const name in labels) if (!drop.includes(name)) out[name] = labels[name]!;
  return out;
}

/** Most functions and arithmetic make a different quantity, so the result loses the metric name. */
export function dropName(labels: Labels): Labels {
  return withoutLabels(labels, ["__name__"]);
}

/** Prometheus refuses a vector in which two elements have the same label set (e.g. after dropping names). */
export function assertUniqueLabels(labelSets: Iterable<Labels>): void {
  const seen = new Set<string>();
  for (const labels of labelSets) {
    const key = labelsKey(labels);
    if (seen.has(key)) throw new PromqlEvalError("vector cannot contain metrics with the same labelset");
    seen.add(key);
  }
}
