import type { LabelMatcher, MatchOp } from "../../storage/store.js";
import {
  UNWRAP_RANGE_OPS,
  type BinaryOp,
  type CompareOp,
  type DropKeepItem,
  type Expr,
  type ExtractionParam,
  type Grouping,
  type LabelFilterExpr,
  type LabelFormatItem,
  type LiteralExpr,
  type LineFilterStage,
  type LogExpr,
  type LogRange,
  type MetricExpr,
  type RangeAggregationExpr,
  type RangeOp,
  type Stage,
  type Unwrap,
  type VectorAggregationExpr,
  type VectorMatching,
  type VectorOp,
} from "./ast.js";
import { isSetOp, LOKI_SEMANTICS, scalarBinary } from "../engine/vector.js";
import { LogQLParseError, tokenize, type Token } from "./lexer.js";
import { compileRe2, matchesEmpty, RegexSyntaxError } from "./regex.js";
import { compileIpMatcher } from "./stages/ip.js";
import { compileLineFilterPattern, PatternSyntaxError } from "./stages/pattern.js";
import { formatStage } from "./format.js";
import { compileTemplate, TemplateParseError } from "./template.js";

// A recursive-descent parser for LogQL, with precedence climbing for binary operators. It accepts what Loki's
// grammar (pkg/logql/syntax/syntax.y) accepts and runs the checks Loki runs while parsing, with Loki's messages.
// Every choice looks at most two tokens ahead, so parsing is linear in the length of the query.

export { LogQLParseError } from "./lexer.js";

/** Parses a LogQL query: a log query or a metric query. Throws LogQLParseError. */
export function parseLogQL(text: string): Expr {
  const parser = new Parser(text);
  const expr = parser.parseExpr(0);
  parser.finish();
  parser.validateSelectors(expr);
  return expr;
}

/** Parses a bare stream selector `{a="b", c=~"d"}`, as in the `match[]` parameters of the series API. */
export function parseSelector(text: string): LabelMatcher[] {
  const parser = new Parser(text);
  const expr = parser.parseExpr(0);
  parser.finish();
  if (expr.kind !== "log" || expr.pipeline.length > 0) {
    throw new LogQLParseError("only label matchers are supported", expr.pos, text);
  }
  parser.validateSelectors(expr);
  return expr.matchers;
}

const RANGE_OPS = new Set<string>([
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
]);
const VECTOR_OPS = new Set<string>([
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
]);
/** Range aggregations that accept `by`/`without` on themselves (Loki's RangeAggregationExpr.validate). */
const GROUPING_RANGE_OPS = new Set<string>([
  "avg_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "quantile_over_time",
  "max_over_time",
  "min_over_time",
  "first_over_time",
  "last_over_time",
]);
const UNWRAP_ALLOWED = new Set<string>([...UNWRAP_RANGE_OPS, "rate", "absent_over_time"]);
const WITHOUT_UNWRAP_ALLOWED = new Set<string>([
  "bytes_over_time",
  "bytes_rate",
  "count_over_time",
  "rate",
  "absent_over_time",
]);

const EMPTY_COMPATIBLE_SELECTOR =
  "queries require at least one regexp or equality matcher that does not have an empty-compatible value. " +
  'For instance, app=~".*" does not meet this requirement, but app=~".+" will';

/** Binding power of binary operators, as Prometheus and Loki's yacc precedence declare them. */
const BINARY_PRECEDENCE: Record<string, number> = {
  or: 1,
  and: 2,
  unless: 2,
  "==": 3,
  "!=": 3,
  ">": 3,
  ">=": 3,
  "<": 3,
  "<=": 3,
  "+": 4,
  "-": 4,
  "*": 5,
  "/": 5,
  "%": 5,
  "^": 6,
};
/** Nesting in the text: parentheses, calls, `^` chains. Each level costs a few stack frames while parsing. */
const MAX_NESTING = 1000;
/**
 * Height of the tree, which operator chains grow without nesting in the text. Printing a tree nests about as
 * deep as it is high, so this stays well below MAX_NESTING for printed queries to parse back.
 */
const MAX_HEIGHT = 500;
const COMPARISONS = new Set(["==", "!=", ">", ">=", "<", "<="]);
const SET_OPS = new Set(["and", "or", "unless"]);
const MATCH_OPS = new Set(["=", "!=", "=~", "!~"]);
const FILTER_OPS = new Set(["=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="]);
const LINE_FILTER_OPS = new Set(["|=", "!=", "|~", "!~", "|>", "!>"]);
const CONVERSIONS = new Set(["bytes", "duration", "duration_seconds"]);
/** Loki's reserved words, printed as themselves rather than IDENTIFIER in syntax errors. */
const KEYWORDS = new Set([
  "by",
  "without",
  "bool",
  "offset",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "or",
  "and",
  "unless",
  "json",
  "logfmt",
  "regexp",
  "unpack",
  "pattern",
  "label_format",
  "line_format",
  "ip",
  "decolorize",
  "drop",
  "keep",
  "unwrap",
  "label_replace",
]);

interface RangeArg {
  log: LogExpr;
  unwrap?: Unwrap;
  rangeNs?: bigint;
  offsetNs: bigint;
}

