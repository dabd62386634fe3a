import { goQuote } from "./quote.js";

// Go's strconv.ParseFloat, time.ParseDuration and go-humanize's ParseBytes as Loki applies them to label values,
// and Prometheus' model.ParseDuration as LogQL and PromQL read ranges, with their error messages: Loki puts them
// verbatim in `__error_details__`. LogQL's units.ts is more lenient on purpose (it reads query text); label values
// must be refused exactly where Loki refuses them.

export type Parsed = { value: number; error?: undefined } | { value?: undefined; error: string };

const DECIMAL_FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
// A sign may precede Inf and Infinity but not NaN, as in strconv.
const SPECIAL_FLOAT = /^(?:([+-]?)(inf|infinity)|nan)$/i;

export function goParseFloat(text: string): Parsed {
  if (DECIMAL_FLOAT.test(text)) {
    const value = Number(text);
    if (!Number.isFinite(value)) return { error: `strconv.ParseFloat: parsing ${goQuote(text)}: value out of range` };
    return { value };
  }
  const special = SPECIAL_FLOAT.exec(text);
  if (special !== null) {
    if (special[2] === undefined) return { value: NaN };
    return { value: special[1] === "-" ? -Infinity : Infinity };
  }
  return { error: `strconv.ParseFloat: parsing ${goQuote(text)}: invalid syntax` };
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** time.ParseDuration, in seconds. Unlike LogQL range durations, `d`, `w` and `y` are unknown units here. */
export function goParseDurationSeconds(text: string): Parsed {
  const invalid = { error: `time: invalid duration ${goQuote(text)}` };
  let rest = text;
  let negative = false;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    negative = rest[0] === "-";
    rest = rest.slice(1);
  }
  if (rest === "0") return { value: 0 };
  if (rest === "") return invalid;
  let totalNs = 0n;
  while (rest !== "") {
    const number = /^(\d*)(?:\.(\d*))?/.exec(rest)!;
    const [whole = "", fraction] = [number[1], number[2]];
    if (whole === "" && (fraction === undefined || fraction === "")) return invalid;
    rest = rest.slice(number[0].length);
    const unitMatch = /^[^0-9.]+/.exec(rest);
    if (unitMatch === null) return { error: `time: missing unit in duration ${goQuote(text)}` };
    const unit = unitMatch[0];
    const unitNs = DURATION_UNITS[unit];
    if (unitNs === undefined) return { error: `time: unknown unit ${goQuote(unit)} in duration ${goQuote(text)}` };
    rest = rest.slice(unit.length);
    const scale = BigInt(unitNs);
    totalNs += BigInt(whole || "0") * scale;
    if (fraction) totalNs += (BigInt(fraction) * scale) / 10n ** BigInt(fraction.length);
    if (totalNs > 9223372036854775807n) return invalid;
  }
  const seconds = Number(totalNs) / 1e9;
  return { value: negative ? -seconds : seconds };
}

const BYTE_SIZES: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  p: 1e15,
  pb: 1e15,
  e: 1e18,
  eb: 1e18,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
  pi: 1024 ** 5,
  pib: 1024 ** 5,
  ei: 1024 ** 6,
  eib: 1024 ** 6,
};

/** go-humanize ParseBytes: digits, dots and thousands commas, then an optional unit; truncated to whole bytes. */
export function goParseBytes(text: string): Parsed {
  let end = 0;
  while (end < text.length && /[0-9.,]/.test(text[end]!)) end++;
  const number = goParseFloat(text.slice(0, end).replaceAll(",", ""));
  if (number.error !== undefined) return number;
  const unit = text.slice(end).trim().toLowerCase();
  const size = BYTE_SIZES[unit];
  if (size === undefined) return { error: `unhandled size name: ${unit}` };
  const value = number.value * size;
  if (value >= 2 ** 64) return { error: `too large: ${text}` };
  return { value: Math.trunc(value) };
}

const PROMETHEUS_UNITS: Record<string, bigint> = {
  y: 365n * 86_400_000_000_000n,
  w: 7n * 86_400_000_000_000n,
  d: 86_400_000_000_000n,
  h: 3_600_000_000_000n,
  m: 60_000_000_000n,
  s: 1_000_000_000n,
  ms: 1_000_000n,
};
const PROMETHEUS_UNIT_ORDER = Object.keys(PROMETHEUS_UNITS);

/**
 * Prometheus's model.ParseDuration: whole numbers with units from y down to ms, each unit at most once and in that
 * order. Returns nanoseconds, or Prometheus's error message.
 */
export function parsePrometheusDuration(text: string): bigint | string {
  if (text === "0") return 0n;
  if (text === "") return "empty duration string";
  const invalid = `not a valid duration string: ${JSON.stringify(text)}`;
  let rest = text;
  let lastUnit = -1;
  let total = 0n;
  while (rest !== "") {
    const digits = /^\d*/.exec(rest)![0];
    if (digits === "") return invalid;
    rest = rest.slice(digits.length);
    const unit = /^\D*/.exec(rest)![0];
    if (unit === "") return invalid;
    rest = rest.slice(unit.length);
    const index = PROMETHEUS_UNIT_ORDER.indexOf(unit);
    if (index < 0) return `unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(text)}`;
    if (index <= lastUnit) return invalid;
    lastUnit = index;
    total += BigInt(digits) * PROMETHEUS_UNITS[unit]!;
  }
  return total;
}
