// The functions Loki registers for line_format and label_format: Go's template builtins, Loki's own (fmt.go) and
// the sprig subset it imports, with sprig's loose number conversions (cast.ToInt64 turns "abc" into 0) and its
// decimal arithmetic for addf/subf/mulf/divf (0.1 + 0.2 is 0.3 there). `fromJson` is left out.

import { formatFloatFixed } from "../float-format.js";
import { goParseBytes, goParseDurationSeconds, goParseFloat } from "../parse.js";
import { goQuote } from "../quote.js";
import { compileRe2, expandReplacement, replaceAllMatches } from "../../regex.js";
import { formatGoTime, parseGoTime } from "../time-layout.js";
import {
  GoInt,
  GoTime,
  isLabels,
  isTrue,
  NumberConstant,
  printValue,
  settle,
  type TemplateValue,
  typeName,
} from "./values.js";

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

const str = (value: TemplateValue): string => value as string;
const int = (value: TemplateValue): number => (value as GoInt).value;
const time = (value: TemplateValue): bigint => (value as GoTime).ns;

/** cast.ToInt64 as sprig uses it: anything unconvertible is 0. */
function toInt64(value: TemplateValue): number {
  const settled = settle(value);
  if (settled instanceof GoInt) return settled.value;
  if (typeof settled === "number") return Number.isFinite(settled) ? Math.trunc(settled) : 0;
  if (typeof settled === "boolean") return settled ? 1 : 0;
  if (typeof settled === "string") {
    const text = /^([+-]?\d+)\.0*$/.exec(settled)?.[1] ?? settled;
    const match = /^([+-]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|[1-9]\d*|0)$/.exec(text);
    if (match === null) return 0;
    const digits = match[2]!;
    let parsed: number;
    if (/^0[xX]/.test(digits)) parsed = parseInt(digits.slice(2), 16);
    else if (/^0[bB]/.test(digits)) parsed = parseInt(digits.slice(2), 2);
    else if (/^0[oO]?[0-7]/.test(digits)) parsed = parseInt(digits.replace(/^0[oO]?/, ""), 8);
    else parsed = Number(digits);
    return match[1] === "-" ? -parsed : parsed;
  }
  return 0;
}

/** cast.ToFloat64: anything unconvertible is 0. */
function toFloat64(value: TemplateValue): number {
  const settled = settle(value);
  if (typeof settled === "number") return settled;
  if (settled instanceof GoInt) return settled.value;
  if (typeof settled === "boolean") return settled ? 1 : 0;
  if (typeof settled === "string") return goParseFloat(settled).value ?? 0;
  return 0;
}

// Decimal arithmetic (shopspring/decimal as sprig uses it): a float enters as its shortest decimal spelling.
interface Decimal {
  coefficient: bigint;
  exponent: number;
}

function toDecimal(value: number): Decimal {
  if (!Number.isFinite(value)) throw new Error(`cannot create a Decimal from ${value}`);
  const [mantissa, exponentText = "0"] = String(value).split("e") as [string, string?];
  const [whole, fraction = ""] = mantissa.split(".") as [string, string?];
  return { coefficient: BigInt(whole + fraction), exponent: Number(exponentText) - fraction.length };
}

function align(a: Decimal, b: Decimal): [bigint, bigint, number] {
  const exponent = Math.min(a.exponent, b.exponent);
  return [
    a.coefficient * 10n ** BigInt(a.exponent - exponent),
    b.coefficient * 10n ** BigInt(b.exponent - exponent),
    exponent,
  ];
}

function decimalToNumber(value: Decimal): number {
  return Number(`${value.coefficient}e${value.exponent}`);
}

const DIVISION_PRECISION = 16;

