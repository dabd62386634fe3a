import { RegexSyntaxError } from "../../regex.js";
import { goParseFloat } from "../../go/parse.js";
import { isSetOp, scalarBinary } from "../../vector/arithmetic.js";
import { LOKI_SEMANTICS } from "../../vector/types.js";
import { compileLineTest } from "../pipeline/line.js";
import { StageError } from "../pipeline/parsers.js";
import { PatternSyntaxError } from "../pipeline/pattern.js";
import {
  GROUPING_RANGE_OPS,
  LINE_RANGE_OPS,
  UNWRAPPABLE_RANGE_OPS,
  type BinaryOp,
  type Grouping,
  type LineFilterStage,
  type LogExpr,
  type RangeOp,
  type VectorOp,
} from "./ast.js";

// The checks Loki runs on the nodes it builds while parsing (pkg/logql/syntax), with its messages.

/** Why Loki would refuse a value of a line filter (a regexp, a pattern, an ip()) when it runs the query. */
export function lineFilterProblem(op: LineFilterStage["op"], value: string, ip: boolean): string | undefined {
  try {
    compileLineTest(op, value, ip);
  } catch (err) {
    if (err instanceof StageError || err instanceof PatternSyntaxError) return err.message;
    return `error parsing regexp: ${regexReason(err)}`;
  }
  return undefined;
}

/** Loki's checks of a vector aggregation's parameter and grouping (mustNewVectorAggregationExpr). */
export function vectorAggregationProblem(
  op: VectorOp,
  param: string | undefined,
  grouping: Grouping | undefined,
): string | undefined {
  if (op === "topk" || op === "bottomk" || op === "approx_topk") {
    if (param === undefined) return `parameter required for operation ${op}`;
    if (!/^\d+$/.test(param)) return `invalid parameter ${op}(${param},`;
    if (Number(param) <= 0) return `invalid parameter (must be greater than 0) ${op}(${param}`;
    // Loki computes approx_topk from count-min sketches of the whole vector, which have no groups.
    if (op === "approx_topk" && grouping !== undefined) return `grouping not allowed for ${op} aggregation`;
  } else if (param !== undefined) {
    return `unsupported parameter for operation ${op}(${param},`;
  }
  if ((op === "sort" || op === "sort_desc") && grouping !== undefined && grouping.labels.length > 0) {
    return "sort and sort_desc doesn't allow grouping by ";
  }
  return undefined;
}

/** Loki's checks of a range aggregation (newRangeAggregationExpr and RangeAggregationExpr.validate). */
export function rangeAggregationProblem(
  op: RangeOp,
  param: { value: number; text: string } | undefined,
  grouped: boolean,
  unwrapped: boolean,
): string | undefined {
  if (param !== undefined && op !== "quantile_over_time") {
    return `parameter ${param.text} not supported for operation ${op}`;
  }
  if (param !== undefined && Number.isNaN(param.value)) {
    return `invalid parameter for operation ${op}: ${goParseFloat(param.text).error}`;
  }
  if (param === undefined && op === "quantile_over_time") return `parameter required for operation ${op}`;
  if (grouped && !GROUPING_RANGE_OPS.has(op)) return `grouping not allowed for ${op} aggregation`;
  if (unwrapped && !UNWRAPPABLE_RANGE_OPS.has(op)) return `invalid aggregation ${op} with unwrap`;
  if (!unwrapped && !LINE_RANGE_OPS.has(op)) return `invalid aggregation ${op} without unwrap`;
  return undefined;
}

/** Loki names the offending node by its Go type in some messages. */
export function goType(expr: LogExpr): string {
  return expr.pipeline.length === 0 ? "*syntax.MatchersExpr" : "*syntax.PipelineExpr";
}

export function regexReason(err: unknown): string {
  if (err instanceof RegexSyntaxError) return err.goReason;
  throw err;
}

/** Loki folds operations between two literals while parsing (its MergeBinOp: NaN for any division by zero). */
export function foldLiterals(op: BinaryOp, left: number, right: number): number {
  if (isSetOp(op)) throw new Error(`set operation ${op} between literals`);
  return scalarBinary(op, left, right, LOKI_SEMANTICS);
}
