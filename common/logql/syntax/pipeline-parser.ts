import { compileTemplate } from "../../go/template/executor.js";
import { TemplateParseError } from "../../go/template/lexer.js";
import { compileRe2 } from "../../regex.js";
import type { LabelMatcher, MatchOp } from "../../../storage/store.js";
import { matchesEmpty } from "../../matchers.js";
import type {
  CompareOp,
  DropKeepItem,
  Expr,
  ExtractionParam,
  LabelFilterExpr,
  LabelFormatItem,
  LineFilterStage,
  LogExpr,
  Stage,
  Unwrap,
} from "./ast.js";
import { lineFilterProblem, regexReason } from "./checks.js";
import { formatStage } from "./printer.js";
import type { Token } from "./lexer.js";
import { KEYWORDS, TokenParser } from "./token-parser.js";

// The log side of the LogQL parser: stream selectors, pipeline stages, label filters and unwrap, as Loki's grammar
// reads them.

const MATCH_OPS = new Set(["=", "!=", "=~", "!~"]);
const FILTER_OPS = new Set(["=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="]);
const LINE_FILTER_OPS = new Set(["|=", "!=", "|~", "!~", "|>", "!>"]);
const CONVERSIONS = new Set(["bytes", "duration", "duration_seconds"]);

const EMPTY_COMPATIBLE_SELECTOR =
  "queries require at least one regexp or equality matcher that does not have an empty-compatible value. " +
  'For instance, app=~".*" does not meet this requirement, but app=~".+" will';

export class PipelineParser extends TokenParser {
  /** Regular expressions compiled while checking them, reused to test selectors against the empty string. */
  private readonly regexes = new Map<string, RegExp>();

  // ---- log queries

  protected parseLogExpr(): LogExpr {
    const pos = this.tok.pos;
    const matchers = this.parseMatchers();
    const log: LogExpr = { kind: "log", pos, matchers, pipeline: [] };
    this.parsePipeline(log.pipeline, false);
    return log;
  }

  protected parseMatchers(): LabelMatcher[] {
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

  protected parseMatcher(): LabelMatcher {
    const name = this.expectKind("ident", "IDENTIFIER").text;
    const opToken = this.tok;
    if (opToken.kind !== "op" || !MATCH_OPS.has(opToken.text)) this.unexpected("=", "=~", "!~", "!=");
    this.next();
    const value = this.expectKind("string", "STRING");
    const op = opToken.text as MatchOp;
    if (op === "=~" || op === "!~") this.checkRegex(value.value, true);
    return { name, op, value: value.value };
  }

  protected checkRegex(pattern: string, anchored: boolean, context = ""): RegExp {
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
  protected parsePipeline(pipeline: Stage[], allowUnwrap: boolean): Unwrap | undefined {
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
  protected parseLineFilter(): LineFilterStage {
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
      const problem = lineFilterProblem(op, token.value, ip);
      if (problem !== undefined) this.defer(`stage '${formatStage(stage)}' : ${problem}`);
    }
    return stage;
  }

  protected parseLineFilterValue(): { token: Token; ip: boolean } {
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
  protected startsLabelFilter(at: number): boolean {
    const first = this.tokens[at]!;
    const second = this.tokens[Math.min(at + 1, this.tokens.length - 1)]!;
    if (first.kind === "op" && first.text === "(") return true;
    return first.kind === "ident" && second.kind === "op" && FILTER_OPS.has(second.text);
  }

  protected parseStage(): Stage {
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

  protected checkRegexParser(pattern: Token): void {
    this.checkRegex(pattern.value, false, "invalid regexp parser: ");
    if (!/\(\?P?<[^>]+>/.test(pattern.value)) {
      this.failUnplaced("invalid regexp parser: at least one named capture must be supplied");
    }
  }

  /** Loki builds each stage once the query has parsed and names the stage whose template does not compile. */
  protected checkTemplate(stage: Stage, name: string, source: string, what: string): void {
    try {
      compileTemplate(name, source);
    } catch (err) {
      if (!(err instanceof TemplateParseError)) throw err;
      this.defer(`stage '${formatStage(stage)}' : ${what}: ${err.message}`);
    }
  }

  /** `a="x.y", b` after json or logfmt: a bare name extracts the field of the same name. */
  protected parseExtractionParams(): ExtractionParam[] {
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

  protected parseLabelFormatItems(): LabelFormatItem[] {
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

  protected parseDropKeepItems(): DropKeepItem[] {
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

  protected parseUnwrap(): Unwrap {
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

  protected parseLabelFilter(): LabelFilterExpr {
    let left = this.parseLabelFilterAnd();
    while (this.isWord("or")) {
      const pos = this.next().pos;
      const right = this.parseLabelFilterAnd();
      left = this.grown({ kind: "or", pos, left, right }, pos, left, right);
    }
    return left;
  }

  protected parseLabelFilterAnd(): LabelFilterExpr {
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
  protected followsAsFilter(): boolean {
    return this.tok.kind === "ident" && !this.isWord("and") && !this.isWord("or");
  }

  /** A filter, and-ed with the whole rest of the filter when a comma or another filter follows. */
  protected parseLabelFilterSequence(): LabelFilterExpr {
    const left = this.parseLabelFilterPrimary();
    const pos = this.tok.pos;
    if (this.isOp(",")) this.next();
    else if (!this.startsLabelFilter(this.index) && !this.followsAsFilter()) return left;
    const right = this.nested(() => this.parseLabelFilter());
    return this.grown({ kind: "and", pos, left, right }, pos, left, right);
  }

  protected parseLabelFilterPrimary(): LabelFilterExpr {
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