const DECIMAL_OPS: Record<"add" | "sub" | "mul" | "div", (a: Decimal, b: Decimal) => Decimal> = {
  add: (a, b) => {
    const [x, y, exponent] = align(a, b);
    return { coefficient: x + y, exponent };
  },
  sub: (a, b) => {
    const [x, y, exponent] = align(a, b);
    return { coefficient: x - y, exponent };
  },
  mul: (a, b) => ({ coefficient: a.coefficient * b.coefficient, exponent: a.exponent + b.exponent }),
  div: (a, b) => {
    if (b.coefficient === 0n) throw new Error("decimal division by 0");
    // a / b rounded half away from zero to 16 digits after the point.
    const shift = a.exponent - b.exponent + DIVISION_PRECISION;
    let numerator = a.coefficient;
    let denominator = b.coefficient;
    if (shift >= 0) numerator *= 10n ** BigInt(shift);
    else denominator *= 10n ** BigInt(-shift);
    const negative = numerator < 0n !== denominator < 0n;
    const n = numerator < 0n ? -numerator : numerator;
    const d = denominator < 0n ? -denominator : denominator;
    let quotient = n / d;
    if ((n % d) * 2n >= d) quotient += 1n;
    return { coefficient: negative ? -quotient : quotient, exponent: -DIVISION_PRECISION };
  },
};

function decimalOp(op: keyof typeof DECIMAL_OPS, first: TemplateValue, rest: TemplateValue[]): number {
  let result = toDecimal(toFloat64(first));
  for (const value of rest) result = DECIMAL_OPS[op](result, toDecimal(toFloat64(value)));
  return decimalToNumber(result);
}

/** strings.Trim family: `cutset` is a set of characters. */
function trimSet(text: string, cutset: string, left: boolean, right: boolean): string {
  const chars = new Set(cutset);
  const points = [...text];
  let start = 0;
  let end = points.length;
  if (left) while (start < end && chars.has(points[start]!)) start++;
  if (right) while (end > start && chars.has(points[end - 1]!)) end--;
  return points.slice(start, end).join("");
}

const GO_SPACE =
  /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

function trimSpace(text: string): string {
  return text.replace(GO_SPACE, "");
}

/** strings.Title: the first letter of every word; a word starts after anything but a letter, digit or `_`. */
function title(text: string): string {
  let previous = " ";
  let out = "";
  for (const char of text) {
    const separator = !/[\p{L}\p{N}_]/u.test(previous);
    out += separator ? char.toUpperCase() : char;
    previous = char;
  }
  return out;
}

/** url.QueryEscape: everything but unreserved characters is escaped, spaces become `+`. */
function queryEscape(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (char) => "%" + char.charCodeAt(0).toString(16).toUpperCase())
    .replaceAll("%20", "+");
}

function queryUnescape(text: string): string {
  const bad = /%(?![0-9a-fA-F]{2})(.{0,2})/.exec(text);
  if (bad !== null) throw new Error(`invalid URL escape ${JSON.stringify("%" + bad[1])}`);
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === "%") {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (char === "+") bytes.push(32);
    else bytes.push(...Buffer.from(char));
  }
  return Buffer.from(bytes).toString("utf8");
}

const regexCache = new Map<string, RegExp>();

/** Template regexes arrive as strings at run time; each distinct one is compiled once. */
function replaceAll(pattern: string, text: string, replacement: (match: RegExpExecArray) => string): string {
  let regex = regexCache.get(pattern);
  if (regex === undefined) {
    regex = compileRe2(pattern);
    if (regexCache.size < 1024) regexCache.set(pattern, regex);
  }
  return replaceAllMatches(regex, text, replacement);
}

function codePoints(text: string): string[] {
  return [...text];
}

/** Loki's substring (code points): a negative start means from 0, a negative or too large end means to the end. */
function substring(start: number, end: number, text: string): string {
  const points = codePoints(text);
  const length = points.length;
  if (end > length) end = length;
  if (start > length) start = length;
  if (start < 0) return end < 0 ? "" : points.slice(0, end).join("");
  if (end < 0) return points.slice(start).join("");
  if (start > end) return "";
  return points.slice(start, end).join("");
}

function truncate(count: number, text: string): string {
  const points = codePoints(text);
  if (count < 0 && points.length + count > 0) return points.slice(points.length + count).join("");
  if (count >= 0 && points.length > count) return points.slice(0, count).join("");
  return text;
}