class Parser {
  private readonly tokens: Token[];
  private index = 0;
  private depth = 0;
  /** Height of each composite node built so far; leaves are 1. */
  private readonly heights = new WeakMap<object, number>();
  /** Regular expressions compiled while checking them, reused to test selectors against the empty string. */
  private readonly regexes = new Map<string, RegExp>();
  private deferred: LogQLParseError | undefined;

  constructor(private readonly text: string) {
    this.tokens = tokenize(text);
  }

  // ---- token helpers

  private get tok(): Token {
    return this.tokens[this.index]!;
  }

  private peek(offset = 1): Token {
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const token = this.tok;
    if (token.kind !== "eof" && token.kind !== "error") this.index++;
    return token;
  }

  private isOp(text: string, token: Token = this.tok): boolean {
    return token.kind === "op" && token.text === text;
  }

  private isWord(word: string, token: Token = this.tok): boolean {
    return token.kind === "ident" && token.text.toLowerCase() === word;
  }

  private fail(message: string, pos: number | undefined): never {
    throw new LogQLParseError(message, pos, this.text);
  }

  /** An error Loki raises while parsing but without a place in the query (a bad regex, a bad selector). */
  private failUnplaced(message: string): never {
    throw new LogQLParseError(message, undefined, this.text);
  }

  /**
   * A syntax error at a token. Loki's lexer has lost the line, not the column, at tokens it reads past its
   * scanner (a `[range]`, a duration or size, a two-character operator): see LogQLParseError.
   */
  private failAt(message: string, token: Token): never {
    const scannedPast =
      token.kind === "range" ||
      token.kind === "duration" ||
      token.kind === "bytes" ||
      (token.kind === "op" && token.text.length === 2) ||
      (token.kind === "error" && this.text[token.pos] === "[");
    throw new LogQLParseError(message, token.pos, this.text, scannedPast ? "column" : "at");
  }

  /**
   * Records an error Loki finds in a node it has built (a wrong leg type, a bad parameter) rather than while
   * reading tokens: Loki reports such errors only once the whole query has parsed, so a later syntax error wins,
   * and without a place in the query.
   */
  private defer(message: string): void {
    this.deferred ??= new LogQLParseError(message, undefined, this.text);
  }

  /** Ends the parse: no tokens left, then the first error found in a node. */
  finish(): void {
    this.expectEnd();
    if (this.deferred !== undefined) throw this.deferred;
  }

  /** A yacc-style "syntax error: unexpected X, expecting A or B" at the current token. */
  private unexpected(...expected: string[]): never {
    const token = this.tok;
    if (token.kind === "error") this.failAt(token.value, token);
    const list = expected.length > 0 && expected.length <= 4 ? `, expecting ${expected.join(" or ")}` : "";
    this.failAt(`syntax error: unexpected ${describe(token, this.peek())}${list}`, token);
  }

  private expectOp(text: string, ...alternatives: string[]): Token {
    if (!this.isOp(text)) this.unexpected(text, ...alternatives);
    return this.next();
  }

  private expectKind(kind: Token["kind"], name: string): Token {
    if (this.tok.kind !== kind) this.unexpected(name);
    return this.next();
  }

  private expectEnd(): void {
    if (this.tok.kind !== "eof") this.unexpected();
  }

  /** Whether the identifier at the current token is a function call: followed by `(`, or `by (`/`without (`. */
  private isCall(): boolean {
    const after = this.peek();
    if (this.isOp("(", after)) return true;
    return (this.isWord("by", after) || this.isWord("without", after)) && this.isOp("(", this.peek(2));
  }

