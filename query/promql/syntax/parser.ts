import {
  AGGREGATION_OPS,
  type AggregationOp,
  type BinaryOp,
  COMPARISON_OPS,
  type Expr,
  FUNCTIONS,
  SET_OPS,
  typeName,
  typeOf,
  type TimeModifiers,
  type ValueType,
  type VectorMatching,
  type VectorSelector,
} from "./ast.js";
import type { Token } from "./lexer.js";
import { SelectorParser } from "./selector-parser.js";

export { PromqlParseError } from "./lexer.js";

// A recursive-descent PromQL parser with Prometheus' operator precedence and its type checks, so that a query
// Prometheus refuses is refused here too, with the same kind of message and position.

const PRECEDENCE: Record<string, number> = {
  or: 1,
  and: 2,
  unless: 2,
  "==": 3,
  "!=": 3,
  "<": 3,
  "<=": 3,
  ">": 3,
  ">=": 3,
  "+": 4,
  "-": 4,
  "*": 5,
  "/": 5,
  "%": 5,
  atan2: 5,
  "^": 6,
};

/** Unary minus binds like multiplication: `-a ^ b` is `-(a ^ b)`, `-a * b` is `(-a) * b`. */
const UNARY_OPERAND_PRECEDENCE = PRECEDENCE["^"]!;

/** Nesting in the text (parentheses, calls, unary signs, `^` chains): each level costs a few stack frames. */
const MAX_NESTING = 1000;
/**
 * Height of the tree, which left-associative chains (`a + b + c ...`) grow without nesting in the text; the
 * evaluator and the pushdown walk the tree recursively, so a bounded height keeps them within the stack.
 */
const MAX_HEIGHT = 500;

export function parsePromql(query: string): Expr {
  return new Parser(query).parseQuery();
}

