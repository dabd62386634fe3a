import type { LabelMatcher } from "../../../storage/store.js";
import type {
  BinaryExpr,
  DropKeepItem,
  Expr,
  ExtractionParam,
  Grouping,
  LabelFilterExpr,
  LogExpr,
  LogRange,
  MetricExpr,
  RangeAggregationExpr,
  Stage,
  Unwrap,
} from "./ast.js";
import { formatGoDuration, formatPrometheusDuration } from "../../go/duration-format.js";
import { formatFloatF, formatFloatG } from "../../go/float-format.js";
import { goQuote } from "../../go/quote.js";

// Prints a syntax tree back as LogQL: formatLogQL in the single-line form of Loki's String() methods
// (pkg/logql/syntax/ast.go), prettifyLogQL in the indented form of Loki's Prettify (prettier.go) behind
// /loki/api/v1/format_query. Parsing either output gives back the same tree. Where Loki's output would not parse
// back or would lose precision (`vector(%f)`, humanized byte sizes, a bare `without` in Prettify), the exact form
// is printed instead.

/** The canonical single-line form of a query. */
export function formatLogQL(expr: Expr): string {
  return formatExpr(expr, undefined);
}

/** With `cache`, each subtree is printed once however often its text is asked for (as Prettify does per level). */
function formatExpr(expr: Expr, cache: Map<Expr, string> | undefined): string {
  const cached = cache?.get(expr);
  if (cached !== undefined) return cached;
  let text: string;
  switch (expr.kind) {
    case "log":
      text = formatLog(expr);
      break;
    case "range_aggregation":
      text = formatRangeAggregation(expr);
      break;
    case "vector_aggregation": {
      const grouping = expr.grouping === undefined ? "" : formatGrouping(expr.grouping);
      const param = expr.param === undefined ? "" : `${expr.param},`;
      text = `${expr.op}${grouping}(${param}${formatExpr(expr.expr, cache)})`;
      break;
    }
    case "binary":
      text = `(${formatExpr(expr.lhs, cache)} ${formatBinaryOp(expr)} ${formatExpr(expr.rhs, cache)})`;
      break;
    case "literal":
      text = formatFloatG(expr.value);
      break;
    case "vector":
      text = `vector(${formatFloatF(expr.value)})`;
      break;
    case "label_replace": {
      const strings = [expr.dst, expr.replacement, expr.src, expr.regex].map(goQuote).join(",");
      text = `label_replace(${formatExpr(expr.expr, cache)},${strings})`;
      break;
    }
  }
  cache?.set(expr, text);
  return text;
}

function formatLog(expr: LogExpr): string {
  const selector = formatMatchers(expr.matchers);
  return expr.pipeline.length === 0 ? selector : `${selector} ${expr.pipeline.map(formatStage).join(" ")}`;
}

function formatMatchers(matchers: LabelMatcher[]): string {
  return `{${matchers.map(formatMatcher).join(", ")}}`;
}

function formatMatcher(matcher: LabelMatcher): string {
  return `${matcher.name}${matcher.op}${goQuote(matcher.value)}`;
}

/** One pipeline stage as Loki prints it, in the canonical form and in its error messages. */
export function formatStage(stage: Stage): string {
  switch (stage.kind) {
    case "line_filter":
      return `${stage.op} ${stage.values.map((value, index) => (stage.ip?.[index] === true ? `ip(${goQuote(value)})` : goQuote(value))).join(" or ")}`;
    case "json":
      return stage.params.length === 0 ? "| json" : `| json ${formatParams(stage.params)}`;
    case "logfmt": {
      const flags = [stage.strict ? "--strict" : "", stage.keepEmpty ? "--keep-empty" : ""].filter(Boolean);
      return ["| logfmt", ...flags, ...(stage.params.length > 0 ? [formatParams(stage.params)] : [])].join(" ");
    }
    case "regexp":
      return `| regexp ${goQuote(stage.pattern)}`;
    case "pattern":
      return `| pattern ${goQuote(stage.pattern)}`;
    case "unpack":
      return "| unpack";
    case "label_filter":
      return `| ${formatLabelFilter(stage.filter)}`;
    case "line_format":
      return `| line_format ${goQuote(stage.template)}`;
    case "label_format":
      return `| label_format ${stage.items
        .map((item) => `${item.label}=${item.kind === "rename" ? item.from : goQuote(item.template)}`)
        .join(",")}`;
    case "drop":
      return `| drop ${formatDropKeep(stage.items)}`;
    case "keep":
      return `| keep ${formatDropKeep(stage.items)}`;
    case "decolorize":
      return "| decolorize";
  }
}