function align2(count: number, text: string, left: boolean): string {
  const points = codePoints(text);
  if (count < 0 || count === points.length) return text;
  const pad = count - points.length;
  if (pad > 0) return left ? text + " ".repeat(pad) : " ".repeat(pad) + text;
  return left ? points.slice(0, count).join("") : points.slice(points.length - count).join("");
}

/** Loki's b64dec: restores missing padding; a decoding error becomes the output. */
function base64Decode(text: string): string {
  let padded = text;
  const remainder = padded.length % 4;
  if (remainder !== 0 && remainder !== 1) padded += "=".repeat(4 - remainder);
  const invalid =
    /[^A-Za-z0-9+/=]/.exec(padded) ?? (padded.length % 4 !== 0 ? { index: padded.length - (padded.length % 4) } : null);
  if (invalid !== null) return `illegal base64 data at input byte ${invalid.index}`;
  const padding = padded.indexOf("=");
  if (padding !== -1 && !/^={1,2}$/.test(padded.slice(padding))) return `illegal base64 data at input byte ${padding}`;
  return Buffer.from(padded, "base64").toString("utf8");
}

function unixToTime(epoch: string): GoTime {
  const fail = (detail: string): never => {
    throw new Error(`unable to parse time '${epoch}': ${detail}`);
  };
  if (!/^[+-]?\d+$/.test(epoch)) fail(`strconv.ParseInt: parsing ${JSON.stringify(epoch)}: invalid syntax`);
  const value = BigInt(epoch);
  switch (epoch.length) {
    case 5:
      return new GoTime(value * 86_400_000_000_000n);
    case 10:
      return new GoTime(value * 1_000_000_000n);
    case 13:
      return new GoTime(value * 1_000_000n);
    case 16:
      return new GoTime(value * 1_000n);
    case 19:
      return new GoTime(value);
    default:
      return fail("%!w(<nil>)");
  }
}

const ZERO_TIME = new GoTime(-62135596800n * 1_000_000_000n);

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/** sprig's empty(): nil, "", 0, false and empty maps. */
function isEmpty(value: TemplateValue): boolean {
  const settled = settle(value);
  if (settled instanceof GoTime) return false;
  return !isTrue(settled);
}

type Comparable = { kind: "int" | "float" | "string" | "bool"; value: number | string | boolean };

function comparable(value: TemplateValue): Comparable | undefined {
  const settled = settle(value);
  if (settled instanceof GoInt) return { kind: "int", value: settled.value };
  if (typeof settled === "number") return { kind: "float", value: settled };
  if (typeof settled === "string") return { kind: "string", value: settled };
  if (typeof settled === "boolean") return { kind: "bool", value: settled };
  return undefined;
}

function basicEqual(a: TemplateValue, b: TemplateValue): boolean {
  const x = comparable(a);
  const y = comparable(b);
  if (x === undefined || y === undefined) {
    if (settle(a) === null || settle(b) === null) return settle(a) === settle(b);
    throw new Error("invalid type for comparison");
  }
  if (x.kind !== y.kind) throw new Error("incompatible types for comparison");
  return x.value === y.value;
}

function lessThan(a: TemplateValue, b: TemplateValue): boolean {
  const x = comparable(a);
  const y = comparable(b);
  if (x === undefined || y === undefined || x.kind === "bool" || y.kind === "bool")
    throw new Error("invalid type for comparison");
  if (x.kind !== y.kind) throw new Error("incompatible types for comparison");
  return x.value < y.value;
}

