import type { Labels } from "../../proto/labels.js";

// Instant-vector operations shared by the LogQL and PromQL evaluators: aggregation, binary operators with vector
// matching, set operators and label_replace. They work on one step's vector of {labels, value}; the evaluators
// walk the steps. Where Loki and Prometheus differ, `Semantics` says which behaviour to follow.

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
