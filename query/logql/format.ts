import type { LabelMatcher } from "../../storage/store.js";
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
import { formatDurationNs } from "./units.js";

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
      text = formatLiteral(expr.value);
      break;
    case "vector":
      text = `vector(${formatPlainFloat(expr.value)})`;
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
      return `${filter.name}${filter.op}${formatPlainFloat(filter.value)}`;
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
  return `${formatLog(range.log)}${unwrap}[${formatDurationNs(range.rangeNs)}]${formatOffset(range.offsetNs)}`;
}

function formatOffset(offsetNs: bigint): string {
  return offsetNs === 0n ? "" : ` offset ${formatGoDuration(offsetNs)}`;
}

function formatRangeAggregation(expr: RangeAggregationExpr): string {
  const param = expr.param === undefined ? "" : `${formatPlainFloat(expr.param)},`;
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

// ---- numbers, durations, strings as Go prints them

/** fmt.Sprint of a float64: %g with the shortest digits, an exponent below 1e-4 and from 1e6. */
function formatLiteral(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  const exponent = Math.floor(Math.log10(Math.abs(value)));
  if (exponent < -4 || exponent >= 6) {
    return value.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  }
  return formatPlainFloat(value);
}

/** strconv.FormatFloat(v, 'f', -1, 64): the shortest digits, never an exponent. */
function formatPlainFloat(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  const text = String(value);
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (match === null) return text;
  const [, sign, lead, rest = "", exp] = match as unknown as [string, string, string, string | undefined, string];
  const digits = lead + rest;
  const point = 1 + Number(exp);
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return sign + digits + "0".repeat(point - digits.length);
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** Go's time.Duration.String(): `1h0m0s`, `1m30s`, `1.5s`, `250ms`, `0s`. */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const sign = ns < 0n ? "-" : "";
  const u = ns < 0n ? -ns : ns;
  if (u < 1000n) return `${sign}${u}ns`;
  if (u < 1_000_000n) return `${sign}${fixed(u, 3)}µs`;
  if (u < 1_000_000_000n) return `${sign}${fixed(u, 6)}ms`;
  let out = `${fixed(u % 60_000_000_000n, 9)}s`;
  const minutes = u / 60_000_000_000n;
  if (minutes > 0n) {
    out = `${minutes % 60n}m${out}`;
    const hours = minutes / 60n;
    if (hours > 0n) out = `${hours}h${out}`;
  }
  return sign + out;
}

/** `value / 10^digits` with the fraction's trailing zeros dropped. */
function fixed(value: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  const fraction = (value % scale).toString().padStart(digits, "0").replace(/0+$/, "");
  return fraction === "" ? `${value / scale}` : `${value / scale}.${fraction}`;
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

const GO_ESCAPES: Record<string, string> = {
  "\x07": "\\a",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\v": "\\v",
  "\\": "\\\\",
  '"': '\\"',
};

/** strconv.Quote: a double-quoted Go string literal. */
export function goQuote(text: string): string {
  let out = '"';
  for (const char of text) {
    const escape = GO_ESCAPES[char];
    if (escape !== undefined) {
      out += escape;
      continue;
    }
    const code = char.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else if (code >= 0xd800 && code <= 0xdfff) out += `\\u${code.toString(16)}`;
    else out += char;
  }
  return `${out}"`;
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
      const param = expr.param === undefined ? "" : `${indent(level + 1)}${formatPlainFloat(expr.param)},\n`;
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
  return `${out} [${formatDurationNs(range.rangeNs)}]${formatOffset(range.offsetNs)}`;
}

function prettyGrouping(grouping: Grouping): string {
  return ` ${grouping.without ? "without" : "by"} (${grouping.labels.join(", ")})`;
}
