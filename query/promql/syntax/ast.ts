import type { LabelMatcher } from "../../../storage/store.js";

// The PromQL syntax tree. Positions are 0-based character offsets into the query, as Prometheus reports them.

export type ValueType = "scalar" | "vector" | "matrix" | "string";

export type AggregationOp =
  | "sum"
  | "avg"
  | "min"
  | "max"
  | "count"
  | "stddev"
  | "stdvar"
  | "group"
  | "topk"
  | "bottomk"
  | "quantile"
  | "count_values";

export const AGGREGATION_OPS: ReadonlySet<string> = new Set<AggregationOp>([
  "sum",
  "avg",
  "min",
  "max",
  "count",
  "stddev",
  "stdvar",
  "group",
  "topk",
  "bottomk",
  "quantile",
  "count_values",
]);

export type ArithmeticOp = "+" | "-" | "*" | "/" | "%" | "^" | "atan2";
export type ComparisonOp = "==" | "!=" | ">" | "<" | ">=" | "<=";
export type SetOp = "and" | "or" | "unless";
export type BinaryOp = ArithmeticOp | ComparisonOp | SetOp;

export const COMPARISON_OPS: ReadonlySet<string> = new Set<ComparisonOp>(["==", "!=", ">", "<", ">=", "<="]);
export const SET_OPS: ReadonlySet<string> = new Set<SetOp>(["and", "or", "unless"]);

/** `@` pins a selector to a time (milliseconds), or to the query's start or end. */
export type AtModifier = { kind: "time"; ms: number } | { kind: "start" } | { kind: "end" };

export interface NumberLiteral {
  kind: "number";
  value: number;
  pos: number;
}

export interface StringLiteral {
  kind: "string";
  value: string;
  pos: number;
}

/** `offset` and `@`, which move a selector's or a subquery's evaluation time. */
export interface TimeModifiers {
  offsetMs: number;
  at?: AtModifier;
}

export interface VectorSelector extends TimeModifiers {
  kind: "selector";
  /** The metric name when written before the braces; it is also among `matchers` as `__name__`. */
  name?: string;
  matchers: LabelMatcher[];
  pos: number;
}

export interface MatrixSelector {
  kind: "matrix";
  selector: VectorSelector;
  rangeMs: number;
  pos: number;
}

/** `expr[range:step]`: the instant vector evaluated every step (aligned to multiples of it) over the range. */
export interface Subquery extends TimeModifiers {
  kind: "subquery";
  expr: Expr;
  rangeMs: number;
  /** Omitted in `[5m:]`: the default evaluation interval. */
  stepMs?: number;
  pos: number;
}

export interface Call {
  kind: "call";
  func: string;
  args: Expr[];
  pos: number;
}

export interface Aggregation {
  kind: "aggregation";
  op: AggregationOp;
  /** The first argument of topk, bottomk, quantile (a scalar) and count_values (a string). */
  param?: Expr;
  expr: Expr;
  /** Labels of `by (...)`, or of `without (...)` when `without` is set. */
  grouping: string[];
  without: boolean;
  pos: number;
}

export type Cardinality = "one-to-one" | "many-to-one" | "one-to-many" | "many-to-many";

/** How the two sides of a vector/vector operation are paired (Prometheus VectorMatching). */
export interface VectorMatching {
  card: Cardinality;
  /** `on (labels)` when true, `ignoring (labels)` (or nothing) when false. */
  on: boolean;
  labels: string[];
  /** Labels copied from the "one" side by group_left / group_right. */
  include: string[];
}

export interface Binary {
  kind: "binary";
  op: BinaryOp;
  lhs: Expr;
  rhs: Expr;
  /** `bool` after a comparison: 0/1 results instead of filtering. */
  bool: boolean;
  /** Set when both sides are instant vectors. */
  matching?: VectorMatching;
  pos: number;
}

export interface Unary {
  kind: "unary";
  op: "+" | "-";
  expr: Expr;
  pos: number;
}

export interface Paren {
  kind: "paren";
  expr: Expr;
  pos: number;
}

export type Expr =
  | NumberLiteral
  | StringLiteral
  | VectorSelector
  | MatrixSelector
  | Subquery
  | Call
  | Aggregation
  | Binary
  | Unary
  | Paren;