/** fmt.Sprintf for the verbs people use in log templates: %s %v %d %f %g %e %q %x %X %t %c %%. */
export function sprintf(format: string, args: TemplateValue[]): string {
  let next = 0;
  const out = format.replace(
    /%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])/g,
    (_spec, flags: string, widthText?: string, precisionText?: string, verb?: string) => {
      if (verb === "%") return "%";
      if (next >= args.length) return `%!${verb}(MISSING)`;
      const arg = settle(args[next++]!);
      const precision = precisionText === undefined ? undefined : Number(precisionText);
      let text: string;
      const numeric = arg instanceof GoInt ? arg.value : typeof arg === "number" ? arg : undefined;
      switch (verb) {
        case "s":
        case "v":
          text = printValue(arg);
          if (verb === "s" && precision !== undefined) text = codePoints(text).slice(0, precision).join("");
          break;
        case "d":
          text = arg instanceof GoInt ? String(arg.value) : `%!d(${typeName(arg)}=${printValue(arg)})`;
          break;
        case "f":
        case "F":
        case "e":
        case "g":
          if (numeric === undefined || arg instanceof GoInt) text = `%!${verb}(${typeName(arg)}=${printValue(arg)})`;
          else if (verb === "e") text = numeric.toExponential(precision ?? 6).replace(/e([+-])(\d)$/, "e$10$2");
          else if (verb === "g")
            text = precision === undefined ? printValue(numeric) : String(Number(numeric.toPrecision(precision)));
          else text = formatFloatFixed(numeric, precision);
          break;
        case "q":
          text = goQuote(printValue(arg));
          break;
        case "x":
        case "X":
          text = arg instanceof GoInt ? arg.value.toString(16) : Buffer.from(printValue(arg)).toString("hex");
          if (verb === "X") text = text.toUpperCase();
          break;
        case "t":
          text = typeof arg === "boolean" ? String(arg) : `%!t(${typeName(arg)}=${printValue(arg)})`;
          break;
        case "c":
          text = arg instanceof GoInt ? String.fromCodePoint(arg.value) : `%!c(${typeName(arg)}=${printValue(arg)})`;
          break;
        default:
          return `%!${verb}(${typeName(arg)}=${printValue(arg)})`;
      }
      if (
        flags.includes("+") &&
        numeric !== undefined &&
        numeric >= 0 &&
        !text.startsWith("+") &&
        /[dfFeg]/.test(verb!)
      )
        text = "+" + text;
      const width = widthText === undefined ? 0 : Number(widthText);
      if (text.length < width) {
        if (flags.includes("-")) text = text.padEnd(width);
        else if (flags.includes("0") && numeric !== undefined) {
          const sign = /^[+-]/.test(text) ? text[0]! : "";
          text = sign + text.slice(sign.length).padStart(width - sign.length, "0");
        } else text = text.padStart(width);
      }
      return text;
    },
  );
  if (next < args.length) {
    const extra = args.slice(next).map((arg) => `${typeName(arg)}=${printValue(arg)}`);
    return `${out}%!(EXTRA ${extra.join(", ")})`;
  }
  return out;
}

function fn(params: ParamType[], call: TemplateFunction["call"], variadic?: ParamType): TemplateFunction {
  return variadic === undefined ? { params, call } : { params, call, variadic };
}

const stringFn = (transform: (text: string) => string): TemplateFunction => fn(["string"], ([s]) => transform(str(s!)));

