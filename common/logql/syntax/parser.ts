import { formatFloatFixed } from "../../go/float-format.js";
import { compileRe2 } from "../../regex.js";
import type { LabelMatcher } from "../../../storage/store.js";
import {
  RANGE_OPS,
  VECTOR_OPS,
  type BinaryOp,
  type Expr,
  type Grouping,
  type LogExpr,
  type LogRange,
  type MetricExpr,
  type RangeAggregationExpr,
  type RangeOp,
  type Unwrap,
  type VectorAggregationExpr,
  type VectorMatching,
  type VectorOp,
} from "./ast.js";
import { foldLiterals, goType, rangeAggregationProblem, regexReason, vectorAggregationProblem } from "./checks.js";
import { LogQLParseError, type Token } from "./lexer.js";
import { PipelineParser } from "./pipeline-parser.js";

// A recursive-descent parser for LogQL, with precedence climbing for binary operators. It accepts what Loki's
// grammar (pkg/logql/syntax/syntax.y) accepts and runs the checks Loki runs while parsing, with Loki's messages.
// Every choice looks at most two tokens ahead, so parsing is linear in the length of the query. This part reads
// metric expressions; pipeline-parser.ts reads selectors and pipelines, token-parser.ts the tokens.

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

const RANGE_OP_NAMES: ReadonlySet<string> = new Set(RANGE_OPS);
const VECTOR_OP_NAMES: ReadonlySet<string> = new Set(VECTOR_OPS);

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
const COMPARISONS = new Set(["==", "!=", ">", ">=", "<", "<="]);
const SET_OPS = new Set(["and", "or", "unless"]);

interface RangeArg {
  log: LogExpr;
  unwrap?: Unwrap;
  rangeNs?: bigint;
  offsetNs: bigint;
}

class Parser extends PipelineParser {
  /** Whether the identifier at the current token is a function call: followed by `(`, or `by (`/`without (`. */
  private isCall(): boolean {
    const after = this.peek();
    if (this.isOp("(", after)) return true;
    return (this.isWord("by", after) || this.isWord("without", after)) && this.isOp("(", this.peek(2));
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
        const value = formatFloatFixed(leg.value);
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
        if (RANGE_OP_NAMES.has(word)) return this.parseRangeAggregation();
        if (VECTOR_OP_NAMES.has(word)) return this.parseVectorAggregation();
        if (word === "vector" && this.isOp("(", this.peek())) return this.parseVector();
        if (word === "label_replace" && this.isOp("(", this.peek())) return this.parseLabelReplace();
      }
    }
    this.unexpected();
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
}

function binaryOp(token: Token): BinaryOp | undefined {
  if (token.kind === "op" && token.text in BINARY_PRECEDENCE) return token.text as BinaryOp;
  if (token.kind === "ident") {
    const word = token.text.toLowerCase();
    if (SET_OPS.has(word)) return word as BinaryOp;
  }
  return undefined;
}
