// Durations as LogQL queries write them: range and offset durations (`5m`, `1h30m`, `1d`) and literals in label
// filters, more leniently than Go's time.ParseDuration (common/go/parse.ts), which label values must follow.

const DURATION_UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
  d: 86400e9,
  w: 7 * 86400e9,
  y: 365 * 86400e9,
};

const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w|y)/y;

/**
 * Parses a duration into nanoseconds: a sign, then one or more number+unit parts, units ns us µs ms s m h d w y.
 * Returns undefined for anything else (a bare number is not a duration, except "0" as in Go).
 */
export function parseDurationNs(text: string): bigint | undefined {
  let rest = text;
  let sign = 1n;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest[0] === "-") sign = -1n;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0n;
  if (rest === "") return undefined;
  let total = 0n;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < rest.length) {
    const match = DURATION_PART.exec(rest);
    if (match === null) return undefined;
    const [, number, unit] = match as unknown as [string, string, string];
    const [whole, fraction = ""] = number.split(".");
    const unitNs = BigInt(DURATION_UNIT_NS[unit]!);
    total += BigInt(whole || "0") * unitNs;
    if (fraction !== "") total += (BigInt(fraction) * unitNs) / 10n ** BigInt(fraction.length);
  }
  return sign * total;
}