export const FUNCTIONS = new Map<string, TemplateFunction>([
  // Go builtins
  [
    "and",
    {
      params: ["any"],
      variadic: "any",
      call: () => null,
      lazy: (args) => {
        let value: TemplateValue = null;
        for (const arg of args) {
          value = settle(arg());
          if (!isTrue(value)) return value;
        }
        return value;
      },
    },
  ],
  [
    "or",
    {
      params: ["any"],
      variadic: "any",
      call: () => null,
      lazy: (args) => {
        let value: TemplateValue = null;
        for (const arg of args) {
          value = settle(arg());
          if (isTrue(value)) return value;
        }
        return value;
      },
    },
  ],
  ["not", fn(["any"], ([a]) => !isTrue(a!))],
  [
    "len",
    fn(["any"], ([a]) => {
      if (typeof a === "string") return new GoInt(Buffer.byteLength(a));
      if (a !== null && a !== undefined && isLabels(a)) return new GoInt(Object.keys(a).length);
      throw new Error(`len of type ${typeName(a ?? null)}`);
    }),
  ],
  [
    "index",
    fn(
      ["any"],
      ([item, ...keys]) => {
        let value: TemplateValue = item!;
        for (const key of keys) {
          if (value !== null && isLabels(value) && typeof key === "string") value = value[key] ?? "";
          else if (typeof value === "string" && key instanceof GoInt) {
            const encoded: Buffer = Buffer.from(value);
            if (key.value < 0 || key.value >= encoded.length) throw new Error(`index out of range: ${key.value}`);
            value = new GoInt(encoded[key.value]!);
          } else throw new Error(`can't index item of type ${typeName(value)}`);
        }
        return value;
      },
      "any",
    ),
  ],
  [
    "eq",
    fn(
      ["any"],
      ([a, ...rest]) => {
        if (rest.length === 0) throw new Error("missing argument for comparison");
        return rest.some((b) => basicEqual(a!, b));
      },
      "any",
    ),
  ],
  ["ne", fn(["any", "any"], ([a, b]) => !basicEqual(a!, b!))],
  ["lt", fn(["any", "any"], ([a, b]) => lessThan(a!, b!))],
  ["le", fn(["any", "any"], ([a, b]) => lessThan(a!, b!) || basicEqual(a!, b!))],
  ["gt", fn(["any", "any"], ([a, b]) => !(lessThan(a!, b!) || basicEqual(a!, b!)))],
  ["ge", fn(["any", "any"], ([a, b]) => !lessThan(a!, b!))],
  [
    "print",
    fn(
      [],
      (args) =>
        args
          .map(
            (arg, i) =>
              (i > 0 && typeof arg !== "string" && typeof args[i - 1] !== "string" ? " " : "") + printValue(arg),
          )
          .join(""),
      "any",
    ),
  ],
  ["println", fn([], (args) => args.map(printValue).join(" ") + "\n", "any")],
  ["printf", fn(["string"], ([format, ...args]) => sprintf(str(format!), args), "any")],

  // Loki's functions
  ["ToLower", stringFn((s) => s.toLowerCase())],
  ["ToUpper", stringFn((s) => s.toUpperCase())],
  [
    "Replace",
    fn(["string", "string", "string", "int"], ([s, old, replacement, n]) => {
      const text = str(s!);
      const count = int(n!);
      if (count < 0) return text.split(str(old!)).join(str(replacement!));
      let out = text;
      let from = 0;
      for (let i = 0; i < count; i++) {
        const at = out.indexOf(str(old!), from);
        if (at === -1) break;
        out = out.slice(0, at) + str(replacement!) + out.slice(at + str(old!).length);
        from = at + str(replacement!).length + (str(old!) === "" ? 1 : 0);
      }
      return out;
    }),
  ],
  ["Trim", fn(["string", "string"], ([s, cutset]) => trimSet(str(s!), str(cutset!), true, true))],
  ["TrimLeft", fn(["string", "string"], ([s, cutset]) => trimSet(str(s!), str(cutset!), true, false))],
  ["TrimRight", fn(["string", "string"], ([s, cutset]) => trimSet(str(s!), str(cutset!), false, true))],
  [
    "TrimPrefix",
    fn(["string", "string"], ([s, prefix]) =>
      str(s!).startsWith(str(prefix!)) ? str(s!).slice(str(prefix!).length) : str(s!),
    ),
  ],
  [
    "TrimSuffix",
    fn(["string", "string"], ([s, suffix]) =>
      str(suffix!) !== "" && str(s!).endsWith(str(suffix!)) ? str(s!).slice(0, -str(suffix!).length) : str(s!),
    ),
  ],
  ["TrimSpace", stringFn(trimSpace)],
  [
    "regexReplaceAll",
    fn(["string", "string", "string"], ([re, s, repl]) =>
      replaceAll(str(re!), str(s!), (match) => expandReplacement(str(repl!), match)),
    ),
  ],
  [
    "regexReplaceAllLiteral",
    fn(["string", "string", "string"], ([re, s, repl]) => replaceAll(str(re!), str(s!), () => str(repl!))),
  ],
  [
    "count",
    fn(["string", "string"], ([re, s]) => {
      let count = 0;
      replaceAll(str(re!), str(s!), () => {
        count++;
        return "";
      });
      return new GoInt(count);
    }),
  ],
  ["urldecode", stringFn(queryUnescape)],
  ["urlencode", stringFn(queryEscape)],
  [
    "bytes",
    fn(["string"], ([s]) => {
      const parsed = goParseBytes(str(s!));
      if (parsed.error !== undefined) throw new Error(parsed.error);
      return parsed.value;
    }),
  ],
  ...(["duration", "duration_seconds"] as const).map((name): [string, TemplateFunction] => [
    name,
    fn(["string"], ([s]) => {
      const parsed = goParseDurationSeconds(str(s!));
      if (parsed.error !== undefined) throw new Error(parsed.error);
      return parsed.value;
    }),
  ]),
  ["unixEpochMillis", fn(["time"], ([t]) => String(floorDiv(time(t!), 1_000_000n)))],
  ["unixEpochNanos", fn(["time"], ([t]) => String(time(t!)))],
  [
    "toDateInZone",
    fn(["string", "string", "string"], ([layout, zone, s]) => {
      const ns = parseGoTime(str(layout!), str(s!), str(zone!));
      return ns === undefined ? ZERO_TIME : new GoTime(ns);
    }),
  ],
  ["unixToTime", fn(["string"], ([s]) => unixToTime(str(s!)))],
  ["alignLeft", fn(["int", "string"], ([count, s]) => align2(int(count!), str(s!), true))],
  ["alignRight", fn(["int", "string"], ([count, s]) => align2(int(count!), str(s!), false))],
  ["b64dec", stringFn(base64Decode)],

  // sprig
  ["b64enc", stringFn((s) => Buffer.from(s).toString("base64"))],
  ["lower", stringFn((s) => s.toLowerCase())],
  ["upper", stringFn((s) => s.toUpperCase())],
  ["title", stringFn(title)],
  ["trunc", fn(["int", "string"], ([count, s]) => truncate(int(count!), str(s!)))],
  ["substr", fn(["int", "int", "string"], ([start, end, s]) => substring(int(start!), int(end!), str(s!)))],
  ["contains", fn(["string", "string"], ([sub, s]) => str(s!).includes(str(sub!)))],
  ["hasPrefix", fn(["string", "string"], ([prefix, s]) => str(s!).startsWith(str(prefix!)))],
  ["hasSuffix", fn(["string", "string"], ([suffix, s]) => str(s!).endsWith(str(suffix!)))],
  [
    "indent",
    fn(["int", "string"], ([spaces, s]) => {
      const pad = " ".repeat(Math.max(0, int(spaces!)));
      return pad + str(s!).replaceAll("\n", "\n" + pad);
    }),
  ],
  [
    "nindent",
    fn(["int", "string"], ([spaces, s]) => {
      const pad = " ".repeat(Math.max(0, int(spaces!)));
      return "\n" + pad + str(s!).replaceAll("\n", "\n" + pad);
    }),
  ],
  [
    "replace",
    fn(["string", "string", "string"], ([old, replacement, s]) => str(s!).split(str(old!)).join(str(replacement!))),
  ],
  [
    "repeat",
    fn(["int", "string"], ([count, s]) => {
      if (int(count!) < 0) throw new Error("strings: negative Repeat count");
      return str(s!).repeat(int(count!));
    }),
  ],
  ["trim", stringFn(trimSpace)],
  ["trimAll", fn(["string", "string"], ([cutset, s]) => trimSet(str(s!), str(cutset!), true, true))],
  [
    "trimSuffix",
    fn(["string", "string"], ([suffix, s]) =>
      str(suffix!) !== "" && str(s!).endsWith(str(suffix!)) ? str(s!).slice(0, -str(suffix!).length) : str(s!),
    ),
  ],
  [
    "trimPrefix",
    fn(["string", "string"], ([prefix, s]) =>
      str(s!).startsWith(str(prefix!)) ? str(s!).slice(str(prefix!).length) : str(s!),
    ),
  ],
  ["int", fn(["any"], ([v]) => new GoInt(toInt64(v!)))],
  ["float64", fn(["any"], ([v]) => toFloat64(v!))],
  ["add", fn([], (args) => new GoInt(args.reduce<number>((sum, v) => sum + toInt64(v), 0)), "any")],
  ["sub", fn(["any", "any"], ([a, b]) => new GoInt(toInt64(a!) - toInt64(b!)))],
  [
    "mul",
    fn(
      ["any"],
      ([a, ...rest]) => new GoInt(rest.reduce<number>((product, v) => product * toInt64(v), toInt64(a!))),
      "any",
    ),
  ],
  [
    "div",
    fn(["any", "any"], ([a, b]) => {
      const divisor = toInt64(b!);
      if (divisor === 0) throw new Error("runtime error: integer divide by zero");
      return new GoInt(Math.trunc(toInt64(a!) / divisor));
    }),
  ],
  [
    "mod",
    fn(["any", "any"], ([a, b]) => {
      const divisor = toInt64(b!);
      if (divisor === 0) throw new Error("runtime error: integer divide by zero");
      return new GoInt(toInt64(a!) % divisor);
    }),
  ],
  ["addf", fn([], (args) => decimalOp("add", 0, args), "any")],
  ["subf", fn(["any"], ([a, ...rest]) => decimalOp("sub", a!, rest), "any")],
  ["mulf", fn(["any"], ([a, ...rest]) => decimalOp("mul", a!, rest), "any")],
  ["divf", fn(["any"], ([a, ...rest]) => decimalOp("div", a!, rest), "any")],
  [
    "max",
    fn(
      ["any"],
      ([a, ...rest]) => new GoInt(rest.reduce<number>((m, v) => Math.max(m, toInt64(v)), toInt64(a!))),
      "any",
    ),
  ],
  [
    "min",
    fn(
      ["any"],
      ([a, ...rest]) => new GoInt(rest.reduce<number>((m, v) => Math.min(m, toInt64(v)), toInt64(a!))),
      "any",
    ),
  ],
  [
    "maxf",
    fn(["any"], ([a, ...rest]) => rest.reduce<number>((m, v) => Math.max(m, toFloat64(v)), toFloat64(a!)), "any"),
  ],
  [
    "minf",
    fn(["any"], ([a, ...rest]) => rest.reduce<number>((m, v) => Math.min(m, toFloat64(v)), toFloat64(a!)), "any"),
  ],
  ["ceil", fn(["any"], ([a]) => Math.ceil(toFloat64(a!)))],
  ["floor", fn(["any"], ([a]) => Math.floor(toFloat64(a!)))],
  [
    "round",
    fn(
      ["any", "int"],
      ([a, places, roundOn]) => {
        const threshold = roundOn === undefined ? 0.5 : (roundOn as number);
        const pow = 10 ** int(places!);
        const digit = pow * toFloat64(a!);
        const fraction = digit - Math.trunc(digit);
        return (fraction >= threshold ? Math.ceil(digit) : Math.floor(digit)) / pow;
      },
      "float",
    ),
  ],
  [
    "toDate",
    fn(["string", "string"], ([layout, s]) => {
      const ns = parseGoTime(str(layout!), str(s!));
      return ns === undefined ? ZERO_TIME : new GoTime(ns);
    }),
  ],
  [
    "date",
    fn(["string", "any"], ([layout, value]) => {
      let ns: bigint;
      if (value instanceof GoTime) ns = value.ns;
      else if (value instanceof GoInt) ns = BigInt(value.value) * 1_000_000_000n;
      else ns = BigInt(Date.now()) * 1_000_000n;
      return formatGoTime(ns, str(layout!));
    }),
  ],
  ["now", fn([], () => new GoTime(BigInt(Date.now()) * 1_000_000n))],
  ["unixEpoch", fn(["time"], ([t]) => String(floorDiv(time(t!), 1_000_000_000n)))],
  [
    "default",
    fn(["any"], ([fallback, ...given]) => (given.length === 0 || isEmpty(given[0]!) ? fallback! : given[0]!), "any"),
  ],

  // Per-entry values
  ["__line__", { params: [], call: (_args, context) => context.line }],
  ["__timestamp__", { params: [], call: (_args, context) => new GoTime(context.tsNs) }],
]);
