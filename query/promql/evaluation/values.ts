import { dropLabels, labelsKey, METRIC_NAME, type Labels } from "../../../proto/labels.js";

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

/** Prometheus' error for a query over its sample limit (query.max-samples). */
export const TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution";

/** Most functions and arithmetic make a different quantity, so the result loses the metric name. */
export function dropName(labels: Labels): Labels {
  return dropLabels(labels, [METRIC_NAME]);
}

/** Prometheus refuses a vector in which two elements have the same label set (e.g. after dropping names). */
export function assertUniqueLabels(labelSets: Iterable<Labels>, keyOf: (labels: Labels) => string = labelsKey): void {
  const seen = new Set<string>();
  for (const labels of labelSets) {
    const key = keyOf(labels);
    if (seen.has(key)) throw new PromqlEvalError("vector cannot contain metrics with the same labelset");
    seen.add(key);
  }
}
