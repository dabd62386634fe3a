import type { LabelMatcher, LineFilter, MatchOp } from "../../../storage/store.js";

// The LogQL syntax tree shared by the parser (parser.ts), the printer behind /format_query, the reference engine
// and the planner that pushes parts of it into the Store. Every node records `pos`, the 0-based offset in the query
// text where it starts, so that errors found after parsing can still point at the query.
//
// Durations are nanoseconds as bigint: log timestamps are nanoseconds, and a year of them exceeds 2^53.

export type Expr = LogExpr | MetricExpr;

export type MetricExpr =
  RangeAggregationExpr | VectorAggregationExpr | BinaryExpr | LiteralExpr | VectorExpr | LabelReplaceExpr;

/** `{app="x"} |= "err" | json | level="error"`: a stream selector followed by its pipeline. */
export interface LogExpr {
  kind: "log";
  pos: number;
  matchers: LabelMatcher[];
  pipeline: Stage[];
}

export type Stage =
  | LineFilterStage
  | JsonStage
  | LogfmtStage
  | RegexpStage
  | PatternStage
  | UnpackStage
  | LabelFilterStage
  | LineFormatStage
  | LabelFormatStage
  | DropStage
  | KeepStage
  | DecolorizeStage;

/**
 * `|= "a" or "b"`, `!~ "x|y"`, with the same meaning as the Store's LineFilter; `|> "<_> error <_>"` and `!>` test
 * Loki patterns, and `|= ip("10.0.0.0/8")` (`!=` too) addresses. A negated filter keeps a line that no value matches.
 */
export interface LineFilterStage {
  kind: "line_filter";
  pos: number;
  op: LineFilter["op"] | "|>" | "!>";
  values: string[];
  /** Which values are `ip(...)` patterns rather than strings; absent when none is. */
  ip?: boolean[];
}

/** `label="expression"` parameters of `json` and `logfmt`, which extract only the named fields. */
export interface ExtractionParam {
  label: string;
  expression: string;
}

export interface JsonStage {
  kind: "json";
  pos: number;
  params: ExtractionParam[];
}

export interface LogfmtStage {
  kind: "logfmt";
  pos: number;
  strict: boolean;
  keepEmpty: boolean;
  params: ExtractionParam[];
}

export interface RegexpStage {
  kind: "regexp";
  pos: number;
  /** RE2 syntax with named groups `(?P<name>...)`; each name becomes a label. */
  pattern: string;
}

export interface PatternStage {
  kind: "pattern";
  pos: number;
  /** Loki pattern syntax: literals and `<name>` / `<_>` captures. */
  pattern: string;
}

export interface UnpackStage {
  kind: "unpack";
  pos: number;
}

export interface LabelFilterStage {
  kind: "label_filter";
  pos: number;
  filter: LabelFilterExpr;
}

export type CompareOp = "==" | "!=" | ">" | ">=" | "<" | "<=";

/**
 * A label filter: `and` binds tighter than `or`; `,` and a space between two filters mean `and`.
 * `=` in a numeric, duration or bytes comparison is the same as `==`.
 */
export type LabelFilterExpr =
  | { kind: "and" | "or"; pos: number; left: LabelFilterExpr; right: LabelFilterExpr }
  | { kind: "string"; pos: number; name: string; op: MatchOp; value: string }
  | { kind: "number"; pos: number; name: string; op: CompareOp; value: number }
  /** `latency > 250ms`: the label is parsed as a Go duration and compared in seconds. */
  | { kind: "duration"; pos: number; name: string; op: CompareOp; seconds: number }
  /** `size > 20KB`: the label is parsed as a humanized byte size and compared in bytes. */
  | { kind: "bytes"; pos: number; name: string; op: CompareOp; bytes: number }
  /** `addr = ip("10.0.0.0/8")`: an address, range or CIDR. */
  | { kind: "ip"; pos: number; name: string; op: "=" | "!="; pattern: string };

export interface LineFormatStage {
  kind: "line_format";
  pos: number;
  /** A Go text/template. */
  template: string;
}

/** `label_format dst="{{.a}}-x"` sets dst from a template; `label_format dst=src` renames src to dst. */
export type LabelFormatItem =
  { kind: "template"; label: string; template: string } | { kind: "rename"; label: string; from: string };

export interface LabelFormatStage {
  kind: "label_format";
  pos: number;
  items: LabelFormatItem[];
}

/** `drop a, b="x"`: a bare name drops the label; a matcher drops it only when it matches. */
export type DropKeepItem = { kind: "name"; name: string } | { kind: "matcher"; matcher: LabelMatcher };

export interface DropStage {
  kind: "drop";
  pos: number;
  items: DropKeepItem[];
}

export interface KeepStage {
  kind: "keep";
  pos: number;
  items: DropKeepItem[];
}

export interface DecolorizeStage {
  kind: "decolorize";
  pos: number;
}