export interface FunctionSignature {
  args: ValueType[];
  /** How many of the trailing `args` may be left out. */
  optional?: number;
  returns: ValueType;
}

export const FUNCTIONS: Readonly<Record<string, FunctionSignature>> = {
  rate: { args: ["matrix"], returns: "vector" },
  irate: { args: ["matrix"], returns: "vector" },
  increase: { args: ["matrix"], returns: "vector" },
  delta: { args: ["matrix"], returns: "vector" },
  idelta: { args: ["matrix"], returns: "vector" },
  avg_over_time: { args: ["matrix"], returns: "vector" },
  sum_over_time: { args: ["matrix"], returns: "vector" },
  min_over_time: { args: ["matrix"], returns: "vector" },
  max_over_time: { args: ["matrix"], returns: "vector" },
  count_over_time: { args: ["matrix"], returns: "vector" },
  last_over_time: { args: ["matrix"], returns: "vector" },
  stddev_over_time: { args: ["matrix"], returns: "vector" },
  stdvar_over_time: { args: ["matrix"], returns: "vector" },
  present_over_time: { args: ["matrix"], returns: "vector" },
  quantile_over_time: { args: ["scalar", "matrix"], returns: "vector" },
  histogram_quantile: { args: ["scalar", "vector"], returns: "vector" },
  abs: { args: ["vector"], returns: "vector" },
  ceil: { args: ["vector"], returns: "vector" },
  floor: { args: ["vector"], returns: "vector" },
  round: { args: ["vector", "scalar"], optional: 1, returns: "vector" },
  clamp: { args: ["vector", "scalar", "scalar"], returns: "vector" },
  clamp_min: { args: ["vector", "scalar"], returns: "vector" },
  clamp_max: { args: ["vector", "scalar"], returns: "vector" },
  sqrt: { args: ["vector"], returns: "vector" },
  exp: { args: ["vector"], returns: "vector" },
  ln: { args: ["vector"], returns: "vector" },
  log2: { args: ["vector"], returns: "vector" },
  log10: { args: ["vector"], returns: "vector" },
  timestamp: { args: ["vector"], returns: "vector" },
  vector: { args: ["scalar"], returns: "vector" },
  scalar: { args: ["vector"], returns: "scalar" },
  time: { args: [], returns: "scalar" },
  sort: { args: ["vector"], returns: "vector" },
  sort_desc: { args: ["vector"], returns: "vector" },
  label_replace: { args: ["vector", "string", "string", "string", "string"], returns: "vector" },
};

// Operator chains are typed once per node while parsing, so a long chain costs linear time rather than quadratic.
const derivedTypes = new WeakMap<Expr, ValueType>();

/** The type an expression evaluates to. */
export function typeOf(expr: Expr): ValueType {
  if (expr.kind !== "binary" && expr.kind !== "unary" && expr.kind !== "paren") return ownType(expr);
  let type = derivedTypes.get(expr);
  if (type === undefined) derivedTypes.set(expr, (type = ownType(expr)));
  return type;
}

function ownType(expr: Expr): ValueType {
  switch (expr.kind) {
    case "number":
      return "scalar";
    case "string":
      return "string";
    case "selector":
      return "vector";
    case "matrix":
    case "subquery":
      return "matrix";
    case "call":
      return FUNCTIONS[expr.func]!.returns;
    case "aggregation":
      return "vector";
    case "binary":
      return typeOf(expr.lhs) === "scalar" && typeOf(expr.rhs) === "scalar" ? "scalar" : "vector";
    case "unary":
    case "paren":
      return typeOf(expr.expr);
  }
}

/** The expressions directly below `expr`, in source order (a matrix selector's selector is not one). */
export function childrenOf(expr: Expr): Expr[] {
  switch (expr.kind) {
    case "number":
    case "string":
    case "selector":
    case "matrix":
      return [];
    case "call":
      return expr.args;
    case "aggregation":
      return expr.param ? [expr.param, expr.expr] : [expr.expr];
    case "binary":
      return [expr.lhs, expr.rhs];
    case "subquery":
    case "unary":
    case "paren":
      return [expr.expr];
  }
}

/** The Prometheus API's name of a value type, as used in its error messages. */
export function typeName(type: ValueType): string {
  return type === "matrix" ? "range vector" : type === "vector" ? "instant vector" : type;
}
