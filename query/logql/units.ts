// Durations and byte sizes as LogQL writes them: range and offset durations (`5m`, `1h30m`, `1d`), duration label
// filters and `unwrap duration()` (Go's time.ParseDuration: `250ms`, `1.5s`, `-2m`), and byte sizes for `bytes()`
// and byte label filters (go-humanize's ParseBytes: `20KB` = 20000, `20KiB` = 20480).

const DURATION_UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "µs": 1e3,
  "μs": 1e3,
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

/** A duration in seconds (float), as LogQL compares durations and as `unwrap duration()` yields them. */
export function parseDurationSeconds(text: string): number | undefined {
  const ns = parseDurationNs(text);
  return ns === undefined ? undefined : Number(ns) / 1e9;
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

const BYTE_UNITS: Record<string, number> = {
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

const BYTES = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$/;

/** Parses a humanized byte size (go-humanize ParseBytes: SI units are powers of 1000, IEC units of 1024). */
export function parseBytes(text: string): number | undefined {
  const match = BYTES.exec(text);
  if (match === null) return undefined;
  const unit = BYTE_UNITS[match[2]!.toLowerCase()];
  return unit === undefined ? undefined : Number(match[1]) * unit;
}