function formatParams(params: ExtractionParam[]): string {
  return params.map((param) => `${param.label}=${goQuote(param.expression)}`).join(",");
}

function formatDropKeep(items: DropKeepItem[]): string {
  return items.map((item) => (item.kind === "name" ? item.name : formatMatcher(item.matcher))).join(",");
}

function formatLabelFilter(filter: LabelFilterExpr): string {
  switch (filter.kind) {
    case "and":
      return `( ${formatLabelFilter(filter.left)} , ${formatLabelFilter(filter.right)} )`;
    case "or":
      return `( ${formatLabelFilter(filter.left)} or ${formatLabelFilter(filter.right)} )`;
    case "string":
      return `${filter.name}${filter.op}${goQuote(filter.value)}`;
    case "number":
      return `${filter.name}${filter.op}${formatFloatF(filter.value)}`;
    case "duration":
      return `${filter.name}${filter.op}${formatGoDuration(BigInt(Math.round(filter.seconds * 1e9)))}`;
    case "bytes":
      return `${filter.name}${filter.op}${formatBytes(filter.bytes)}`;
    case "ip":
      return `${filter.name}${filter.op}ip(${goQuote(filter.pattern)})`;
  }
}

function formatUnwrap(unwrap: Unwrap): string {
  const target = unwrap.conversion === "none" ? unwrap.label : `${unwrap.conversion}(${unwrap.label})`;
  return [`| unwrap ${target}`, ...unwrap.postFilters.map((filter) => `| ${formatLabelFilter(filter)}`)].join(" ");
}

function formatLogRange(range: LogRange): string {
  const unwrap = range.unwrap === undefined ? "" : ` ${formatUnwrap(range.unwrap)}`;
  return `${formatLog(range.log)}${unwrap}[${formatPrometheusDuration(range.rangeNs)}]${formatOffset(range.offsetNs)}`;
}

function formatOffset(offsetNs: bigint): string {
  return offsetNs === 0n ? "" : ` offset ${formatGoDuration(offsetNs)}`;
}

function formatRangeAggregation(expr: RangeAggregationExpr): string {
  const param = expr.param === undefined ? "" : `${formatFloatF(expr.param)},`;
  const grouping = expr.grouping === undefined ? "" : formatGrouping(expr.grouping);
  return `${expr.op}(${param}${formatLogRange(expr.range)})${grouping}`;
}

function formatGrouping(grouping: Grouping): string {
  return ` ${grouping.without ? "without" : "by"} (${grouping.labels.join(",")})`;
}

function formatBinaryOp(expr: BinaryExpr, labelSeparator = ","): string {
  let op: string = expr.op;
  if (expr.returnBool) op += " bool";
  const matching = expr.matching;
  if (matching !== undefined) {
    op += ` ${matching.on ? "on" : "ignoring"} (${matching.labels.join(labelSeparator)})`;
    if (matching.card !== "one-to-one") {
      op += matching.card === "many-to-one" ? " group_left" : " group_right";
      if (matching.include.length > 0) op += ` (${matching.include.join(labelSeparator)})`;
    }
  }
  return op;
}

const SI_BYTES: Array<[string, number]> = [
  ["PB", 1e15],
  ["TB", 1e12],
  ["GB", 1e9],
  ["MB", 1e6],
  ["kB", 1e3],
];
const IEC_BYTES: Array<[string, number]> = [
  ["PiB", 1024 ** 5],
  ["TiB", 1024 ** 4],
  ["GiB", 1024 ** 3],
  ["MiB", 1024 ** 2],
  ["KiB", 1024],
];

