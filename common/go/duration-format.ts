// Durations as Go and Prometheus print them: Go's in error messages and label filters, Prometheus' in ranges.

const NS_PER_SECOND = 1_000_000_000n;

/** Go's Duration.Seconds(): whole seconds plus the remainder, so long durations lose no precision. */
export function durationSeconds(ns: bigint): number {
  return Number(ns / NS_PER_SECOND) + Number(ns % NS_PER_SECOND) / 1e9;
}

/** `value / 10^digits` with the fraction's trailing zeros dropped. */
function fixed(value: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  const fraction = (value % scale).toString().padStart(digits, "0").replace(/0+$/, "");
  return fraction === "" ? `${value / scale}` : `${value / scale}.${fraction}`;
}

/** Go's time.Duration.String(): `1h0m0s`, `1m30s`, `1.5s`, `250ms`, `0s`. */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const sign = ns < 0n ? "-" : "";
  const u = ns < 0n ? -ns : ns;
  if (u < 1000n) return `${sign}${u}ns`;
  if (u < 1_000_000n) return `${sign}${fixed(u, 3)}µs`;
  if (u < 1_000_000_000n) return `${sign}${fixed(u, 6)}ms`;
  let out = `${fixed(u % 60_000_000_000n, 9)}s`;
  const minutes = u / 60_000_000_000n;
  if (minutes > 0n) {
    out = `${minutes % 60n}m${out}`;
    const hours = minutes / 60n;
    if (hours > 0n) out = `${hours}h${out}`;
  }
  return sign + out;
}

/** Units of Prometheus' model.Duration, largest first, extended below milliseconds so that no range is rounded. */
const PROMETHEUS_UNITS: [string, bigint][] = [
  ["y", 365n * 86_400n * NS_PER_SECOND],
  ["w", 7n * 86_400n * NS_PER_SECOND],
  ["d", 86_400n * NS_PER_SECOND],
  ["h", 3_600n * NS_PER_SECOND],
  ["m", 60n * NS_PER_SECOND],
  ["s", NS_PER_SECOND],
  ["ms", 1_000_000n],
  ["us", 1_000n],
  ["ns", 1n],
];

/**
 * Prometheus' model.Duration.String(), as queries write ranges: `1h30m`, `500ms`, `90d`, `0s`. Years and weeks
 * only when they divide the duration exactly (`90d`, not `12w6d`), as Prometheus and Loki print them.
 */
export function formatPrometheusDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const sign = ns < 0n ? "-" : "";
  let rest = ns < 0n ? -ns : ns;
  let out = "";
  for (const [unit, size] of PROMETHEUS_UNITS) {
    if ((unit === "y" || unit === "w") && rest % size !== 0n) continue;
    if (rest >= size) {
      out += `${rest / size}${unit}`;
      rest %= size;
    }
  }
  return sign + out;
}