/** The height of a parsed tree, walked without recursion so that a tall tree cannot overflow the stack here. */
function treeHeight(root: Expr): number {
  let height = 0;
  const stack: [object, number][] = [[root, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [node, depth] = item;
    height = Math.max(height, depth);
    for (const value of Object.values(node)) {
      const children: unknown[] = Array.isArray(value) ? value : [value];
      for (const child of children) {
        if (typeof child === "object" && child !== null && "kind" in child) stack.push([child, depth + 1]);
      }
    }
  }
  return height;
}

class Parser extends SelectorParser {
  private depth = 0;
  private readonly heights = new WeakMap<Expr, number>();

  /** The height of an operator chain, known while it is built; other nodes are measured once the query parsed. */
  private chainHeight(expr: Expr): number {
    if (expr.kind === "paren" || expr.kind === "unary") return 1 + this.chainHeight(expr.expr);
    return this.heights.get(expr) ?? 1;
  }

  parseQuery(): Expr {
    if (this.peek().type === "eof") this.fail(0, "no expression found in input");
    const expr = this.parseExpr(0);
    const next = this.peek();
    if (next.type !== "eof") this.unexpected(next);
    if (treeHeight(expr) > MAX_HEIGHT) this.fail(0, `expression tree deeper than ${MAX_HEIGHT} levels`);
    return expr;
  }

  private binaryOperator(): string | undefined {
    const token = this.peek();
    if (token.type !== "punct" && token.type !== "ident") return undefined;
    return token.text in PRECEDENCE ? token.text : undefined;
  }

  private parseExpr(minPrecedence: number): Expr {
    if (++this.depth > MAX_NESTING) this.fail(this.peek().pos, `expression nested deeper than ${MAX_NESTING} levels`);
    try {
      return this.parseOperators(minPrecedence);
    } finally {
      this.depth--;
    }
  }

  private parseOperators(minPrecedence: number): Expr {
    let lhs = this.parseUnary();
    for (;;) {
      const op = this.binaryOperator();
      if (op === undefined) return lhs;
      const precedence = PRECEDENCE[op]!;
      if (precedence < minPrecedence) return lhs;
      const opToken = this.next();
      let bool = false;
      if (this.is("bool")) {
        this.next();
        bool = true;
      }
      const matching = this.parseMatching(op as BinaryOp, lhs.pos, opToken.pos);
      // `^` is right-associative, everything else left-associative.
      const rhs = this.parseExpr(op === "^" ? precedence : precedence + 1);
      lhs = this.binary(op as BinaryOp, lhs, rhs, bool, matching, opToken.pos);
    }
  }

  /** `on`/`ignoring` and `group_left`/`group_right` after an operator, if written. */
  private parseMatching(op: BinaryOp, exprPos: number, opPos: number): VectorMatching | undefined {
    if (!this.is("on") && !this.is("ignoring")) return undefined;
    const setOp = SET_OPS.has(op);
    const matching: VectorMatching = {
      card: setOp ? "many-to-many" : "one-to-one",
      on: false,
      labels: [],
      include: [],
    };
    matching.on = this.next().text === "on";
    matching.labels = this.parseLabelList();
    if (this.is("group_left") || this.is("group_right")) {
      const group = this.next();
      if (setOp) this.fail(exprPos, `no grouping allowed for "${op}" operation`);
      matching.card = group.text === "group_left" ? "many-to-one" : "one-to-many";
      if (this.is("(")) matching.include = this.parseLabelList();
      for (const label of matching.include) {
        if (matching.on && matching.labels.includes(label)) {
          this.fail(opPos, `label "${label}" must not occur in ON and GROUP clause at once`);
        }
      }
    }
    return matching;
  }

  /** Type checks as Prometheus' checkAST, which reports most at the expression's start and some at the operator. */
  private binary(
    op: BinaryOp,
    lhs: Expr,
    rhs: Expr,
    bool: boolean,
    matching: VectorMatching | undefined,
    pos: number,
  ): Expr {
    const height = 1 + Math.max(this.chainHeight(lhs), this.chainHeight(rhs));
    if (height > MAX_HEIGHT) this.fail(pos, `expression tree deeper than ${MAX_HEIGHT} levels`);
    const lt = typeOf(lhs);
    const rt = typeOf(rhs);
    const comparison = COMPARISON_OPS.has(op);
    if (bool && !comparison) this.fail(pos, "bool modifier can only be used on comparison operators");
    if ((lt !== "scalar" && lt !== "vector") || (rt !== "scalar" && rt !== "vector")) {
      this.fail(lhs.pos, "binary expression must contain only scalar and instant vector types");
    }
    if (comparison && !bool && lt === "scalar" && rt === "scalar")
      this.fail(pos, "comparisons between scalars must use BOOL modifier");
    if (SET_OPS.has(op) && (lt === "scalar" || rt === "scalar"))
      this.fail(lhs.pos, `set operator "${op}" not allowed in binary scalar expression`);
    const bothVectors = lt === "vector" && rt === "vector";
    if (matching !== undefined && !bothVectors)
      this.fail(lhs.pos, "vector matching only allowed between instant vectors");
    const card = SET_OPS.has(op) ? "many-to-many" : "one-to-one";
    const node: Expr = {
      kind: "binary",
      op,
      lhs,
      rhs,
      bool,
      ...(bothVectors ? { matching: matching ?? { card, on: false, labels: [], include: [] } } : {}),
      pos: lhs.pos,
    };
    this.heights.set(node, height);
    return node;
  }

  private parseUnary(): Expr {
    const token = this.peek();
    if (this.is("-") || this.is("+")) {
      this.next();
      const expr = this.parseExpr(UNARY_OPERAND_PRECEDENCE);
      const type = typeOf(expr);
      if (type !== "scalar" && type !== "vector")
        this.fail(token.pos, "unary expression only allowed on expressions of type scalar or instant vector");
      if (expr.kind === "number")
        return { kind: "number", value: token.text === "-" ? -expr.value : expr.value, pos: token.pos };
      return { kind: "unary", op: token.text as "+" | "-", expr, pos: token.pos };
    }
    return this.parsePostfix(this.parsePrimary());
  }

  /** Range `[5m]`, `offset`, and `@` after a selector. */
  private parsePostfix(expr: Expr): Expr {
    let result = expr;
    for (;;) {
      if (this.is("[")) {
        const open = this.next();
        const range = this.parseDuration("in range selector");
        if (this.is(":")) {
          this.next();
          const step = this.is("]") ? undefined : this.parseDuration("in subquery");
          this.expect("]", "in subquery");
          const type = typeOf(result);
          if (type !== "vector")
            this.fail(
              result.pos,
              `subquery is only allowed on instant vector, got ${typeName(type)} in ${JSON.stringify(this.query.slice(result.pos, open.pos))} instead`,
            );
          result = {
            kind: "subquery",
            expr: result,
            rangeMs: range,
            ...(step !== undefined ? { stepMs: step } : {}),
            offsetMs: 0,
            pos: result.pos,
          };
          continue;
        }
        if (result.kind !== "selector") this.fail(open.pos, "ranges only allowed for vector selectors");
        this.expect("]", "in range selector");
        result = { kind: "matrix", selector: result as VectorSelector, rangeMs: range, pos: result.pos };
        continue;
      }
      if (this.is("offset")) {
        const token = this.next();
        const selector = this.modifiable(result, "offset");
        if (selector.offsetMs !== 0) this.fail(token.pos, "offset may not be set multiple times");
        let sign = 1;
        if (this.is("-") || this.is("+")) sign = this.next().text === "-" ? -1 : 1;
        selector.offsetMs = sign * this.parseDuration("in offset");
        continue;
      }
      if (this.is("@")) {
        const token = this.next();
        const selector = this.modifiable(result, "@");
        if (selector.at !== undefined) this.fail(token.pos, "@ <timestamp> may not be set multiple times");
        selector.at = this.parseAt();
        continue;
      }
      return result;
    }
  }

  private modifiable(expr: Expr, what: string): TimeModifiers {
    if (expr.kind === "selector" || expr.kind === "subquery") return expr;
    if (expr.kind === "matrix") return expr.selector;
    return this.fail(
      expr.pos,
      `${what} modifier must be preceded by an instant vector selector or range vector selector or a subquery`,
    );
  }

  private parsePrimary(): Expr {
    const token = this.peek();
    switch (token.type) {
      case "number":
        this.next();
        return { kind: "number", value: Number(token.text), pos: token.pos };
      case "string":
        this.next();
        return { kind: "string", value: token.text, pos: token.pos };
      case "duration":
      case "eof":
        return this.unexpected(token);
      case "punct":
        if (token.text === "(") {
          this.next();
          const expr = this.parseExpr(0);
          this.expect(")", "in paren expression");
          return { kind: "paren", expr, pos: token.pos };
        }
        if (token.text === "{") return this.parseSelector(undefined, token.pos);
        return this.unexpected(token);
      case "ident":
        return this.parseIdentifier(token);
    }
  }

  private parseIdentifier(token: Token): Expr {
    const lower = token.text.toLowerCase();
    if (lower === "inf" || lower === "nan") {
      this.next();
      return { kind: "number", value: lower === "inf" ? Infinity : NaN, pos: token.pos };
    }
    if (AGGREGATION_OPS.has(token.text) && (this.is("(", 1) || this.is("by", 1) || this.is("without", 1))) {
      return this.parseAggregation();
    }
    if (this.is("(", 1)) return this.parseCall();
    if (
      PRECEDENCE[token.text] !== undefined ||
      ["bool", "by", "without", "on", "ignoring", "group_left", "group_right", "offset"].includes(token.text)
    ) {
      return this.unexpected(token);
    }
    this.next();
    return this.parseSelector(token.text, token.pos);
  }

  private parseCall(): Expr {
    const name = this.next();
    const signature = FUNCTIONS[name.text];
    if (signature === undefined) this.fail(name.pos, `unknown function with name ${JSON.stringify(name.text)}`);
    this.expect("(", "in function call");
    const args: Expr[] = [];
    while (!this.is(")")) {
      args.push(this.parseExpr(0));
      if (!this.is(",")) break;
      this.next();
    }
    this.expect(")", "in call to function " + JSON.stringify(name.text));
    const min = signature!.args.length - (signature!.optional ?? 0);
    if (args.length < min || args.length > signature!.args.length) {
      const expected = signature!.optional ? `at least ${min}` : `${signature!.args.length}`;
      this.fail(
        name.pos,
        `expected ${expected} argument(s) in call to ${JSON.stringify(name.text)}, got ${args.length}`,
      );
    }
    args.forEach((arg, i) => this.checkType(arg, signature!.args[i]!, `call to function ${JSON.stringify(name.text)}`));
    return { kind: "call", func: name.text, args, pos: name.pos };
  }

  private checkType(expr: Expr, want: ValueType, context: string): void {
    const got = typeOf(expr);
    if (got !== want) this.fail(expr.pos, `expected type ${typeName(want)} in ${context}, got ${typeName(got)}`);
  }

  private parseAggregation(): Expr {
    const opToken = this.next();
    const op = opToken.text as AggregationOp;
    let grouping: string[] = [];
    let without = false;
    let grouped = false;
    const parseGrouping = () => {
      if (grouped) this.unexpected(this.peek());
      without = this.next().text === "without";
      grouping = this.parseLabelList();
      grouped = true;
    };
    if (this.is("by") || this.is("without")) parseGrouping();
    this.expect("(", "in aggregation");
    const args: Expr[] = [];
    while (!this.is(")")) {
      args.push(this.parseExpr(0));
      if (!this.is(",")) break;
      this.next();
    }
    this.expect(")", "in aggregation");
    if (this.is("by") || this.is("without")) parseGrouping();
    const wantsParam = op === "topk" || op === "bottomk" || op === "quantile" || op === "count_values";
    const expected = wantsParam ? 2 : 1;
    if (args.length !== expected) {
      this.fail(
        opToken.pos,
        `wrong number of arguments for aggregate expression provided, expected ${expected}, got ${args.length}`,
      );
    }
    const expr = args[args.length - 1]!;
    this.checkType(expr, "vector", "aggregation expression");
    if (wantsParam) this.checkType(args[0]!, op === "count_values" ? "string" : "scalar", `aggregation parameter`);
    return {
      kind: "aggregation",
      op,
      ...(wantsParam ? { param: args[0]! } : {}),
      expr,
      grouping,
      without,
      pos: opToken.pos,
    };
  }
}
