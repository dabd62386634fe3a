// OTLP metric names and units as Prometheus names (the OpenTelemetry specification's "Prometheus and OpenMetrics
// compatibility", which Prometheus' OTLP receiver follows through its otlptranslator library):
// - UnderscoreEscapingWithSuffixes (Prometheus' default): the name split at every character outside
//   [A-Za-z0-9:] (so runs of `_` collapse), the unit's Prometheus word appended unless the name has it
//   (`s` -> `_seconds`, `By/s` -> `_bytes_per_second`, `{request}` -> nothing), `_total` for monotonic sums,
//   `_ratio` for gauges of unit `1`;
// - UnderscoreEscapingWithoutSuffixes: characters outside [A-Za-z0-9_:] escaped to `_`, nothing appended.
// A name that would start with a digit gets a leading `_`.

export type TranslationStrategy = "UnderscoreEscapingWithSuffixes" | "UnderscoreEscapingWithoutSuffixes";

export const TRANSLATION_STRATEGIES = [
  "UnderscoreEscapingWithSuffixes",
  "UnderscoreEscapingWithoutSuffixes",
] as const satisfies readonly TranslationStrategy[];

/** The OTLP metric kinds that decide suffixes. */
export type OtlpMetricType = "gauge" | "counter" | "updowncounter" | "histogram" | "summary";

/** UCUM units of the semantic conventions and their Prometheus words; `1` has none. */
const UNITS: Record<string, string> = {
  d: "days",
  h: "hours",
  min: "minutes",
  s: "seconds",
  ms: "milliseconds",
  us: "microseconds",
  ns: "nanoseconds",
  By: "bytes",
  KiBy: "kibibytes",
  MiBy: "mebibytes",
  GiBy: "gibibytes",
  TiBy: "tibibytes",
  KBy: "kilobytes",
  MBy: "megabytes",
  GBy: "gigabytes",
  TBy: "terabytes",
  m: "meters",
  V: "volts",
  A: "amperes",
  J: "joules",
  W: "watts",
  g: "grams",
  Cel: "celsius",
  Hz: "hertz",
  "1": "",
  "%": "percent",
};

/** The denominators of `x/y` units, in the singular. */
const PER_UNITS: Record<string, string> = {
  s: "second",
  m: "minute",
  h: "hour",
  d: "day",
  w: "week",
  mo: "month",
  y: "year",
};

/** A unit part as a name part: outside [A-Za-z0-9:] escaped, runs of `_` collapsed, no leading `_`. */
function cleanUnit(unit: string): string {
  return unit
    .replace(/[^A-Za-z0-9:]/g, "_")
    .replace(/_+/g, "_")
    .replace(/^_/, "");
}

/**
 * The unit's Prometheus words: the main one, and `per_<unit>` for the denominator of `x/y`, each empty when there
 * is none (annotations in braces have none).
 */
function unitWords(unit: string): { main: string; per: string } {
  const slash = unit.indexOf("/");
  const mainText = (slash < 0 ? unit : unit.slice(0, slash)).trim();
  const perText = slash < 0 ? "" : unit.slice(slash + 1).trim();
  const main = mainText === "" || /[{}]/.test(mainText) ? "" : cleanUnit(UNITS[mainText] ?? mainText);
  const per = perText === "" || /[{}]/.test(perText) ? "" : cleanUnit(`per_${PER_UNITS[perText] ?? perText}`);
  return { main, per };
}

/** The unit as Prometheus' metadata states it: `seconds`, `bytes_per_second`, empty for `1` or `{request}`. */
export function prometheusUnit(unit: string): string {
  const { main, per } = unitWords(unit);
  const text = main !== "" && per !== "" ? `${main}_${per}` : main !== "" ? main : per;
  return text.replace(/^_/, "").replace(/_$/, "");
}

function leadingDigit(name: string): string {
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

/** The Prometheus name of an OTLP metric; empty when nothing of it is left (the caller refuses it). */
export function prometheusMetricName(
  name: string,
  unit: string,
  type: OtlpMetricType,
  strategy: TranslationStrategy,
): string {
  if (strategy === "UnderscoreEscapingWithoutSuffixes") {
    const escaped = leadingDigit(
      name
        .split(/[^A-Za-z0-9_:]+/)
        .filter((token) => token !== "")
        .join("_"),
    );
    return /^_*$/.test(escaped) ? "" : escaped;
  }
  let tokens = name.split(/[^A-Za-z0-9:]+/).filter((token) => token !== "");
  const words = unitWords(unit);
  const main = tokens.includes(words.main) ? "" : words.main;
  const perTrimmed = words.per === "per_" ? "" : words.per.replace(/_$/, "");
  const per = tokens.includes(perTrimmed) ? "" : perTrimmed;
  const mainSuffix = per === "" ? main : main.replace(/_$/, "");
  if (mainSuffix !== "") tokens.push(mainSuffix);
  if (per !== "") tokens.push(per);
  if (type === "counter") tokens = [...tokens.filter((t) => t !== "total"), "total"];
  if (unit === "1" && type === "gauge") tokens = [...tokens.filter((t) => t !== "ratio"), "ratio"];
  const joined = leadingDigit(tokens.join("_"));
  return /^_*$/.test(joined) ? "" : joined;
}
