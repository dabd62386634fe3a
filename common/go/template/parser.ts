import { goEscape } from "../quote.js";
import { FUNCTIONS } from "./functions.js";
import type { TemplateFunction } from "./signature.js";
import { lineOf, TemplateParseError, type Token } from "./lexer.js";
import { NumberConstant } from "./values.js";

// The parser of Go's text/template, for the subset Loki's line_format and label_format accept: a template becomes a
// list of nodes once, which executor.ts walks for every entry.

/**
 * What another template dialect adds to Loki's: predeclared variables (Prometheus' `$labels` and `$value`) and
 * functions (its `humanize` family), which take precedence over Loki's of the same name.
 */
export interface TemplateExtension {
  variables: readonly string[];
  functions: ReadonlyMap<string, TemplateFunction>;
}

export type Operand =
  | { kind: "field"; pos: number; receiver: Operand | null; path: string[] }
  | { kind: "dot"; pos: number }
  | { kind: "variable"; pos: number; name: string; path: string[] }
  | { kind: "string"; pos: number; value: string }
  | { kind: "number"; pos: number; value: NumberConstant }
  | { kind: "bool"; pos: number; value: boolean }
  | { kind: "nil"; pos: number }
  | { kind: "function"; pos: number; name: string; fn: TemplateFunction }
  | { kind: "pipeline"; pos: number; pipeline: Pipeline };

export interface Command {
  pos: number;
  args: Operand[];
}

export interface Pipeline {
  pos: number;
  declare: string[];
  assign: boolean;
  commands: Command[];
}

export type Node =
  | { kind: "text"; text: string }
  | { kind: "action"; pipeline: Pipeline }
  | { kind: "if" | "with"; pipeline: Pipeline; list: Node[]; elseList: Node[] | null }
  | { kind: "range"; pipeline: Pipeline; list: Node[]; elseList: Node[] | null }
  | { kind: "break" | "continue"; pos: number };

function unquoteGo(text: string, fail: (message: string) => never): string {
  if (text.startsWith("`")) return text.slice(1, -1).replaceAll("\r", "");
  const quote = text[0] as '"' | "'";
  const body = text.slice(1, -1);
  let out = "";
  for (let i = 0; i < body.length;) {
    if (body[i] !== "\\") {
      out += body[i++];
      continue;
    }
    const escape = goEscape(body, i, quote);
    if (escape === undefined) return fail(`invalid syntax: ${text}`);
    out += escape.value;
    i += escape.length;
  }
  return out;
}

function parseNumber(text: string, fail: (message: string) => never): NumberConstant {
  const clean = text.replaceAll("_", "");
  const negative = clean.startsWith("-");
  const unsigned = clean.replace(/^[+-]/, "");
  let value: number;
  let isInt = false;
  if (/^0[xX][0-9a-fA-F]+$/.test(unsigned)) {
    value = parseInt(unsigned.slice(2), 16);
    isInt = true;
  } else if (/^0[bB][01]+$/.test(unsigned)) {
    value = parseInt(unsigned.slice(2), 2);
    isInt = true;
  } else if (/^0[oO]?[0-7]+$/.test(unsigned)) {
    value = parseInt(unsigned.replace(/^0[oO]?/, ""), 8);
    isInt = true;
  } else if (/^\d+$/.test(unsigned)) {
    value = Number(unsigned);
    isInt = true;
  } else if (/^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(unsigned)) {
    value = Number(unsigned);
    // Go types a float constant with an integral value as int unless it is spelled like a float.
    isInt = false;
  } else return fail(`illegal number syntax: ${JSON.stringify(text)}`);
  return new NumberConstant(text, negative ? -value : value, isInt);
}

export class Parser {
  private index = 0;
  private rangeDepth = 0;
  private readonly variables: string[][];

  constructor(
    private readonly name: string,
    private readonly source: string,
    private readonly tokens: Token[],
    private readonly extension: TemplateExtension | undefined,
  ) {
    this.variables = [["$", ...(extension?.variables ?? [])]];
  }

