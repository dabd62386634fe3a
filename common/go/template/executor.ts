// The subset of Go's text/template that Loki's line_format and label_format accept: text and `{{ }}` actions with
// `{{-`/`-}}` trimming and comments, pipelines with `|`, parenthesised pipelines, fields of the label map, variables,
// if/else if/else, with, range over the labels (sorted by key, as Go ranges over a map) with break/continue, and the
// function table of functions.ts. A template is parsed once; execution walks the tree.
//
// Errors follow Go's wording because Loki puts them in `__error_details__`:
// `template: line:1:9: executing "line" at <now>: wrong number of args for now: want 0 got 1`.

import type { Labels } from "../../../proto/labels.js";
import { goEscape } from "../quote.js";
import { FUNCTIONS, type TemplateFunction, type TemplateContext, convertArg } from "./functions.js";
import {
  GoInt,
  isLabels,
  isTrue,
  NumberConstant,
  printValue,
  settle,
  TemplateExecError,
  type TemplateValue,
  typeName,
} from "./values.js";

export class TemplateParseError extends Error {
  override name = "TemplateParseError";
}

type Operand =
  | { kind: "field"; pos: number; receiver: Operand | null; path: string[] }
  | { kind: "dot"; pos: number }
  | { kind: "variable"; pos: number; name: string; path: string[] }
  | { kind: "string"; pos: number; value: string }
  | { kind: "number"; pos: number; value: NumberConstant }
  | { kind: "bool"; pos: number; value: boolean }
  | { kind: "nil"; pos: number }
  | { kind: "function"; pos: number; name: string; fn: TemplateFunction }
  | { kind: "pipeline"; pos: number; pipeline: Pipeline };

interface Command {
  pos: number;
  args: Operand[];
}

interface Pipeline {
  pos: number;
  declare: string[];
  assign: boolean;
  commands: Command[];
}

type Node =
  | { kind: "text"; text: string }
  | { kind: "action"; pipeline: Pipeline }
  | { kind: "if" | "with"; pipeline: Pipeline; list: Node[]; elseList: Node[] | null }
  | { kind: "range"; pipeline: Pipeline; list: Node[]; elseList: Node[] | null }
  | { kind: "break" | "continue"; pos: number };

// ---------------------------------------------------------------------------------------------------------------
// Lexing

type TokenKind =
  | "text"
  | "left"
  | "right"
  | "space"
  | "field"
  | "dot"
  | "variable"
  | "identifier"
  | "string"
  | "number"
  | "char"
  | "pipe"
  | "lparen"
  | "rparen"
  | "declare"
  | "assign"
  | "comma"
  | "eof";

interface Token {
  kind: TokenKind;
  text: string;
  pos: number;
}

const NUMBER =
  /^[+-]?(?:0[xX][0-9a-fA-F_]+(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?\d+)?|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)/;