/** A byte size in the largest unit that states it exactly, as go-humanize would read it back. */
function formatBytes(bytes: number): string {
  for (const [unit, size] of [...SI_BYTES, ...IEC_BYTES]) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}

// ---- Prettify

const MAX_CHARS_PER_LINE = 100;

function indent(level: number): string {
  return "  ".repeat(level);
}

/** The multi-line form of /loki/api/v1/format_query: expressions longer than 100 characters are split. */
export function prettifyLogQL(expr: Expr): string {
  return pretty(expr, 0, new Map());
}

function pretty(expr: Expr, level: number, cache: Map<Expr, string>): string {
  const flat = formatExpr(expr, cache);
  if (flat.length <= MAX_CHARS_PER_LINE) return indent(level) + flat;
  switch (expr.kind) {
    case "log":
      return prettyLog(expr, level);
    case "range_aggregation": {
      const param = expr.param === undefined ? "" : `${indent(level + 1)}${formatFloatF(expr.param)},\n`;
      const grouping = expr.grouping === undefined ? "" : prettyGrouping(expr.grouping);
      const range = prettyLogRange(expr.range, level + 1, cache);
      return `${indent(level)}${expr.op}(\n${param}${range}\n${indent(level)})${grouping}`;
    }
    case "vector_aggregation": {
      const grouping = expr.grouping === undefined ? "" : prettyGrouping(expr.grouping);
      const param = expr.param === undefined ? "" : `${indent(level + 1)}${expr.param},\n`;
      const inner = pretty(expr.expr, level + 1, cache);
      return `${indent(level)}${expr.op}${grouping}(\n${param}${inner}\n${indent(level)})`;
    }
    case "binary": {
      // Concatenation rather than join: join flattens the (deep) left side again at every level.
      const op = indent(level) + formatBinaryOp(expr, ", ");
      return `${prettyOperand(expr.lhs, level, cache)}\n${op}\n${prettyOperand(expr.rhs, level, cache)}`;
    }
    case "label_replace": {
      const strings = [expr.dst, expr.replacement, expr.src, expr.regex].map((s) => indent(level + 1) + goQuote(s));
      const args = [pretty(expr.expr, level + 1, cache), ...strings].join(",\n");
      return `${indent(level)}label_replace(\n${args}\n${indent(level)})`;
    }
    case "literal":
    case "vector":
      return indent(level) + flat;
  }
}

/**
 * One side of a split binary operation. Loki prints a split side without parentheses, which can change how the
 * output parses; a side that is itself a split binary operation is wrapped in parentheses here.
 */
function prettyOperand(expr: MetricExpr, level: number, cache: Map<Expr, string>): string {
  if (expr.kind !== "binary" || formatExpr(expr, cache).length <= MAX_CHARS_PER_LINE) {
    return pretty(expr, level + 1, cache);
  }
  return `${indent(level + 1)}(\n${pretty(expr, level + 2, cache)}\n${indent(level + 1)})`;
}

function prettyLog(expr: LogExpr, level: number): string {
  const lines = [indent(level) + formatMatchers(expr.matchers)];
  for (const stage of expr.pipeline) lines.push(indent(level + 1) + formatStage(stage));
  return lines.join("\n");
}

function prettyLogRange(range: LogRange, level: number, cache: Map<Expr, string>): string {
  let out = pretty(range.log, level, cache);
  if (range.unwrap !== undefined) {
    const unwrap = range.unwrap;
    const target = unwrap.conversion === "none" ? unwrap.label : `${unwrap.conversion}(${unwrap.label})`;
    out += `\n${indent(level + 1)}| unwrap ${target}`;
    for (const filter of unwrap.postFilters) out += `\n${indent(level + 1)}| ${formatLabelFilter(filter)}`;
  }
  return `${out} [${formatPrometheusDuration(range.rangeNs)}]${formatOffset(range.offsetNs)}`;
}

function prettyGrouping(grouping: Grouping): string {
  return ` ${grouping.without ? "without" : "by"} (${grouping.labels.join(", ")})`;
}