  private fail(pos: number, message: string): never {
    throw new TemplateParseError(`template: ${this.name}:${lineOf(this.source, pos)}: ${message}`);
  }

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  private next(): Token {
    return this.tokens[this.index++]!;
  }

  /** The next token inside an action, skipping spaces. */
  private nextNonSpace(): Token {
    let token = this.next();
    while (token.kind === "space") token = this.next();
    return token;
  }

  private peekNonSpace(): Token {
    const saved = this.index;
    const token = this.nextNonSpace();
    this.index = saved;
    return token;
  }

  parse(): Node[] {
    const [list, end] = this.list();
    if (end !== "eof") this.fail(this.peek().pos, `unexpected {{${end}}}`);
    return list;
  }

  /** Nodes up to `{{end}}`, `{{else}}` or the end of input, which it reports. */
  private list(): [Node[], "end" | "else" | "eof"] {
    const nodes: Node[] = [];
    for (;;) {
      const token = this.next();
      if (token.kind === "eof") return [nodes, "eof"];
      if (token.kind === "text") {
        nodes.push({ kind: "text", text: token.text });
        continue;
      }
      const keyword = this.peekNonSpace();
      if (keyword.kind === "identifier") {
        switch (keyword.text) {
          case "end":
            this.nextNonSpace();
            this.expectRight("end");
            return [nodes, "end"];
          case "else":
            this.nextNonSpace();
            return [nodes, "else"];
          case "if":
          case "with":
          case "range":
            this.nextNonSpace();
            nodes.push(this.branch(keyword.text));
            continue;
          case "break":
          case "continue":
            if (this.rangeDepth === 0) this.fail(keyword.pos, `{{${keyword.text}}} outside {{range}}`);
            this.nextNonSpace();
            this.expectRight(keyword.text);
            nodes.push({ kind: keyword.text, pos: keyword.pos });
            continue;
          case "define":
          case "template":
          case "block":
            this.fail(keyword.pos, `{{${keyword.text}}} is not supported`);
        }
      }
      nodes.push({ kind: "action", pipeline: this.pipeline("command", true) });
    }
  }

  private expectRight(context: string): void {
    const token = this.nextNonSpace();
    if (token.kind !== "right") this.fail(token.pos, `unexpected ${JSON.stringify(token.text)} in ${context}`);
  }

  private branch(kind: "if" | "with" | "range"): Node {
    this.variables.push([]);
    const pipeline = this.pipeline(kind, kind === "range" ? 2 : 1);
    if (kind === "range") this.rangeDepth++;
    const [list, end] = this.list();
    if (kind === "range") this.rangeDepth--;
    let elseList: Node[] | null = null;
    if (end === "else") {
      const chained = this.peekNonSpace();
      if (chained.kind === "identifier" && chained.text === kind && kind !== "range") {
        // `{{else if x}}` is an `if` nested in the else branch that shares this branch's `{{end}}`.
        this.nextNonSpace();
        elseList = [this.branch(kind)];
      } else {
        this.expectRight("else");
        const [rest, restEnd] = this.list();
        if (restEnd !== "end") this.fail(this.peek().pos, `expected end; found ${restEnd}`);
        elseList = rest;
      }
    } else if (end !== "end") this.fail(this.peek().pos, `unexpected EOF`);
    this.variables.pop();
    return { kind, pipeline, list, elseList };
  }

