import { goParseBytes } from "../../../common/go/parse.js";

// Durations and byte sizes as LogQL queries write them: range and offset durations (`5m`, `1h30m`, `1d`) and
// literals in label filters; byte sizes as go-humanize's ParseBytes reads them (`20KB` = 20000, `20KiB` = 20480).

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

/** Formats nanoseconds the way Prometheus prints durations in queries (`1h30m`, `500ms`, `0s`). */
export function formatDurationNs(ns: bigint): string {
  if (ns === 0n) return "0s";
  const sign = ns < 0n ? "-" : "";
  let rest = ns < 0n ? -ns : ns;
  let out = "";
  for (const unit of ["y", "w", "d", "h", "m", "s", "ms", "us", "ns"]) {
    const size = BigInt(DURATION_UNIT_NS[unit]!);
    if (rest >= size) {
      out += `${rest / size}${unit}`;
      rest %= size;
    }
  }
  return sign + out;
}

/** Parses a humanized byte size (go-humanize ParseBytes: SI units are powers of 1000, IEC units of 1024). */
export function parseBytes(text: string): number | undefined {
  return goParseBytes(text).value;
}