/** `| unwrap latency`, `| unwrap duration(latency)`, `| unwrap bytes(size)`, then optional label filters. */
export interface Unwrap {
  label: string;
  conversion: "none" | "duration" | "duration_seconds" | "bytes";
  postFilters: LabelFilterExpr[];
}

/** The `{...} | pipeline [5m] offset 1h` part of a range aggregation. */
export interface LogRange {
  pos: number;
  log: LogExpr;
  rangeNs: bigint;
  offsetNs: bigint;
  unwrap?: Unwrap;
}

export const RANGE_OPS = [
  "count_over_time",
  "rate",
  "bytes_over_time",
  "bytes_rate",
  "absent_over_time",
  "sum_over_time",
  "avg_over_time",
  "min_over_time",
  "max_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "quantile_over_time",
  "first_over_time",
  "last_over_time",
  "rate_counter",
] as const;

export type RangeOp = (typeof RANGE_OPS)[number];

/** Ops that need `unwrap`; `rate` works both with and without it. */
export const UNWRAP_RANGE_OPS: ReadonlySet<RangeOp> = new Set<RangeOp>([
  "sum_over_time",
  "avg_over_time",
  "min_over_time",
  "max_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "quantile_over_time",
  "first_over_time",
  "last_over_time",
  "rate_counter",
]);

/** Ops that take `unwrap` (Loki's RangeAggregationExpr.validate). */
export const UNWRAPPABLE_RANGE_OPS: ReadonlySet<RangeOp> = new Set<RangeOp>([
  ...UNWRAP_RANGE_OPS,
  "rate",
  "absent_over_time",
]);

/** Ops over lines, without `unwrap`. */
export const LINE_RANGE_OPS: ReadonlySet<RangeOp> = new Set<RangeOp>([
  "bytes_over_time",
  "bytes_rate",
  "count_over_time",
  "rate",
  "absent_over_time",
]);

/** Range aggregations that accept `by`/`without` on themselves (Loki's RangeAggregationExpr.validate). */
export const GROUPING_RANGE_OPS: ReadonlySet<RangeOp> = new Set<RangeOp>([
  "avg_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "quantile_over_time",
  "max_over_time",
  "min_over_time",
  "first_over_time",
  "last_over_time",
]);

/** `by (a, b)` or `without (c)`; `by ()` groups everything into one series. */
export interface Grouping {
  without: boolean;
  labels: string[];
}

export interface RangeAggregationExpr {
  kind: "range_aggregation";
  pos: number;
  op: RangeOp;
  range: LogRange;
  /** φ of quantile_over_time. */
  param?: number;
  /** Only the unwrap ops accept a grouping, e.g. `max_over_time(... [1m]) by (host)`. */
  grouping?: Grouping;
}

export const VECTOR_OPS = [
  "sum",
  "avg",
  "min",
  "max",
  "count",
  "stddev",
  "stdvar",
  "topk",
  "bottomk",
  "approx_topk",
  "sort",
  "sort_desc",
] as const;

export type VectorOp = (typeof VECTOR_OPS)[number];

export interface VectorAggregationExpr {
  kind: "vector_aggregation";
  pos: number;
  op: VectorOp;
  expr: MetricExpr;
  /** k of topk, bottomk and approx_topk. */
  param?: number;
  grouping?: Grouping;
}

export type ArithmeticOp = "+" | "-" | "*" | "/" | "%" | "^";
export type ComparisonOp = "==" | "!=" | ">" | ">=" | "<" | "<=";
export type SetOp = "and" | "or" | "unless";
export type BinaryOp = ArithmeticOp | ComparisonOp | SetOp;

export interface VectorMatching {
  /** `on (...)` when true, `ignoring (...)` when false. */
  on: boolean;
  labels: string[];
  card: "one-to-one" | "many-to-one" | "one-to-many";
  /** Labels copied from the "one" side by `group_left (...)` / `group_right (...)`. */
  include: string[];
}

export interface BinaryExpr {
  kind: "binary";
  pos: number;
  op: BinaryOp;
  lhs: MetricExpr;
  rhs: MetricExpr;
  /** `bool` after a comparison: return 0/1 instead of filtering. */
  returnBool: boolean;
  matching?: VectorMatching;
}

/** A number literal, including a negated one (`-1`). */
export interface LiteralExpr {
  kind: "literal";
  pos: number;
  value: number;
}

/** `vector(1)`: a one-element vector without labels at every step. */
export interface VectorExpr {
  kind: "vector";
  pos: number;
  value: number;
}

/** `label_replace(expr, "dst", "replacement", "src", "regex")` as in Prometheus. */
export interface LabelReplaceExpr {
  kind: "label_replace";
  pos: number;
  expr: MetricExpr;
  dst: string;
  replacement: string;
  src: string;
  regex: string;
}

export function isLogExpr(expr: Expr): expr is LogExpr {
  return expr.kind === "log";
}
