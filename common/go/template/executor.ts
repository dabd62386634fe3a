// The subset of Go's text/template that Loki's line_format and label_format accept: text and `{{ }}` actions with
// `{{-`/`-}}` trimming and comments, pipelines with `|`, parenthesised pipelines, fields of the label map, variables,
// if/else if/else, with, range over the labels (sorted by key, as Go ranges over a map) with break/continue, and the
// function table of functions.ts. A template is parsed once (parser.ts); execution walks the tree.
//
// Errors follow Go's wording because Loki puts them in `__error_details__`:
// `template: line:1:9: executing "line" at <now>: wrong number of args for now: want 0 got 1`.

import type { Labels } from "../../../proto/labels.js";
import { convertArg, type TemplateContext } from "./signature.js";
import { lex, location } from "./lexer.js";
import { type Command, type Node, type Operand, Parser, type Pipeline, type TemplateExtension } from "./parser.js";
import {
  GoInt,
  isLabels,
  isTrue,
  printValue,
  settle,
  TemplateExecError,
  type TemplateValue,
  typeName,
} from "./values.js";

class Break {}
class Continue {}

interface State {
  data: Labels;
  context: TemplateContext;
  variables: [string, TemplateValue][];
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
