import { goParseFloat } from "../../go/parse.js";
import type { LiteralExpr } from "./ast.js";
import { LogQLParseError, tokenize, type Token } from "./lexer.js";

// The token side of the LogQL parser: a cursor over the tokens with one or two tokens of look-ahead, Loki's syntax
// error messages, the errors Loki reports only once the whole query has parsed, and the limits that keep a
// hostile query from exhausting the stack.

/** Nesting in the text: parentheses, calls, `^` chains. Each level costs a few stack frames while parsing. */
const MAX_NESTING = 1000;
/**
 * Height of the tree, which operator chains grow without nesting in the text. Printing a tree nests about as
 * deep as it is high, so this stays well below MAX_NESTING for printed queries to parse back.
 */
const MAX_HEIGHT = 500;
/** Loki's reserved words, printed as themselves rather than IDENTIFIER in syntax errors. */
export const KEYWORDS = new Set([
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

export class TokenParser {
  protected readonly tokens: Token[];
  protected index = 0;
  private depth = 0;
  /** Height of each composite node built so far; leaves are 1. */
  private readonly heights = new WeakMap<object, number>();
  private deferred: LogQLParseError | undefined;

  constructor(protected readonly text: string) {
    this.tokens = tokenize(text);
  }

  protected get tok(): Token {
    return this.tokens[this.index]!;
  }

  protected peek(offset = 1): Token {
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)]!;
  }

  protected next(): Token {
    const token = this.tok;
    if (token.kind !== "eof" && token.kind !== "error") this.index++;
    return token;
  }

  protected isOp(text: string, token: Token = this.tok): boolean {
    return token.kind === "op" && token.text === text;
  }

  protected isWord(word: string, token: Token = this.tok): boolean {
    return token.kind === "ident" && token.text.toLowerCase() === word;
  }

  protected fail(message: string, pos: number | undefined): never {
    throw new LogQLParseError(message, pos, this.text);
  }

  /** An error Loki raises while parsing but without a place in the query (a bad regex, a bad selector). */
  protected failUnplaced(message: string): never {
    throw new LogQLParseError(message, undefined, this.text);
  }

  /**
   * A syntax error at a token. Loki's lexer has lost the line, not the column, at tokens it reads past its
   * scanner (a `[range]`, a duration or size, a two-character operator): see LogQLParseError.
   */
  protected failAt(message: string, token: Token): never {
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
  protected defer(message: string): void {
    this.deferred ??= new LogQLParseError(message, undefined, this.text);
  }

  /** Ends the parse: no tokens left, then the first error found in a node. */
  finish(): void {
    this.expectEnd();
    if (this.deferred !== undefined) throw this.deferred;
  }

  /** A yacc-style "syntax error: unexpected X, expecting A or B" at the current token. */
  protected unexpected(...expected: string[]): never {
    const token = this.tok;
    if (token.kind === "error") this.failAt(token.value, token);
    const list = expected.length > 0 && expected.length <= 4 ? `, expecting ${expected.join(" or ")}` : "";
    this.failAt(`syntax error: unexpected ${describe(token, this.peek())}${list}`, token);
  }

  protected expectOp(text: string, ...alternatives: string[]): Token {
    if (!this.isOp(text)) this.unexpected(text, ...alternatives);
    return this.next();
  }

  protected expectKind(kind: Token["kind"], name: string): Token {
    if (this.tok.kind !== kind) this.unexpected(name);
    return this.next();
  }

  protected expectEnd(): void {
    if (this.tok.kind !== "eof") this.unexpected();
  }

  /** Runs a nested parse, refusing nesting deep enough to exhaust the stack. */
  protected nested<T>(parse: () => T): T {
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
  protected grown<T extends object>(node: T, pos: number, ...children: object[]): T {
    const height = 1 + Math.max(...children.map((child) => this.heights.get(child) ?? 1));
    if (height > MAX_HEIGHT) this.fail(`syntax error: expression tree deeper than ${MAX_HEIGHT} levels`, pos);
    this.heights.set(node, height);
    return node;
  }

  /** A number, optionally signed; `Inf` and `NaN` too, so that folded literals print and parse back. */
  protected parseLiteral(): LiteralExpr {
    const pos = this.tok.pos;
    let sign = 1;
    if (this.isOp("+") || this.isOp("-")) sign = this.next().text === "-" ? -1 : 1;
    const token = this.tok;
    if (token.kind === "number") {
      this.next();
      if (Number.isNaN(token.num)) {
        this.defer(`unable to parse literal as a float: ${goParseFloat(token.text).error}`);
      }
      return { kind: "literal", pos, value: sign * token.num };
    }
    if (this.isWord("inf") || this.isWord("nan")) {
      this.next();
      return { kind: "literal", pos, value: token.text.toLowerCase() === "inf" ? sign * Infinity : NaN };
    }
    this.unexpected("NUMBER");
  }
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
