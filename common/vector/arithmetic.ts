import type { ArithmeticOp, ComparisonOp, Semantics, SetOp } from "./types.js";

// Operators between two numbers, with Go's floating-point results where JavaScript's differ.

export function isComparison(op: string): op is ComparisonOp {
  return op === "==" || op === "!=" || op === ">" || op === ">=" || op === "<" || op === "<=";
}

export function isSetOp(op: string): op is SetOp {
  return op === "and" || op === "or" || op === "unless";
}

/** Go's math.Pow where it differs from `**`: 1^y is 1 and (-1)^±Inf is 1, even for NaN and infinite y. */
function goPow(base: number, exponent: number): number {
  if (base === 1) return 1;
  if (base === -1 && (exponent === Infinity || exponent === -Infinity)) return 1;
  return base ** exponent;
}

export function arithmetic(op: ArithmeticOp, left: number, right: number, semantics: Semantics): number {
  switch (op) {
    case "+":
      return left + right;
    case "-":
      return left - right;
    case "*":
      return left * right;
    case "/":
      if (right === 0 && semantics.divisionByZero === "nan") return NaN;
      return left / right;
    case "%":
      // Go's math.Mod and `%` agree: the sign of the dividend, NaN for a zero divisor or an infinite dividend.
      return left % right;
    case "^":
      return goPow(left, right);
    case "atan2":
      return Math.atan2(left, right);
  }
}

export function compare(op: ComparisonOp, left: number, right: number): boolean {
  switch (op) {
    case "==":
      return left === right;
    case "!=":
      return left !== right;
    case ">":
      return left > right;
    case ">=":
      return left >= right;
    case "<":
      return left < right;
    case "<=":
      return left <= right;
  }
}

/** `a op b` between two scalars; a comparison yields 1 or 0 (scalar comparisons need `bool` in PromQL). */
export function scalarBinary(
  op: ArithmeticOp | ComparisonOp,
  left: number,
  right: number,
  semantics: Semantics,
): number {
  if (isComparison(op)) return compare(op, left, right) ? 1 : 0;
  return arithmetic(op, left, right, semantics);
}

/** Go's math.Max/Min loop of Prometheus and Loki over items [from, to): a NaN is replaced by any later value. */
export function extreme(
  items: readonly { value: number }[],
  better: (candidate: number, best: number) => boolean,
  from = 0,
  to = items.length,
): number {
  let best = items[from]!.value;
  for (let i = from; i < to; i++) {
    const value = items[i]!.value;
    if (better(value, best) || Number.isNaN(best)) best = value;
  }
  return best;
}
