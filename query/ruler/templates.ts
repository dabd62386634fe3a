import type { Labels } from "../../proto/labels.js";
import { compileTemplate, type CompiledTemplate } from "../../common/go/template/executor.js";
import type { TemplateExtension } from "../../common/go/template/parser.js";
import { sprintf } from "../../common/go/template/sprintf.js";
import type { TemplateFunction } from "../../common/go/template/signature.js";
import { GoInt, NumberConstant, type TemplateValue } from "../../common/go/template/values.js";
import { goParseFloat } from "../../common/go/parse.js";
import { compileGoRegexp, expandReplacement, replaceAllMatches } from "../../common/regex.js";
import { formatGoTimeString } from "../../common/go/time-layout.js";

// Prometheus' alert templates on top of the Go-template engine of Loki's line_format: the predeclared variables
// `$labels`, `$value`, `$externalLabels` and `$externalURL`, and the humanize family of functions
// (prometheus/template/template.go). A template that fails to run expands to Prometheus' error text instead.

const VARIABLES = ["$labels", "$value", "$externalLabels", "$externalURL"] as const;

/** The value Prometheus's convertToFloat accepts: numbers, and strings that strconv.ParseFloat reads. */
function toFloat(value: TemplateValue): number {
  if (typeof value === "number") return value;
  if (value instanceof GoInt || value instanceof NumberConstant) return value.value;
  if (typeof value === "string") {
    const parsed = goParseFloat(value);
    if (parsed.error !== undefined) throw new Error(parsed.error);
    return parsed.value;
  }
  throw new Error(`can't convert ${String(value)} to float`);
}

const g4 = (v: number): string => sprintf("%.4g", [v]);

const SMALL_PREFIXES = ["m", "u", "n", "p", "f", "a", "z", "y"];

function scaleDown(v: number): [number, string] {
  let prefix = "";
  for (const p of SMALL_PREFIXES) {
    if (Math.abs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return [v, prefix];
}

function humanize(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return g4(v);
  if (Math.abs(v) >= 1) {
    let prefix = "";
    for (const p of ["k", "M", "G", "T", "P", "E", "Z", "Y"]) {
      if (Math.abs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
    return g4(v) + prefix;
  }
  const [scaled, prefix] = scaleDown(v);
  return g4(scaled) + prefix;
}

function humanize1024(v: number): string {
  if (Math.abs(v) <= 1 || !Number.isFinite(v)) return g4(v);
  let prefix = "";
  for (const p of ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]) {
    if (Math.abs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return g4(v) + prefix;
}

function humanizeDuration(v: number): string {
  if (!Number.isFinite(v)) return g4(v);
  if (v === 0) return g4(v) + "s";
  if (Math.abs(v) >= 1) {
    const sign = v < 0 ? "-" : "";
    const abs = Math.abs(v);
    const whole = Math.trunc(abs);
    const seconds = whole % 60;
    const minutes = Math.trunc(whole / 60) % 60;
    const hours = Math.trunc(whole / 3600) % 24;
    const days = Math.trunc(whole / 86_400);
    if (days !== 0) return `${sign}${days}d ${hours}h ${minutes}m ${seconds}s`;
    if (hours !== 0) return `${sign}${hours}h ${minutes}m ${seconds}s`;
    if (minutes !== 0) return `${sign}${minutes}m ${seconds}s`;
    return `${sign}${g4(abs)}s`;
  }
  const [scaled, prefix] = scaleDown(v);
  return `${g4(scaled)}${prefix}s`;
}

function humanizeTimestamp(v: number): string {
  if (!Number.isFinite(v)) return g4(v);
  return formatGoTimeString(BigInt(Math.round(v * 1e9)));
}

const float = (call: (v: number) => string): TemplateFunction => ({
  params: ["any"],
  call: ([v]) => call(toFloat(v!)),
});

const FUNCTIONS = new Map<string, TemplateFunction>([
  ["humanize", float(humanize)],
  ["humanize1024", float(humanize1024)],
  ["humanizeDuration", float(humanizeDuration)],
  ["humanizePercentage", float((v) => sprintf("%.4g%%", [v * 100]))],
  ["humanizeTimestamp", float(humanizeTimestamp)],
  ["toUpper", { params: ["string"], call: ([s]) => (s as string).toUpperCase() }],
  ["toLower", { params: ["string"], call: ([s]) => (s as string).toLowerCase() }],
  ["match", { params: ["string", "string"], call: ([re, s]) => compileGoRegexp(re as string).test(s as string) }],
  [
    "reReplaceAll",
    {
      params: ["string", "string", "string"],
      call: ([re, repl, s]) => reReplaceAll(re as string, s as string, repl as string),
    },
  ],
  ["stripPort", { params: ["string"], call: ([s]) => stripPort(s as string) }],
]);

/** Go's Regexp.ReplaceAllString: `$1`, `${1}` and `${name}` in the replacement expand to groups. */
function reReplaceAll(pattern: string, text: string, replacement: string): string {
  return replaceAllMatches(compileGoRegexp(pattern), text, (match) => expandReplacement(replacement, match));
}

function stripPort(hostPort: string): string {
  const bracketed = /^\[(.*)\](?::\d*)?$/.exec(hostPort);
  if (bracketed) return bracketed[1]!;
  const colon = hostPort.lastIndexOf(":");
  return colon === -1 || hostPort.indexOf(":") !== colon ? hostPort : hostPort.slice(0, colon);
}

export const PROMETHEUS_TEMPLATES: TemplateExtension = { variables: VARIABLES, functions: FUNCTIONS };

export interface TemplateData {
  labels: Labels;
  value: number;
  externalLabels: Labels;
  externalURL: string;
  timeMs: number;
}

/** A label or annotation template of a rule, compiled once (so that a file with a bad template fails to load). */
export class AlertTemplate {
  private readonly compiled: CompiledTemplate | undefined;

  constructor(
    name: string,
    private readonly source: string,
  ) {
    this.compiled = source.includes("{{") ? compileTemplate(name, source, PROMETHEUS_TEMPLATES) : undefined;
  }

  expand(data: TemplateData): string {
    if (this.compiled === undefined) return this.source;
    try {
      return this.compiled.execute(data.labels, { line: "", tsNs: BigInt(data.timeMs) * 1_000_000n }, [
        ["$labels", data.labels],
        ["$value", data.value],
        ["$externalLabels", data.externalLabels],
        ["$externalURL", data.externalURL],
      ]);
    } catch (err) {
      return `<error expanding template: ${(err as Error).message}>`;
    }
  }
}