function lex(name: string, source: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  const fail = (at: number, message: string): never => {
    throw new TemplateParseError(`template: ${name}:${lineOf(source, at)}: ${message}`);
  };
  while (pos < source.length) {
    const open = source.indexOf("{{", pos);
    if (open === -1) {
      tokens.push({ kind: "text", text: source.slice(pos), pos });
      break;
    }
    let text = source.slice(pos, open);
    let inner = open + 2;
    const trimLeft =
      source.startsWith("- ", inner) ||
      source.startsWith("-\t", inner) ||
      source.startsWith("-\n", inner) ||
      source.startsWith("-\r", inner);
    if (trimLeft) {
      text = text.replace(/[ \t\r\n]+$/, "");
      inner += 1;
    }
    if (text !== "") tokens.push({ kind: "text", text, pos });
    // A comment fills a whole action.
    const afterSpace = inner + /^[ \t\r\n]*/.exec(source.slice(inner))![0].length;
    if (source.startsWith("/*", trimLeft ? afterSpace : inner)) {
      const start = trimLeft ? afterSpace : inner;
      const end = source.indexOf("*/", start + 2);
      if (end === -1) fail(start, "unclosed comment");
      let close = end + 2;
      const trimRight = /^[ \t\r\n]+-}}/.test(source.slice(close));
      close = trimRight ? source.indexOf("-}}", close) : close;
      if (!source.startsWith(trimRight ? "-}}" : "}}", close)) fail(close, "comment ends before closing delimiter");
      pos = close + (trimRight ? 3 : 2);
      if (trimRight) pos += /^[ \t\r\n]*/.exec(source.slice(pos))![0].length;
      continue;
    }
    tokens.push({ kind: "left", text: "{{", pos: open });
    pos = inner;
    for (;;) {
      if (pos >= source.length) fail(open, "unclosed action");
      const rest = source.slice(pos);
      const closing = /^[ \t\r\n]+-}}/.exec(rest);
      if (closing !== null) {
        tokens.push({ kind: "right", text: "}}", pos });
        pos += closing[0].length;
        pos += /^[ \t\r\n]*/.exec(source.slice(pos))![0].length;
        break;
      }
      if (rest.startsWith("}}")) {
        tokens.push({ kind: "right", text: "}}", pos });
        pos += 2;
        break;
      }
      const char = rest[0]!;
      let match: RegExpExecArray | null;
      if ((match = /^[ \t\r\n]+/.exec(rest)) !== null) tokens.push({ kind: "space", text: match[0], pos });
      else if ((match = /^\.[A-Za-z_][A-Za-z0-9_]*/.exec(rest)) !== null)
        tokens.push({ kind: "field", text: match[0], pos });
      else if ((match = /^\$[A-Za-z0-9_]*/.exec(rest)) !== null) tokens.push({ kind: "variable", text: match[0], pos });
      else if ((match = NUMBER.exec(rest)) !== null && !(char === "." && !/^\.\d/.test(rest))) {
        tokens.push({ kind: "number", text: match[0], pos });
      } else if (char === ".") tokens.push({ kind: "dot", text: ".", pos });
      else if ((match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest)) !== null)
        tokens.push({ kind: "identifier", text: match[0], pos });
      else if ((match = /^"(?:[^"\\\n]|\\.)*"/.exec(rest)) !== null)
        tokens.push({ kind: "string", text: match[0], pos });
      else if ((match = /^`[^`]*`/.exec(rest)) !== null) tokens.push({ kind: "string", text: match[0], pos });
      else if ((match = /^'(?:[^'\\\n]|\\.[^']*)'/.exec(rest)) !== null)
        tokens.push({ kind: "char", text: match[0], pos });
      else if (rest.startsWith(":=")) tokens.push({ kind: "declare", text: ":=", pos });
      else if (char === "=") tokens.push({ kind: "assign", text: "=", pos });
      else if (char === "|") tokens.push({ kind: "pipe", text: "|", pos });
      else if (char === "(") tokens.push({ kind: "lparen", text: "(", pos });
      else if (char === ")") tokens.push({ kind: "rparen", text: ")", pos });
      else if (char === ",") tokens.push({ kind: "comma", text: ",", pos });
      else if (char === '"' || char === "`") fail(pos, "unterminated quoted string");
      else fail(pos, `unexpected ${JSON.stringify(char)} in command`);
      pos += tokens[tokens.length - 1]!.text.length;
    }
  }
  tokens.push({ kind: "eof", text: "", pos: source.length });
  return tokens;
}

function lineOf(source: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos && i < source.length; i++) if (source.charCodeAt(i) === 10) line++;
  return line;
}

/** Go's `line:col` of an error: 1-based line, 0-based byte column. */
function location(source: string, pos: number): string {
  const before = source.slice(0, pos);
  const newline = before.lastIndexOf("\n");
  const column = Buffer.byteLength(newline === -1 ? before : before.slice(newline + 1));
  return `${lineOf(source, pos)}:${column}`;
}

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

// ---------------------------------------------------------------------------------------------------------------
// Parsing

