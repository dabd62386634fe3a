// Durations as Prometheus's configuration writes them (prometheus/common model.Duration): units y, w, d, h, m,
// s, ms, each at most once and in that order (`1h30m`, `15s`, `500ms`, `0`), a year being 365 days.
//
// The PromQL parser reads the same syntax inside queries (query/promql/parser.ts, from its lexer's tokens); this
// is the configuration's reading, for the collector's scrape configs, which cannot import the query service.

const UNITS: [string, number][] = [
  ["y", 365 * 86_400_000],
  ["w", 7 * 86_400_000],
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1000],
  ["ms", 1],
];

const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

/** Milliseconds of a Prometheus duration, or undefined when it is not one. */
export function parsePrometheusDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const match = text === "" ? null : DURATION.exec(text);
  if (match === null) return undefined;
  let ms = 0;
  UNITS.forEach(([, unitMs], i) => {
    if (match[i + 1] !== undefined) ms += Number(match[i + 1]) * unitMs;
  });
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** A duration as Prometheus prints it (model.Duration.String): `1m30s`, `0s`; years and weeks only when exact. */
export function formatPrometheusDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const [unit, unitMs] of UNITS) {
    if ((unit === "y" || unit === "w") && rest % unitMs !== 0) continue;
    const count = Math.floor(rest / unitMs);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * unitMs;
    }
  }
  return out;
}
