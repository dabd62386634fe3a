import type { LabelMatcher, MatchOp } from "../../../storage/store.js";
import { compileRe2, RegexSyntaxError } from "../../../common/regex.js";
import { parsePrometheusDuration } from "../../../common/go/parse.js";
import { matchesEmpty } from "../../../common/matchers.js";
import type { AtModifier, VectorSelector } from "./ast.js";
import { PromqlParseError, type Token, tokenize } from "./lexer.js";

// The token side of the PromQL parser and the parts of a query that stand apart from its expressions: selectors
// with their label matchers, label lists, durations and `@` times, with Prometheus' messages.

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const MATCH_OPS: ReadonlySet<string> = new Set<MatchOp>(["=", "!=", "=~", "!~"]);

/** A Prometheus duration (`5m`, `1h30m`, `500ms`) in milliseconds, or undefined. */
export function parsePromDuration(text: string): number | undefined {
  const ns = parsePrometheusDuration(text);
  return typeof ns === "bigint" ? Number(ns / 1_000_000n) : undefined;
}

export class SelectorParser {
  private readonly tokens: Token[];
  private index = 0;

  constructor(protected readonly query: string) {
    this.tokens = tokenize(query);
  }

  protected peek(offset = 0): Token {
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)]!;
  }

  protected next(): Token {
    const token = this.peek();
    if (token.type !== "eof") this.index++;
    return token;
  }

  protected is(text: string, offset = 0): boolean {
    const token = this.peek(offset);
    return (token.type === "punct" || token.type === "ident") && token.text === text;
  }

  protected expect(text: string, context: string): Token {
    const token = this.next();
    if ((token.type === "punct" || token.type === "ident") && token.text === text) return token;
    return this.unexpected(token, context);
  }

  protected fail(pos: number, reason: string): never {
    throw new PromqlParseError(this.query, pos, reason);
  }

  protected unexpected(token: Token, context?: string): never {
    const what =
      token.type === "eof"
        ? "end of input"
        : token.type === "ident"
          ? `identifier ${JSON.stringify(token.text)}`
          : token.type === "string"
            ? `string ${JSON.stringify(token.text)}`
            : token.type === "number"
              ? `number ${JSON.stringify(token.text)}`
              : token.type === "duration"
                ? `duration ${JSON.stringify(token.text)}`
                : `${JSON.stringify(token.text)}`;
    return this.fail(token.pos, `unexpected ${what}${context ? ` ${context}` : ""}`);
  }

  protected parseLabelList(): string[] {
    this.expect("(", "in grouping opts");
    const labels: string[] = [];
    while (!this.is(")")) {
      const token = this.next();
      if (token.type !== "ident" || !LABEL_NAME.test(token.text))
        this.unexpected(token, "in grouping opts, expected label");
      labels.push(token.text);
      if (!this.is(",")) break;
      this.next();
    }
    this.expect(")", "in grouping opts");
    return labels;
  }

  protected parseSelector(name: string | undefined, pos: number): VectorSelector {
    const matchers: LabelMatcher[] = [];
    if (this.is("{")) {
      this.next();
      while (!this.is("}")) {
        const label = this.next();
        if (label.type !== "ident" || !LABEL_NAME.test(label.text))
          this.unexpected(label, "in label matching, expected label");
        const op = this.next();
        if (op.type !== "punct" || !MATCH_OPS.has(op.text))
          this.unexpected(op, "in label matching, expected label matching operator");
        const value = this.next();
        if (value.type !== "string") this.unexpected(value, "in label matching, expected string");
        if (op.text === "=~" || op.text === "!~") this.checkRegex(value.text, label.pos);
        matchers.push({ name: label.text, op: op.text as MatchOp, value: value.text });
        if (!this.is(",")) break;
        this.next();
      }
      this.expect("}", "in label matching, expected label matching operator");
    }
    if (name !== undefined) {
      const named = matchers.find((m) => m.name === "__name__");
      if (named !== undefined)
        this.fail(pos, `metric name must not be set twice: ${JSON.stringify(name)} or ${JSON.stringify(named.value)}`);
      matchers.unshift({ name: "__name__", op: "=", value: name });
    }
    if (!matchers.some((m) => !matchesEmpty(m)))
      this.fail(pos, "vector selector must contain at least one non-empty matcher");
    return { kind: "selector", ...(name !== undefined ? { name } : {}), matchers, offsetMs: 0, pos };
  }

  private checkRegex(pattern: string, pos: number): void {
    try {
      compileRe2(pattern, true);
    } catch (err) {
      if (err instanceof RegexSyntaxError) this.fail(pos, err.message);
      throw err;
    }
  }

  protected parseDuration(context: string): number {
    const token = this.next();
    if (token.type !== "duration") return this.unexpected(token, context);
    const ms = parsePromDuration(token.text);
    if (ms === undefined) this.fail(token.pos, `not a valid duration string: ${JSON.stringify(token.text)}`);
    return ms!;
  }

  protected parseAt(): AtModifier {
    const token = this.next();
    if (token.type === "ident" && (token.text === "start" || token.text === "end")) {
      this.expect("(", "in @");
      this.expect(")", "in @");
      return { kind: token.text };
    }
    let sign = 1;
    let number = token;
    if (token.type === "punct" && (token.text === "-" || token.text === "+")) {
      sign = token.text === "-" ? -1 : 1;
      number = this.next();
    }
    if (number.type !== "number") return this.unexpected(number, "in @");
    const seconds = sign * Number(number.text);
    if (!Number.isFinite(seconds)) this.fail(number.pos, "timestamp out of bounds for @ modifier");
    return { kind: "time", ms: Math.round(seconds * 1000) };
  }
}