class Parser {
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

// ---------------------------------------------------------------------------------------------------------------
// Execution

class Break {}
class Continue {}

interface State {
  data: Labels;
  context: TemplateContext;
  variables: [string, TemplateValue][];
}

/**
 * What another template dialect adds to Loki's: predeclared variables (Prometheus' `$labels` and `$value`) and
 * functions (its `humanize` family), which take precedence over Loki's of the same name.
 */
export interface TemplateExtension {
  variables: readonly string[];
  functions: ReadonlyMap<string, TemplateFunction>;
}

export interface CompiledTemplate {
  /** `variables` gives the values of the extension's predeclared variables. */
  execute(data: Labels, context: TemplateContext, variables?: readonly (readonly [string, TemplateValue])[]): string;
  /** The single field of a template that is exactly `{{.name}}`, which Loki evaluates without the map. */
  simpleField: string | undefined;
}

export function compileTemplate(name: string, source: string, extension?: TemplateExtension): CompiledTemplate {
  const nodes = new Parser(name, source, lex(name, source), extension).parse();
  const fail = (pos: number, at: string, message: string): never => {
    throw new TemplateExecError(
      `template: ${name}:${location(source, pos)}: executing "${name}" at <${at}>: ${message}`,
    );
  };

  const describe = (operand: Operand): string => {
    switch (operand.kind) {
      case "field":
        return (operand.receiver === null ? "" : describe(operand.receiver)) + "." + operand.path.join(".");
      case "dot":
        return ".";
      case "variable":
        return operand.name + operand.path.map((part) => "." + part).join("");
      case "string":
        return JSON.stringify(operand.value);
      case "number":
        return operand.value.text;
      case "bool":
        return String(operand.value);
      case "nil":
        return "nil";
      case "function":
        return operand.name;
      case "pipeline":
        return "(" + operand.pipeline.commands.map((command) => command.args.map(describe).join(" ")).join(" | ") + ")";
    }
  };

  const field = (receiver: TemplateValue, path: string[], operand: Operand, hasArgs: boolean): TemplateValue => {
    let value = receiver;
    for (const part of path) {
      if (value === null) return fail(operand.pos, describe(operand), `nil pointer evaluating interface {}.${part}`);
      if (!isLabels(value))
        return fail(operand.pos, describe(operand), `can't evaluate field ${part} in type ${typeName(value)}`);
      if (hasArgs) return fail(operand.pos, describe(operand), `${part} is not a method but has arguments`);
      value = value[part] ?? "";
    }
    return value;
  };

  const variable = (state: State, name: string): TemplateValue => {
    for (let i = state.variables.length - 1; i >= 0; i--)
      if (state.variables[i]![0] === name) return state.variables[i]![1];
    return null;
  };

  const evalOperand = (state: State, dot: TemplateValue, operand: Operand, hasArgs: boolean): TemplateValue => {
    switch (operand.kind) {
      case "field": {
        const receiver = operand.receiver === null ? dot : evalOperand(state, dot, operand.receiver, false);
        return field(receiver, operand.path, operand, hasArgs);
      }
      case "dot":
        return dot;
      case "variable":
        return field(variable(state, operand.name), operand.path, operand, hasArgs);
      case "string":
        return operand.value;
      case "number":
        return operand.value;
      case "bool":
        return operand.value;
      case "nil":
        return null;
      case "function":
        return call(state, dot, operand, [], undefined);
      case "pipeline":
        return evalPipeline(state, dot, operand.pipeline);
    }
  };

  const call = (
    state: State,
    dot: TemplateValue,
    operand: Extract<Operand, { kind: "function" }>,
    args: Operand[],
    final: TemplateValue | undefined,
  ): TemplateValue => {
    const fn = operand.fn;
    const count = args.length + (final === undefined ? 0 : 1);
    const required = fn.params.length;
    if (fn.variadic === undefined ? count !== required : count < required) {
      const want = fn.variadic === undefined ? `${required}` : `at least ${required}`;
      return fail(operand.pos, operand.name, `wrong number of args for ${operand.name}: want ${want} got ${count}`);
    }
    if (fn.lazy !== undefined) {
      const thunks = args.map((arg) => () => evalOperand(state, dot, arg, false));
      if (final !== undefined) thunks.push(() => final);
      try {
        return fn.lazy(thunks);
      } catch (err) {
        return fail(operand.pos, operand.name, callError(operand.name, err));
      }
    }
    const values: TemplateValue[] = [];
    for (let i = 0; i < count; i++) {
      const raw = i < args.length ? evalOperand(state, dot, args[i]!, false) : final!;
      const type = i < required ? fn.params[i]! : fn.variadic!;
      const converted = convertArg(raw, type);
      if (converted instanceof Error) {
        const at = i < args.length ? describe(args[i]!) : operand.name;
        return fail(i < args.length ? args[i]!.pos : operand.pos, at, converted.message);
      }
      values.push(converted);
    }
    try {
      return fn.call(values, state.context);
    } catch (err) {
      return fail(operand.pos, operand.name, callError(operand.name, err));
    }
  };

  const evalCommand = (
    state: State,
    dot: TemplateValue,
    command: Command,
    final: TemplateValue | undefined,
  ): TemplateValue => {
    const [head, ...args] = command.args as [Operand, ...Operand[]];
    if (head.kind === "function") return call(state, dot, head, args, final);
    const hasArgs = args.length > 0 || final !== undefined;
    if (head.kind === "field" || head.kind === "variable") return evalOperand(state, dot, head, hasArgs);
    if (hasArgs) return fail(head.pos, describe(head), `can't give argument to non-function ${describe(head)}`);
    return evalOperand(state, dot, head, false);
  };

  const evalPipeline = (state: State, dot: TemplateValue, pipeline: Pipeline): TemplateValue => {
    let value: TemplateValue | undefined;
    for (const command of pipeline.commands) value = evalCommand(state, dot, command, value);
    const result = settle(value!);
    if (pipeline.declare.length > 0) {
      if (pipeline.assign) {
        for (let i = state.variables.length - 1; i >= 0; i--) {
          if (state.variables[i]![0] === pipeline.declare[0]) {
            state.variables[i]![1] = result;
            break;
          }
        }
      } else state.variables.push([pipeline.declare[0]!, result]);
    }
    return result;
  };

  const walk = (state: State, dot: TemplateValue, list: Node[], out: string[]): void => {
    for (const node of list) {
      switch (node.kind) {
        case "text":
          out.push(node.text);
          break;
        case "action": {
          const value = evalPipeline(state, dot, node.pipeline);
          if (node.pipeline.declare.length === 0) out.push(printValue(value));
          break;
        }
        case "if":
        case "with": {
          const mark = state.variables.length;
          const value = evalPipeline(state, dot, node.pipeline);
          if (isTrue(value)) walk(state, node.kind === "with" ? value : dot, node.list, out);
          else if (node.elseList !== null) walk(state, dot, node.elseList, out);
          state.variables.length = mark;
          break;
        }
        case "range":
          range(state, dot, node, out);
          break;
        case "break":
          throw new Break();
        case "continue":
          throw new Continue();
      }
    }
  };

  const range = (state: State, dot: TemplateValue, node: Extract<Node, { kind: "range" }>, out: string[]): void => {
    const mark = state.variables.length;
    const pipeline = { ...node.pipeline, declare: [] };
    const value = evalPipeline(state, dot, pipeline);
    const entries: [TemplateValue, TemplateValue][] = [];
    if (isLabels(value)) for (const key of Object.keys(value).sort()) entries.push([key, value[key]!]);
    else if (value instanceof GoInt) {
      for (let i = 0; i < value.value; i++) entries.push([new GoInt(i), new GoInt(i)]);
    } else if (value !== null)
      fail(
        node.pipeline.pos,
        describe(node.pipeline.commands[0]!.args[0]!),
        `range can't iterate over ${printValue(value)}`,
      );
    const [first, second] = node.pipeline.declare;
    for (const [key, element] of entries) {
      state.variables.length = mark;
      if (first !== undefined && second !== undefined) state.variables.push([first, key], [second, element]);
      else if (first !== undefined) state.variables.push([first, element]);
      try {
        walk(state, element, node.list, out);
      } catch (err) {
        if (err instanceof Break) break;
        if (!(err instanceof Continue)) throw err;
      }
    }
    state.variables.length = mark;
    if (entries.length === 0 && node.elseList !== null) walk(state, dot, node.elseList, out);
  };

  const single = nodes.length === 1 ? nodes[0]! : undefined;
  const simpleField =
    single?.kind === "action" &&
    single.pipeline.declare.length === 0 &&
    single.pipeline.commands.length === 1 &&
    single.pipeline.commands[0]!.args.length === 1 &&
    single.pipeline.commands[0]!.args[0]!.kind === "field" &&
    single.pipeline.commands[0]!.args[0]!.receiver === null &&
    single.pipeline.commands[0]!.args[0]!.path.length === 1
      ? single.pipeline.commands[0]!.args[0]!.path[0]
      : undefined;

  return {
    simpleField,
    execute(data, context, variables = []) {
      const out: string[] = [];
      walk(
        {
          data,
          context,
          variables: [["$", data], ...variables.map(([name, value]): [string, TemplateValue] => [name, value])],
        },
        data,
        nodes,
        out,
      );
      return out.join("");
    },
  };
}

function callError(name: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return `error calling ${name}: ${message}`;
}
