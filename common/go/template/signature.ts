import { GoInt, GoTime, NumberConstant, settle, type TemplateValue, typeName } from "./values.js";

// How a template function is declared: its parameter types, converted as Go converts a template's arguments.

export interface TemplateContext {
  line: string;
  tsNs: bigint;
}

export type ParamType = "string" | "int" | "float" | "time" | "any";

export interface TemplateFunction {
  params: ParamType[];
  /** Type of the arguments after `params`; a function without it takes exactly `params`. */
  variadic?: ParamType;
  call(args: TemplateValue[], context: TemplateContext): TemplateValue;
  /** For and/or: arguments evaluated only as far as needed. */
  lazy?(args: (() => TemplateValue)[]): TemplateValue;
}

const GO_TYPE: Record<ParamType, string> = {
  string: "string",
  int: "int",
  float: "float64",
  time: "time.Time",
  any: "interface {}",
};

/** Go's conversion of an argument to a parameter type; an Error carries Go's message. */
export function convertArg(value: TemplateValue, type: ParamType): TemplateValue | Error {
  if (type === "any") return settle(value);
  if (value instanceof NumberConstant) {
    if (type === "int")
      return value.isInt ? new GoInt(value.value) : new Error(`expected integer; found ${value.text}`);
    if (type === "float") return value.value;
    return new Error(`expected ${GO_TYPE[type]}; found ${value.text}`);
  }
  const ok =
    (type === "string" && typeof value === "string") ||
    (type === "int" && value instanceof GoInt) ||
    (type === "float" && typeof value === "number") ||
    (type === "time" && value instanceof GoTime);
  if (ok) return value;
  if (value === null) return new Error(`invalid value; expected ${GO_TYPE[type]}`);
  return new Error(`wrong type for value; expected ${GO_TYPE[type]}; got ${typeName(value)}`);
}

export const str = (value: TemplateValue): string => value as string;

export const int = (value: TemplateValue): number => (value as GoInt).value;

export const time = (value: TemplateValue): bigint => (value as GoTime).ns;

export function fn(params: ParamType[], call: TemplateFunction["call"], variadic?: ParamType): TemplateFunction {
  return variadic === undefined ? { params, call } : { params, call, variadic };
}

export const stringFn = (transform: (text: string) => string): TemplateFunction =>
  fn(["string"], ([s]) => transform(str(s!)));
