import type { LabelMatcher } from "../../../storage/store.js";
import { formatFloatG } from "../../../common/go/float-format.js";
import { goQuote } from "../../../common/go/quote.js";
import { formatPrometheusDuration } from "../../../common/go/duration-format.js";
import type { Aggregation, Binary, Expr, TimeModifiers, VectorSelector } from "./ast.js";

// A PromQL syntax tree printed back as Prometheus prints it: formatPromql in the single-line form of its String()
// methods (promql/parser/printer.go), prettifyPromql in the indented form of its Prettify (prettier.go), which
// /api/v1/format_query answers. test/prometheus-compat.test.ts compares both with Debian's Prometheus.

const MAX_LINE_BYTES = 100;

/** Prometheus' model.Duration of a millisecond count. */
export function formatPromDuration(ms: number): string {
  return formatPrometheusDuration(BigInt(ms) * 1_000_000n);
}

/** Go's sort.Strings order: by UTF-8 bytes. */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function formatMatcher(matcher: LabelMatcher): string {
  return `${matcher.name}${matcher.op}${goQuote(matcher.value)}`;
}

function formatModifiers(modifiers: TimeModifiers): string {
  let at = "";
  if (modifiers.at?.kind === "time") at = ` @ ${(modifiers.at.ms / 1000).toFixed(3)}`;
  else if (modifiers.at !== undefined) at = ` @ ${modifiers.at.kind}()`;
  const offset =
    modifiers.offsetMs > 0
      ? ` offset ${formatPromDuration(modifiers.offsetMs)}`
      : modifiers.offsetMs < 0
        ? ` offset -${formatPromDuration(-modifiers.offsetMs)}`
        : "";
  return at + offset;
}

/** The selector without its modifiers: the metric name, then the other matchers sorted. */
function formatSelector(selector: VectorSelector): string {
  const name = selector.name ?? "";
  const matchers = selector.matchers
    .filter((m) => !(m.name === "__name__" && m.op === "=" && m.value === name))
    .map(formatMatcher)
    .sort(byBytes);
  return matchers.length === 0 ? name : `${name}{${matchers.join(",")}}`;
}

function aggregationHead(expr: Aggregation): string {
  if (expr.without) return `${expr.op} without (${expr.grouping.join(", ")}) `;
  if (expr.grouping.length > 0) return `${expr.op} by (${expr.grouping.join(", ")}) `;
  return expr.op;
}

/** The operator with `bool` and vector matching, as between the operands. */
function binaryOperator(expr: Binary): string {
  let text: string = expr.op;
  if (expr.bool) text += " bool";
  const matching = expr.matching;
  if (matching !== undefined && (matching.on || matching.labels.length > 0)) {
    text += ` ${matching.on ? "on" : "ignoring"} (${matching.labels.join(", ")})`;
    if (matching.card === "many-to-one" || matching.card === "one-to-many") {
      const side = matching.card === "many-to-one" ? "left" : "right";
      text += ` group_${side} (${matching.include.join(", ")})`;
    }
  }
  return text;
}

function subquerySuffix(expr: Extract<Expr, { kind: "subquery" }>): string {
  const step = expr.stepMs === undefined ? "" : formatPromDuration(expr.stepMs);
  return `[${formatPromDuration(expr.rangeMs)}:${step}]${formatModifiers(expr)}`;
}

/** The single-line form. */
export function formatPromql(expr: Expr): string {
  switch (expr.kind) {
    case "number":
      return formatFloatG(expr.value);
    case "string":
      return goQuote(expr.value);
    case "selector":
      return formatSelector(expr) + formatModifiers(expr);
    case "matrix":
      return `${formatSelector(expr.selector)}[${formatPromDuration(expr.rangeMs)}]${formatModifiers(expr.selector)}`;
    case "subquery":
      return formatPromql(expr.expr) + subquerySuffix(expr);
    case "call":
      return `${expr.func}(${expr.args.map(formatPromql).join(", ")})`;
    case "aggregation": {
      const param = expr.param === undefined ? "" : `${formatPromql(expr.param)}, `;
      return `${aggregationHead(expr)}(${param}${formatPromql(expr.expr)})`;
    }
    case "binary":
      return `${formatPromql(expr.lhs)} ${binaryOperator(expr)} ${formatPromql(expr.rhs)}`;
    case "unary":
      return expr.op + formatPromql(expr.expr);
    case "paren":
      return `(${formatPromql(expr.expr)})`;
  }
}

function indent(level: number): string {
  return "  ".repeat(level);
}

/** The form of /api/v1/format_query: an expression longer than 100 bytes on one line is split, two spaces per level. */
export function prettifyPromql(expr: Expr): string {
  return pretty(expr, 0);
}

function pretty(expr: Expr, level: number): string {
  const flat = formatPromql(expr);
  const fits = Buffer.byteLength(flat) <= MAX_LINE_BYTES;
  switch (expr.kind) {
    case "aggregation": {
      if (fits) return indent(level) + flat;
      const param = expr.param === undefined ? "" : `${pretty(expr.param, level + 1)},\n`;
      return `${indent(level)}${aggregationHead(expr)}(\n${param}${pretty(expr.expr, level + 1)}\n${indent(level)})`;
    }
    case "binary":
      if (fits) return indent(level) + flat;
      return `${pretty(expr.lhs, level + 1)}\n${indent(level)}${binaryOperator(expr)}\n${pretty(expr.rhs, level + 1)}`;
    case "call":
      if (fits) return indent(level) + flat;
      return `${indent(level)}${expr.func}(\n${expr.args.map((arg) => pretty(arg, level + 1)).join(",\n")}\n${indent(level)})`;
    case "paren":
      if (fits) return indent(level) + flat;
      return `${indent(level)}(\n${pretty(expr.expr, level + 1)}\n${indent(level)})`;
    case "subquery":
      // Prometheus leaves a subquery that fits unindented.
      return fits ? flat : pretty(expr.expr, level) + subquerySuffix(expr);
    case "unary":
      return indent(level) + expr.op + pretty(expr.expr, level).trim();
    default:
      return indent(level) + flat;
  }
}
