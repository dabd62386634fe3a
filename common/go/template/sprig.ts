import { parseGoTime, formatGoTime } from "../time-layout.js";
import { goParseFloat } from "../parse.js";
import { fn, int, str, stringFn, time, type TemplateFunction } from "./signature.js";
import { GoInt, GoTime, isTrue, settle, type TemplateValue } from "./values.js";

// The sprig functions Loki imports, with sprig's loose number conversions (cast.ToInt64 turns "abc" into 0) and its
// decimal arithmetic for addf/subf/mulf/divf (0.1 + 0.2 is 0.3 there). `fromJson` is left out.

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
export function trimSet(text: string, cutset: string, left: boolean, right: boolean): string {
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

export function trimSpace(text: string): string {
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

/** Loki's substring (code points): a negative start means from 0, a negative or too large end means to the end. */
function substring(start: number, end: number, text: string): string {
  const points = [...text];
  const length = points.length;
  if (end > length) end = length;
  if (start > length) start = length;
  if (start < 0) return end < 0 ? "" : points.slice(0, end).join("");
  if (end < 0) return points.slice(start).join("");
  if (start > end) return "";
  return points.slice(start, end).join("");
}

function truncate(count: number, text: string): string {
  const points = [...text];
  if (count < 0 && points.length + count > 0) return points.slice(points.length + count).join("");
  if (count >= 0 && points.length > count) return points.slice(0, count).join("");
  return text;
}

export const ZERO_TIME = new GoTime(-62135596800n * 1_000_000_000n);

export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/** sprig's empty(): nil, "", 0, false and empty maps. */
function isEmpty(value: TemplateValue): boolean {
  const settled = settle(value);
  if (settled instanceof GoTime) return false;
  return !isTrue(settled);
}

export const SPRIG_FUNCTIONS = new Map<string, TemplateFunction>([
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
]);
