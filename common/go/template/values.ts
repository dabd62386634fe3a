// Values flowing through a Go text/template as Loki runs it. Go distinguishes int64 from float64 (they print
// differently: `3` versus `3e+06`), so integers are boxed; strings, booleans and floats are plain JavaScript
// values, `null` is Go's nil, and the template's data (the labels) is a plain record.

import type { Labels } from "../../../proto/labels.js";
import { formatFloatG } from "../float-format.js";
import { formatGoTimeString } from "../time-layout.js";

export class GoInt {
  constructor(readonly value: number) {}
}

/** A time.Time, as nanoseconds since the epoch in UTC (Bifrost runs with TZ=UTC, so Go's Local is UTC). */
export class GoTime {
  constructor(readonly ns: bigint) {}
}

/** An untyped numeric constant from the template text, typed when it meets a function parameter. */
export class NumberConstant {
  constructor(
    readonly text: string,
    readonly value: number,
    readonly isInt: boolean,
  ) {}
}

export type TemplateValue = string | number | boolean | null | GoInt | GoTime | NumberConstant | Labels;

export class TemplateExecError extends Error {
  override name = "TemplateExecError";
}

export function isLabels(value: TemplateValue): value is Labels {
  return (
    typeof value === "object" &&
    value !== null &&
    !(value instanceof GoInt) &&
    !(value instanceof GoTime) &&
    !(value instanceof NumberConstant)
  );
}

/** Resolves an untyped constant the way Go types an untyped constant passed as interface{}. */
export function settle(value: TemplateValue): TemplateValue {
  if (value instanceof NumberConstant) return value.isInt ? new GoInt(value.value) : value.value;
  return value;
}

export function typeName(value: TemplateValue): string {
  const settled = settle(value);
  if (settled === null) return "nil";
  if (typeof settled === "string") return "string";
  if (typeof settled === "number") return "float64";
  if (typeof settled === "boolean") return "bool";
  if (settled instanceof GoInt) return "int";
  if (settled instanceof GoTime) return "time.Time";
  return "map[string]string";
}

/** Go's template truth: non-empty, non-zero, non-nil; structs (times) are always true. */
export function isTrue(value: TemplateValue): boolean {
  const settled = settle(value);
  if (settled === null) return false;
  if (typeof settled === "string") return settled !== "";
  if (typeof settled === "number") return settled !== 0;
  if (typeof settled === "boolean") return settled;
  if (settled instanceof GoInt) return settled.value !== 0;
  if (settled instanceof GoTime) return true;
  for (const _ in settled) return true;
  return false;
}

/** fmt.Sprint of one value, as text/template prints an action's result. */
export function printValue(value: TemplateValue): string {
  const settled = settle(value);
  if (settled === null) return "<no value>";
  if (typeof settled === "string") return settled;
  if (typeof settled === "number") return formatFloatG(settled);
  if (typeof settled === "boolean") return settled ? "true" : "false";
  if (settled instanceof GoInt) return String(settled.value);
  if (settled instanceof GoTime) return formatGoTimeString(settled.ns);
  const map = settled as Labels;
  const entries = Object.keys(map)
    .sort()
    .map((key) => `${key}:${map[key]}`);
  return `map[${entries.join(" ")}]`;
}