  /** Runs a nested parse, refusing nesting deep enough to exhaust the stack. */
  private nested<T>(parse: () => T): T {
    if (++this.depth > MAX_NESTING) {
      this.fail(`syntax error: parentheses and calls nested deeper than ${MAX_NESTING} levels`, this.tok.pos);
    }
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  /**
   * Records the height of a new node. Long operator chains (`a + b + c ...`, `x=1 or y=2 or ...`) build deep trees
   * without nesting in the text; capping the height keeps every later recursive walk of the tree within the stack.
   */
  private grown<T extends object>(node: T, pos: number, ...children: object[]): T {
    const height = 1 + Math.max(...children.map((child) => this.heights.get(child) ?? 1));
    if (height > MAX_HEIGHT) this.fail(`syntax error: expression tree deeper than ${MAX_HEIGHT} levels`, pos);
    this.heights.set(node, height);
    return node;
  }

  // ---- expressions

  /** Precedence climbing over binary operators; `minPrec` is the lowest binding power this call may take. */
  parseExpr(minPrec: number): Expr {
    return this.nested(() => this.parseBinary(minPrec));
  }

  private parseBinary(minPrec: number): Expr {
    let lhs = this.parseOperand();
    for (;;) {
      const opToken = this.tok;
      const op = binaryOp(opToken);
      if (op === undefined) return lhs;
      const prec = BINARY_PRECEDENCE[op]!;
      if (prec < minPrec) return lhs;
      this.next();
      const { returnBool, matching } = this.parseBinaryModifiers(op);
      // `^` is right-associative: its right side may hold another `^`; all others are left-associative.
      const rhs = this.parseExpr(op === "^" ? prec : prec + 1);
      lhs = this.binary(op, lhs, rhs, returnBool, matching, opToken.pos);
    }
  }

  private parseBinaryModifiers(op: BinaryOp): { returnBool: boolean; matching?: VectorMatching } {
    let returnBool = false;
    if (this.isWord("bool")) {
      if (!COMPARISONS.has(op)) this.defer("bool modifier can only be used on comparison operators");
      this.next();
      returnBool = true;
    }
    if (!this.isWord("on") && !this.isWord("ignoring")) return { returnBool };
    const on = this.next().text.toLowerCase() === "on";
    const matching: VectorMatching = { on, labels: this.parseLabelList(), card: "one-to-one", include: [] };
    if (this.isWord("group_left") || this.isWord("group_right")) {
      const groupToken = this.next();
      if (SET_OPS.has(op)) this.defer(`no grouping allowed for "${op}" operation`);
      matching.card = groupToken.text.toLowerCase() === "group_left" ? "many-to-one" : "one-to-many";
      if (this.isOp("(")) matching.include = this.parseLabelList();
    }
    return { returnBool, matching };
  }

  private binary(
    op: BinaryOp,
    lhs: Expr,
    rhs: Expr,
    returnBool: boolean,
    matching: VectorMatching | undefined,
    pos: number,
  ): MetricExpr {
    for (const [side, leg] of [
      ["left", lhs],
      ["right", rhs],
    ] as const) {
      if (leg.kind === "log") {
        this.defer(`unexpected type for ${side} leg of binary operation (${op}): ${goType(leg)}`);
      } else if (leg.kind === "literal" && SET_OPS.has(op)) {
        const value = leg.value.toFixed(6);
        this.defer(`unexpected literal for ${side} leg of logical/set binary operation (${op}): ${value}`);
      }
    }
    // Loki folds an operation between two literals at parse time (`1 + 1` is `2`, `1 > 2` is `0`).
    if (lhs.kind === "literal" && rhs.kind === "literal" && !SET_OPS.has(op)) {
      return { kind: "literal", pos: lhs.pos, value: foldLiterals(op, lhs.value, rhs.value) };
    }
    // A log leg is an error already deferred; the node is built only to go on looking for syntax errors.
    const expr: MetricExpr = { kind: "binary", pos, op, lhs: lhs as MetricExpr, rhs: rhs as MetricExpr, returnBool };
    if (matching !== undefined) expr.matching = matching;
    return this.grown(expr, pos, lhs, rhs);
  }

  private parseOperand(): Expr {
    const token = this.tok;
    if (this.isOp("{")) return this.parseLogExpr();
    if (this.isOp("(")) {
      this.next();
      const inner = this.parseExpr(0);
      this.expectOp(")");
      return inner;
    }
    if (token.kind === "number" || this.isOp("+") || this.isOp("-")) return this.parseLiteral();
    if (token.kind === "ident") {
      const word = token.text.toLowerCase();
      if ((word === "inf" || word === "nan") && !this.isCall()) return this.parseLiteral();
      if (this.isCall()) {
        if (RANGE_OPS.has(word)) return this.parseRangeAggregation();
        if (VECTOR_OPS.has(word)) return this.parseVectorAggregation();
        if (word === "vector" && this.isOp("(", this.peek())) return this.parseVector();
        if (word === "label_replace" && this.isOp("(", this.peek())) return this.parseLabelReplace();
      }
    }
    this.unexpected();
  }

  /** A number, optionally signed; `Inf` and `NaN` too, so that folded literals print and parse back. */
  private parseLiteral(): LiteralExpr {
    const pos = this.tok.pos;
    let sign = 1;
    if (this.isOp("+") || this.isOp("-")) sign = this.next().text === "-" ? -1 : 1;
    const token = this.tok;
    if (token.kind === "number") {
      this.next();
      if (Number.isNaN(token.num)) {
        this.defer(`unable to parse literal as a float: ${parseFloatError(token.text)}`);
      }
      return { kind: "literal", pos, value: sign * token.num };
    }
    if (this.isWord("inf") || this.isWord("nan")) {
      this.next();
      return { kind: "literal", pos, value: token.text.toLowerCase() === "inf" ? sign * Infinity : NaN };
    }
    this.unexpected("NUMBER");
  }

  private parseNumberArg(): { value: number; text: string } {
    const token = this.expectKind("number", "NUMBER");
    return { value: token.num, text: token.text };
  }

  private parseVector(): MetricExpr {
    const pos = this.next().pos;
    this.expectOp("(");
    const literal = this.parseLiteral();
    this.expectOp(")");
    return { kind: "vector", pos, value: literal.value };
  }

  private parseLabelReplace(): MetricExpr {
    const pos = this.next().pos;
    this.expectOp("(");
    const expr = this.parseMetricArg();
    const strings: string[] = [];
    for (let i = 0; i < 4; i++) {
      this.expectOp(",");
      strings.push(this.expectKind("string", "STRING").value);
    }
    this.expectOp(")");
    const [dst, replacement, src, regex] = strings as [string, string, string, string];
    try {
      compileRe2(regex, true);
    } catch (err) {
      this.failUnplaced(`invalid regex in label_replace: error parsing regexp: ${regexReason(err)}`);
    }
    return this.grown({ kind: "label_replace", pos, expr, dst, replacement, src, regex }, pos, expr);
  }

  /** A metric expression where one is required: a log query there is an error. */
  private parseMetricArg(): MetricExpr {
    const expr = this.parseExpr(0);
    // Loki's grammar notices only at the token after the log query that it cannot stand here.
    if (expr.kind === "log") this.unexpected();
    return expr;
  }

  private parseGrouping(): Grouping {
    const without = this.next().text.toLowerCase() === "without";
    return { without, labels: this.parseLabelList() };
  }

  private isGroupingStart(): boolean {
    return (this.isWord("by") || this.isWord("without")) && this.isOp("(", this.peek());
  }

  /** `(a, b)`, possibly empty. */
  private parseLabelList(): string[] {
    this.expectOp("(");
    const labels: string[] = [];
    if (this.isOp(")")) {
      this.next();
      return labels;
    }
    for (;;) {
      labels.push(this.expectKind("ident", "IDENTIFIER").text);
      if (this.isOp(")")) break;
      this.expectOp(",", ")");
    }
    this.next();
    return labels;
  }

  private parseVectorAggregation(): MetricExpr {
    const opToken = this.next();
    const op = opToken.text.toLowerCase() as VectorOp;
    let grouping = this.isGroupingStart() ? this.parseGrouping() : undefined;
    this.expectOp("(");
    let param: { value: number; text: string } | undefined;
    if (this.tok.kind === "number" && this.isOp(",", this.peek())) {
      param = this.parseNumberArg();
      this.next();
    }
    const expr = this.parseMetricArg();
    this.expectOp(")");
    if (grouping === undefined && (this.isWord("by") || this.isWord("without"))) grouping = this.parseGrouping();
    const node: VectorAggregationExpr = { kind: "vector_aggregation", pos: opToken.pos, op, expr };
    const problem = vectorAggregationProblem(op, param?.text, grouping);
    if (problem !== undefined) this.defer(problem);
    if ((op === "topk" || op === "bottomk" || op === "approx_topk") && param !== undefined) node.param = param.value;
    // `by ()` groups everything into one series, like no grouping at all; Loki prints both the same way.
    if (grouping !== undefined && (grouping.without || grouping.labels.length > 0)) node.grouping = grouping;
    return this.grown(node, opToken.pos, expr);
  }

  private parseRangeAggregation(): MetricExpr {
    const opToken = this.next();
    const op = opToken.text.toLowerCase() as RangeOp;
    let grouping = this.isGroupingStart() ? this.parseGrouping() : undefined;
    this.expectOp("(");
    let param: { value: number; text: string } | undefined;
    if (this.tok.kind === "number" && this.isOp(",", this.peek())) {
      param = this.parseNumberArg();
      this.next();
    }
    const argPos = this.tok.pos;
    if (!this.isOp("{") && !this.isOp("(")) {
      this.unexpected(...(param === undefined ? ["NUMBER", "{", "("] : ["{", "("]));
    }
    const arg = this.parseRangeArg();
    if (arg.rangeNs === undefined) this.unexpected("RANGE", "|");
    this.expectOp(")");
    if (grouping === undefined && (this.isWord("by") || this.isWord("without"))) grouping = this.parseGrouping();

    const problem = rangeAggregationProblem(op, param, grouping !== undefined, arg.unwrap !== undefined);
    if (problem !== undefined) this.defer(problem);
    const range: LogRange = { pos: argPos, log: arg.log, rangeNs: arg.rangeNs, offsetNs: arg.offsetNs };
    if (arg.unwrap !== undefined) range.unwrap = arg.unwrap;
    const node: RangeAggregationExpr = { kind: "range_aggregation", pos: opToken.pos, op, range };
    if (param !== undefined) node.param = param.value;
    if (grouping !== undefined) node.grouping = grouping;
    return node;
  }

  /**
   * The log range inside a range aggregation, in each of Loki's spellings: `{..} | p | unwrap x [5m] offset 1h`,
   * `{..}[5m] offset 1h | p | unwrap x`, `({..} | p)[5m]`, `(({..} | p)[5m])`. The range is missing only inside
   * parentheses that the range follows.
   */
  private parseRangeArg(): RangeArg {
    if (this.isOp("(")) {
      this.next();
      const inner = this.nested(() => this.parseRangeArg());
      this.expectOp(")");
      if (inner.rangeNs === undefined) {
        inner.rangeNs = this.expectKind("range", "RANGE").ns;
        inner.offsetNs = this.parseOffset();
      }
      return inner;
    }
    if (!this.isOp("{")) this.unexpected("{", "(");
    const pos = this.tok.pos;
    const matchers = this.parseMatchers();
    const log: LogExpr = { kind: "log", pos, matchers, pipeline: [] };
    let rangeNs: bigint | undefined;
    let offsetNs = 0n;
    if (this.tok.kind === "range") {
      rangeNs = this.next().ns;
      offsetNs = this.parseOffset();
    }
    const unwrap = this.parsePipeline(log.pipeline, true);
    if (rangeNs === undefined && this.tok.kind === "range") {
      rangeNs = this.next().ns;
      offsetNs = this.parseOffset();
    }
    const arg: RangeArg = { log, offsetNs };
    if (rangeNs !== undefined) arg.rangeNs = rangeNs;
    if (unwrap !== undefined) arg.unwrap = unwrap;
    return arg;
  }

  private parseOffset(): bigint {
    if (!this.isWord("offset")) return 0n;
    this.next();
    return this.expectKind("duration", "DURATION").ns;
  }

  // ---- log queries

  private parseLogExpr(): LogExpr {
    const pos = this.tok.pos;
    const matchers = this.parseMatchers();
    const log: LogExpr = { kind: "log", pos, matchers, pipeline: [] };
    this.parsePipeline(log.pipeline, false);
    return log;
  }

  private parseMatchers(): LabelMatcher[] {
    this.expectOp("{");
    const matchers: LabelMatcher[] = [];
    if (this.isOp("}")) {
      this.next();
      return matchers;
    }
    for (;;) {
      matchers.push(this.parseMatcher());
      if (this.isOp("}")) break;
      if (!this.isOp(",")) this.unexpected("}", ",");
      this.next();
    }
    this.next();
    return matchers;
  }

  private parseMatcher(): LabelMatcher {
    const name = this.expectKind("ident", "IDENTIFIER").text;
    const opToken = this.tok;
    if (opToken.kind !== "op" || !MATCH_OPS.has(opToken.text)) this.unexpected("=", "=~", "!~", "!=");
    this.next();
    const value = this.expectKind("string", "STRING");
    const op = opToken.text as MatchOp;
    if (op === "=~" || op === "!~") this.checkRegex(value.value, true);
    return { name, op, value: value.value };
  }

  private checkRegex(pattern: string, anchored: boolean, context = ""): RegExp {
    const key = `${anchored ? "^" : "~"}${pattern}`;
    let regex = this.regexes.get(key);
    if (regex !== undefined) return regex;
    try {
      regex = compileRe2(pattern, anchored);
    } catch (err) {
      this.failUnplaced(`${context}error parsing regexp: ${regexReason(err)}`);
    }
    this.regexes.set(key, regex);
    return regex;
  }

  /**
   * Appends pipeline stages to `pipeline`. With `allowUnwrap`, a final `| unwrap` and the label filters after
   * it are returned instead of becoming stages.
   */
  private parsePipeline(pipeline: Stage[], allowUnwrap: boolean): Unwrap | undefined {
    for (;;) {
      const token = this.tok;
      if (token.kind === "op" && LINE_FILTER_OPS.has(token.text)) {
        pipeline.push(this.parseLineFilter());
        continue;
      }
      if (!this.isOp("|")) return undefined;
      const word = this.peek();
      if (allowUnwrap && this.isWord("unwrap", word) && !this.startsLabelFilter(this.index + 1)) {
        return this.parseUnwrap();
      }
      this.next();
      pipeline.push(this.parseStage());
    }
  }

  /**
   * Loki checks a line filter's regexp, pattern or ip() only when it runs the query; like a bad label filter, the
   * refusal here waits for the end of the parse.
   */
  private parseLineFilter(): LineFilterStage {
    const opToken = this.next();
    const op = opToken.text as LineFilterStage["op"];
    const values = [this.parseLineFilterValue()];
    while (this.isWord("or")) {
      this.next();
      values.push(this.parseLineFilterValue());
    }
    const stage: LineFilterStage = {
      kind: "line_filter",
      pos: opToken.pos,
      op,
      values: values.map(({ token }) => token.value),
    };
    if (values.some(({ ip }) => ip)) stage.ip = values.map(({ ip }) => ip);
    for (const { token, ip } of values) {
      const problem = ip ? ipLineFilterProblem(op, token.value) : lineFilterProblem(op, token.value);
      if (problem !== undefined) this.defer(`stage '${formatStage(stage)}' : ${problem}`);
    }
    return stage;
  }

  private parseLineFilterValue(): { token: Token; ip: boolean } {
    if (this.isWord("ip") && this.isOp("(", this.peek())) {
      this.next();
      this.next();
      const token = this.expectKind("string", "STRING");
      this.expectOp(")");
      return { token, ip: true };
    }
    if (this.tok.kind !== "string") this.unexpected("STRING", "ip");
    return { token: this.next(), ip: false };
  }

  /** Whether the tokens from `at` begin a label filter: `name op ...` or `(`. */
  private startsLabelFilter(at: number): boolean {
    const first = this.tokens[at]!;
    const second = this.tokens[Math.min(at + 1, this.tokens.length - 1)]!;
    if (first.kind === "op" && first.text === "(") return true;
    return first.kind === "ident" && second.kind === "op" && FILTER_OPS.has(second.text);
  }

  private parseStage(): Stage {
    const token = this.tok;
    const pos = this.tokens[this.index - 1]!.pos;
    if (this.startsLabelFilter(this.index)) return { kind: "label_filter", pos, filter: this.parseLabelFilter() };
    if (token.kind !== "ident") this.unexpected();
    const word = token.text.toLowerCase();
    switch (word) {
      case "json":
        this.next();
        return { kind: "json", pos, params: this.tok.kind === "ident" ? this.parseExtractionParams() : [] };
      case "logfmt": {
        this.next();
        let strict = false;
        let keepEmpty = false;
        while (this.tok.kind === "flag") {
          if (this.next().value === "--strict") strict = true;
          else keepEmpty = true;
        }
        const params = this.tok.kind === "ident" ? this.parseExtractionParams() : [];
        return { kind: "logfmt", pos, strict, keepEmpty, params };
      }
      case "regexp": {
        this.next();
        const pattern = this.expectKind("string", "STRING");
        this.checkRegexParser(pattern);
        return { kind: "regexp", pos, pattern: pattern.value };
      }
      case "pattern": {
        this.next();
        const pattern = this.expectKind("string", "STRING");
        if (!/<[A-Za-z_][A-Za-z0-9_]*>/.test(pattern.value.replace(/<_>/g, ""))) {
          this.failUnplaced("invalid pattern parser: at least one capture is required");
        }
        return { kind: "pattern", pos, pattern: pattern.value };
      }
      case "unpack":
        this.next();
        return { kind: "unpack", pos };
      case "decolorize":
        this.next();
        return { kind: "decolorize", pos };
      case "line_format": {
        this.next();
        const stage: Stage = { kind: "line_format", pos, template: this.expectKind("string", "STRING").value };
        this.checkTemplate(stage, "line", stage.template, "invalid line template");
        return stage;
      }
      case "label_format": {
        this.next();
        const stage: Stage = { kind: "label_format", pos, items: this.parseLabelFormatItems() };
        for (const item of stage.items)
          if (item.kind === "template")
            this.checkTemplate(stage, "label", item.template, `invalid template for label '${item.label}'`);
        return stage;
      }
      case "drop":
      case "keep":
        this.next();
        return { kind: word, pos, items: this.parseDropKeepItems() };
      case "unwrap":
        return this.fail("syntax error: unexpected unwrap: unwrap is only allowed in a range aggregation", token.pos);
      default:
        this.next();
        this.unexpected("=", "=~", "!~", "!=");
    }
  }

  private checkRegexParser(pattern: Token): void {
    this.checkRegex(pattern.value, false, "invalid regexp parser: ");
    if (!/\(\?P?<[^>]+>/.test(pattern.value)) {
      this.failUnplaced("invalid regexp parser: at least one named capture must be supplied");
    }
  }

  /** `a="x.y", b` after json or logfmt: a bare name extracts the field of the same name. */
  private parseExtractionParams(): ExtractionParam[] {
    const params: ExtractionParam[] = [];
    for (;;) {
      const label = this.expectKind("ident", "IDENTIFIER").text;
      if (this.isOp("=")) {
        this.next();
        params.push({ label, expression: this.expectKind("string", "STRING").value });
      } else {
        params.push({ label, expression: label });
      }
      if (!this.isOp(",")) return params;
      this.next();
    }
  }

  /** Loki builds each stage once the query has parsed and names the stage whose template does not compile. */
  private checkTemplate(stage: Stage, name: string, source: string, what: string): void {
    try {
      compileTemplate(name, source);
    } catch (err) {
      if (!(err instanceof TemplateParseError)) throw err;
      this.defer(`stage '${formatStage(stage)}' : ${what}: ${err.message}`);
    }
  }

  private parseLabelFormatItems(): LabelFormatItem[] {
    const items: LabelFormatItem[] = [];
    for (;;) {
      const label = this.expectKind("ident", "IDENTIFIER").text;
      this.expectOp("=");
      const value = this.tok;
      if (value.kind === "string") items.push({ kind: "template", label, template: value.value });
      else if (value.kind === "ident") items.push({ kind: "rename", label, from: value.text });
      else this.unexpected("IDENTIFIER", "STRING");
      this.next();
      if (!this.isOp(",")) return items;
      this.next();
    }
  }

  private parseDropKeepItems(): DropKeepItem[] {
    const items: DropKeepItem[] = [];
    for (;;) {
      if (this.tok.kind === "ident" && this.peek().kind === "op" && MATCH_OPS.has(this.peek().text)) {
        items.push({ kind: "matcher", matcher: this.parseMatcher() });
      } else {
        items.push({ kind: "name", name: this.expectKind("ident", "IDENTIFIER").text });
      }
      if (!this.isOp(",")) return items;
      this.next();
    }
  }

  private parseUnwrap(): Unwrap {
    this.next();
    this.next();
    let conversion: Unwrap["conversion"] = "none";
    let label: string;
    const token = this.tok;
    if (token.kind === "ident" && CONVERSIONS.has(token.text.toLowerCase()) && this.isOp("(", this.peek())) {
      conversion = token.text.toLowerCase() as Unwrap["conversion"];
      this.next();
      this.next();
      label = this.expectKind("ident", "IDENTIFIER").text;
      this.expectOp(")");
    } else {
      label = this.expectKind("ident", "IDENTIFIER").text;
    }
    const postFilters: LabelFilterExpr[] = [];
    while (this.isOp("|")) {
      this.next();
      // Only label filters may follow unwrap: a name that is not a keyword is taken as one, as Loki's grammar does.
      const token = this.tok;
      const filterName = token.kind === "ident" && !KEYWORDS.has(token.text.toLowerCase());
      if (!filterName && !this.isOp("(")) this.unexpected("IDENTIFIER", "(");
      postFilters.push(this.parseLabelFilter());
    }
    return { label, conversion, postFilters };
  }

  // ---- label filters, grouped as Loki's grammar groups them: `and` binds tighter than `or`, both
  // left-associative. `,` and a bare space also mean and, but Loki's grammar gives them no precedence, so yacc
  // shifts: the filter just before the comma is and-ed with everything after it up to the closing parenthesis or
  // the end (`a, b or c` is `a and (b or c)`; `a or b, c` is `a or (b and c)`).

  private parseLabelFilter(): LabelFilterExpr {
    let left = this.parseLabelFilterAnd();
    while (this.isWord("or")) {
      const pos = this.next().pos;
      const right = this.parseLabelFilterAnd();
      left = this.grown({ kind: "or", pos, left, right }, pos, left, right);
    }
    return left;
  }

  private parseLabelFilterAnd(): LabelFilterExpr {
    let left = this.parseLabelFilterSequence();
    while (this.isWord("and")) {
      const pos = this.next().pos;
      const right = this.parseLabelFilterSequence();
      left = this.grown({ kind: "and", pos, left, right }, pos, left, right);
    }
    return left;
  }

  /**
   * Whether an identifier after a label filter starts another one. Only `and` and `or` may follow a filter
   * otherwise, so like Loki's grammar an identifier is read as a filter name and the error comes at its operator.
   */
  private followsAsFilter(): boolean {
    return this.tok.kind === "ident" && !this.isWord("and") && !this.isWord("or");
  }

  /** A filter, and-ed with the whole rest of the filter when a comma or another filter follows. */
  private parseLabelFilterSequence(): LabelFilterExpr {
    const left = this.parseLabelFilterPrimary();
    const pos = this.tok.pos;
    if (this.isOp(",")) this.next();
    else if (!this.startsLabelFilter(this.index) && !this.followsAsFilter()) return left;
    const right = this.nested(() => this.parseLabelFilter());
    return this.grown({ kind: "and", pos, left, right }, pos, left, right);
  }

  private parseLabelFilterPrimary(): LabelFilterExpr {
    if (this.isOp("(")) {
      this.next();
      const inner = this.nested(() => this.parseLabelFilter());
      this.expectOp(")", "and", "or", ",");
      return inner;
    }
    const nameToken = this.expectKind("ident", "IDENTIFIER");
    const name = nameToken.text;
    const pos = nameToken.pos;
    const opToken = this.tok;
    if (opToken.kind !== "op" || !FILTER_OPS.has(opToken.text)) this.unexpected();
    this.next();
    const op = opToken.text;
    const value = this.tok;
    if (value.kind === "string") {
      if (op === "=~" || op === "!~") this.checkRegex(value.value, true);
      else if (op !== "=" && op !== "!=") this.unexpected("NUMBER", "DURATION", "BYTES");
      this.next();
      return { kind: "string", pos, name, op: op as MatchOp, value: value.value };
    }
    if (op === "=~" || op === "!~") this.unexpected("STRING");
    const cmp = (op === "=" ? "==" : op) as CompareOp;
    if (this.isWord("ip") && this.isOp("(", this.peek())) {
      if (op !== "=" && op !== "!=") this.unexpected();
      this.next();
      this.next();
      const pattern = this.expectKind("string", "STRING").value;
      this.expectOp(")");
      return { kind: "ip", pos, name, op: op as "=" | "!=", pattern };
    }
    if (value.kind === "duration") {
      this.next();
      return { kind: "duration", pos, name, op: cmp, seconds: Number(value.ns) / 1e9 };
    }
    if (value.kind === "bytes") {
      this.next();
      return { kind: "bytes", pos, name, op: cmp, bytes: value.num };
    }
    if (value.kind === "number" || this.isOp("+") || this.isOp("-")) {
      const literal = this.parseLiteral();
      return { kind: "number", pos, name, op: cmp, value: literal.value };
    }
    const values = ["NUMBER", "DURATION", "BYTES"];
    this.unexpected(...(op === "=" || op === "!=" ? ["STRING", ...values] : values));
  }

  // ---- validation after parsing

  /**
   * Loki refuses selectors that would read every stream: at least one matcher must not match the empty string.
   */
  validateSelectors(expr: Expr): void {
    switch (expr.kind) {
      case "log":
        if (!expr.matchers.some((matcher) => !matchesEmpty(matcher, (pattern) => this.checkRegex(pattern, true)))) {
          this.failUnplaced(EMPTY_COMPATIBLE_SELECTOR);
        }
        return;
      case "range_aggregation":
        return this.validateSelectors(expr.range.log);
      case "vector_aggregation":
      case "label_replace":
        return this.validateSelectors(expr.expr);
      case "binary":
        this.validateSelectors(expr.lhs);
        return this.validateSelectors(expr.rhs);
      case "literal":
      case "vector":
        return;
    }
  }
}

/** Why Loki would refuse the string value of a line filter when it runs the query. */
function lineFilterProblem(op: LineFilterStage["op"], value: string): string | undefined {
  try {
    if (op === "|~" || op === "!~") compileRe2(value);
    else if (op === "|>" || op === "!>") compileLineFilterPattern(value);
  } catch (err) {
    if (err instanceof PatternSyntaxError) return err.message;
    return `error parsing regexp: ${regexReason(err)}`;
  }
  return undefined;
}

/** Loki's ip line filter takes `|=` and `!=` alone, and a single address, range or CIDR. */
function ipLineFilterProblem(op: LineFilterStage["op"], pattern: string): string | undefined {
  if (op !== "|=" && op !== "!=") return "ip: invalid operation";
  return compileIpMatcher(pattern) === undefined ? `ip: invalid pattern: ${JSON.stringify(pattern)}` : undefined;
}

function binaryOp(token: Token): BinaryOp | undefined {
  if (token.kind === "op" && token.text in BINARY_PRECEDENCE) return token.text as BinaryOp;
  if (token.kind === "ident") {
    const word = token.text.toLowerCase();
    if (SET_OPS.has(word)) return word as BinaryOp;
  }
  return undefined;
}

/** Loki's checks of a vector aggregation's parameter and grouping (mustNewVectorAggregationExpr). */
function vectorAggregationProblem(
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
function rangeAggregationProblem(
  op: RangeOp,
  param: { value: number; text: string } | undefined,
  grouped: boolean,
  unwrapped: boolean,
): string | undefined {
  if (param !== undefined && op !== "quantile_over_time") {
    return `parameter ${param.text} not supported for operation ${op}`;
  }
  if (param !== undefined && Number.isNaN(param.value)) {
    return `invalid parameter for operation ${op}: ${parseFloatError(param.text)}`;
  }
  if (param === undefined && op === "quantile_over_time") return `parameter required for operation ${op}`;
  if (grouped && !GROUPING_RANGE_OPS.has(op)) return `grouping not allowed for ${op} aggregation`;
  if (unwrapped && !UNWRAP_ALLOWED.has(op)) return `invalid aggregation ${op} with unwrap`;
  if (!unwrapped && !WITHOUT_UNWRAP_ALLOWED.has(op)) return `invalid aggregation ${op} without unwrap`;
  return undefined;
}

/** Go's message for a number such as 0x10 that Go's scanner reads but strconv.ParseFloat refuses. */
function parseFloatError(text: string): string {
  return `strconv.ParseFloat: parsing ${JSON.stringify(text)}: invalid syntax`;
}

/** Loki names the offending node by its Go type in some messages. */
function goType(expr: LogExpr): string {
  return expr.pipeline.length === 0 ? "*syntax.MatchersExpr" : "*syntax.PipelineExpr";
}

function regexReason(err: unknown): string {
  if (err instanceof RegexSyntaxError) return err.goReason;
  throw err;
}

/**
 * Function names Loki's lexer reads as tokens of their own when a `(` follows (directly or after a grouping),
 * named in its errors by their grammar names (COUNT_OVER_TIME) unlike the keywords it names by their text.
 */
const FUNCTION_TOKENS = new Set([
  "rate",
  "rate_counter",
  "count_over_time",
  "bytes_rate",
  "bytes_over_time",
  "avg_over_time",
  "sum_over_time",
  "min_over_time",
  "max_over_time",
  "stdvar_over_time",
  "stddev_over_time",
  "quantile_over_time",
  "first_over_time",
  "last_over_time",
  "absent_over_time",
  "vector",
  "sum",
  "avg",
  "max",
  "min",
  "count",
  "stddev",
  "stdvar",
  "bottomk",
  "topk",
  "sort",
  "sort_desc",
  "approx_topk",
  "bytes",
  "duration",
  "duration_seconds",
]);

function describe(token: Token, next: Token): string {
  switch (token.kind) {
    case "eof":
    case "error":
      return "$end";
    case "ident": {
      const word = token.text.toLowerCase();
      if (KEYWORDS.has(word)) return word;
      const called =
        next.kind === "op" ? next.text === "(" : next.kind === "ident" && /^(by|without)$/i.test(next.text);
      return FUNCTION_TOKENS.has(word) && called ? word.toUpperCase() : "IDENTIFIER";
    }
    case "string":
      return "STRING";
    case "number":
      return "NUMBER";
    case "duration":
      return "DURATION";
    case "bytes":
      return "BYTES";
    case "range":
      return "RANGE";
    case "flag":
      return "FUNCTION_FLAG";
    case "op":
      return token.text;
  }
}

/** Loki folds operations between two literals while parsing (its MergeBinOp: NaN for any division by zero). */
function foldLiterals(op: BinaryOp, left: number, right: number): number {
  if (isSetOp(op)) throw new Error(`set operation ${op} between literals`);
  return scalarBinary(op, left, right, LOKI_SEMANTICS);
}