  private pipeline(context: string, declarations: number | true): Pipeline {
    const start = this.peekNonSpace();
    const pipeline: Pipeline = { pos: start.pos, declare: [], assign: false, commands: [] };
    const saved = this.index;
    const names: string[] = [];
    let token = this.nextNonSpace();
    while (token.kind === "variable") {
      names.push(token.text);
      const after = this.nextNonSpace();
      if (after.kind === "comma" && names.length < (declarations === true ? 1 : declarations)) {
        token = this.nextNonSpace();
        continue;
      }
      if (after.kind === "declare" || after.kind === "assign") {
        pipeline.declare = names;
        pipeline.assign = after.kind === "assign";
        if (!pipeline.assign) this.variables[this.variables.length - 1]!.push(...names);
        else for (const name of names) this.lookupVariable(name, token.pos);
      }
      break;
    }
    if (pipeline.declare.length === 0) this.index = saved;
    for (;;) {
      const next = this.peekNonSpace();
      if (next.kind === "right" || next.kind === "rparen") {
        if (pipeline.commands.length === 0) this.fail(next.pos, `missing value for ${context}`);
        if (next.kind === "right") this.nextNonSpace();
        return pipeline;
      }
      pipeline.commands.push(this.command());
      const separator = this.peekNonSpace();
      if (separator.kind === "pipe") {
        this.nextNonSpace();
        const following = this.peekNonSpace();
        if (following.kind === "right" || following.kind === "rparen") this.fail(following.pos, "missing command");
      } else if (separator.kind !== "right" && separator.kind !== "rparen") {
        this.fail(separator.pos, `unexpected ${JSON.stringify(separator.text)} in operand`);
      }
    }
  }

  private command(): Command {
    const args: Operand[] = [];
    const pos = this.peekNonSpace().pos;
    for (;;) {
      const next = this.peekNonSpace();
      if (next.kind === "pipe" || next.kind === "right" || next.kind === "rparen") break;
      if (next.kind === "eof") this.fail(next.pos, "unclosed action");
      args.push(this.operand());
    }
    if (args.length === 0) this.fail(pos, "empty command");
    return { pos, args };
  }

  private lookupVariable(name: string, pos: number): void {
    for (const scope of this.variables) if (scope.includes(name)) return;
    this.fail(pos, `undefined variable "${name}"`);
  }

  private operand(): Operand {
    const token = this.nextNonSpace();
    const fail = (message: string): never => this.fail(token.pos, message);
    let operand: Operand;
    switch (token.kind) {
      case "field":
        return { kind: "field", pos: token.pos, receiver: null, path: this.fieldChain(token) };
      case "dot":
        operand = { kind: "dot", pos: token.pos };
        break;
      case "variable":
        this.lookupVariable(token.text, token.pos);
        return { kind: "variable", pos: token.pos, name: token.text, path: this.fieldChain(null) };
      case "string":
        return { kind: "string", pos: token.pos, value: unquoteGo(token.text, fail) };
      case "char": {
        const char = unquoteGo(token.text, fail);
        return {
          kind: "number",
          pos: token.pos,
          value: new NumberConstant(token.text, char.codePointAt(0) ?? 0, true),
        };
      }
      case "number":
        return { kind: "number", pos: token.pos, value: parseNumber(token.text, fail) };
      case "identifier": {
        if (token.text === "true" || token.text === "false")
          return { kind: "bool", pos: token.pos, value: token.text === "true" };
        if (token.text === "nil") return { kind: "nil", pos: token.pos };
        const fn = this.extension?.functions.get(token.text) ?? FUNCTIONS.get(token.text);
        if (fn === undefined) fail(`function "${token.text}" not defined`);
        return { kind: "function", pos: token.pos, name: token.text, fn: fn! };
      }
      case "lparen": {
        const pipeline = this.pipeline("parenthesized pipeline", true);
        const close = this.nextNonSpace();
        if (close.kind !== "rparen") fail("unclosed left paren");
        operand = { kind: "pipeline", pos: token.pos, pipeline };
        break;
      }
      default:
        return fail(`unexpected ${JSON.stringify(token.text)} in operand`);
    }
    const path = this.fieldChain(null);
    return path.length === 0 ? operand : { kind: "field", pos: token.pos, receiver: operand, path };
  }

  /** `.a.b.c` directly after an operand (no spaces). */
  private fieldChain(first: Token | null): string[] {
    const path = first === null ? [] : first.text.slice(1).split(".");
    while (this.peek().kind === "field") path.push(this.next().text.slice(1));
    return path;
  }
}
