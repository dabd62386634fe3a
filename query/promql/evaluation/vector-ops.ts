import * as shared from "../../vector/aggregate.js";
import { countValues } from "../../vector/aggregate.js";
import { scalarBinary as scalarOp } from "../../../common/vector/arithmetic.js";
import * as binary from "../../vector/binary.js";
import { vectorSetOp } from "../../vector/binary.js";
import { labelReplace as replaceLabel } from "../../vector/label-replace.js";
import {
  EvaluationError,
  PROMETHEUS_SEMANTICS,
  type ArithmeticOp,
  type ComparisonOp,
} from "../../../common/vector/types.js";
import { compileRe2, RegexSyntaxError } from "../../../common/regex.js";
import type { AggregationOp, BinaryOp, VectorMatching } from "../syntax/ast.js";
import { formatFloatF } from "../../../common/go/float-format.js";
import { PromqlEvalError, type Sample } from "./values.js";

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

// The instant-vector operations that PromQL shares with LogQL: aggregations, binary operators, sort and
// label_replace, implemented once in query/vector/. This adapter gives them PromQL's request shapes,
// Prometheus's semantics (IEEE division, metric names dropped) and PromQL's error type.

export interface AggregationRequest {
  op: AggregationOp;
  /** The evaluated parameter of topk, bottomk, quantile (number) and count_values (string). */
  param?: number | string;
  grouping: string[];
  without: boolean;
  samples: Sample[];
}

export interface VectorBinaryRequest {
  op: BinaryOp;
  lhs: Sample[];
  rhs: Sample[];
  matching: VectorMatching;
  /** `bool` after a comparison. */
  bool: boolean;
}

export interface LabelReplaceRequest {
  samples: Sample[];
  destination: string;
  replacement: string;
  source: string;
  /** RE2, anchored at both ends. */
  regex: string;
}

export function aggregate(request: AggregationRequest): Sample[] {
  const grouping = { without: request.without, labels: request.grouping };
  if (request.op === "count_values") {
    const label = String(request.param ?? "");
    if (!LABEL_NAME.test(label)) throw new PromqlEvalError(`invalid label name ${JSON.stringify(label)}`);
    return countValues(request.samples, grouping, label, formatFloatF);
  }
  const param = typeof request.param === "number" ? request.param : undefined;
  if ((request.op === "topk" || request.op === "bottomk") && param !== undefined) {
    return shared.aggregate(request.op, request.samples, grouping, Math.floor(param));
  }
  return shared.aggregate(request.op, request.samples, grouping, param);
}

export function vectorBinary(request: VectorBinaryRequest): Sample[] {
  const { op, lhs, rhs, matching } = request;
  try {
    if (op === "and" || op === "or" || op === "unless")
      return vectorSetOp(op, lhs, rhs, { ...matching, card: "one-to-one" }, PROMETHEUS_SEMANTICS);
    if (matching.card === "many-to-many")
      throw new PromqlEvalError(`many-to-many matching is only allowed for set operators, not ${op}`);
    return binary.vectorBinary(op, lhs, rhs, request.bool, { ...matching, card: matching.card }, PROMETHEUS_SEMANTICS);
  } catch (err) {
    if (err instanceof EvaluationError) throw new PromqlEvalError(err.message);
    throw err;
  }
}

/** `vector op scalar` (or `scalar op vector`), with Prometheus's name dropping and comparison filtering. */
export function vectorScalar(
  op: ArithmeticOp | ComparisonOp,
  samples: Sample[],
  scalar: number,
  scalarOnLeft: boolean,
  bool: boolean,
): Sample[] {
  return binary.vectorScalar(op, samples, scalar, scalarOnLeft, bool, PROMETHEUS_SEMANTICS);
}

export function scalarBinary(op: ArithmeticOp | ComparisonOp, left: number, right: number): number {
  return scalarOp(op, left, right, PROMETHEUS_SEMANTICS);
}

export function sortVector(samples: Sample[], descending: boolean): Sample[] {
  return shared.aggregate(descending ? "sort_desc" : "sort", samples, undefined, undefined);
}

export function labelReplace(request: LabelReplaceRequest): Sample[] {
  if (!LABEL_NAME.test(request.destination))
    throw new PromqlEvalError(`invalid destination label name in label_replace(): ${request.destination}`);
  let regex: RegExp;
  try {
    regex = compileRe2(request.regex, true);
  } catch (err) {
    if (err instanceof RegexSyntaxError)
      throw new PromqlEvalError(`invalid regular expression in label_replace(): ${request.regex}`);
    throw err;
  }
  return replaceLabel(request.samples, request.destination, request.replacement, request.source, regex);
}
