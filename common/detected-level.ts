import type { Labels } from "../proto/labels.js";
import { LogfmtDecoder } from "./logfmt-decoder.js";

// Loki 3's `detected_level` structured metadata (pkg/distributor/field_detection.go, discover_log_levels): the level
// of each entry, taken from a level label of the stream, else a level field of the entry's structured metadata,
// else OpenTelemetry's severity number, else the line itself (a level field of a JSON or logfmt line, else the first
// level word in it), normalized to trace, debug, info, warn, error, critical or fatal, or `unknown`. Grafana's Logs
// Drilldown groups and filters entries by it.

export const DETECTED_LEVEL = "detected_level";
export const UNKNOWN_LEVEL = "unknown";

/** Loki's default `log_level_fields`: names of a level among labels, structured metadata and a line's fields. */
export const DEFAULT_LEVEL_FIELDS: readonly string[] = [
  "level",
  "LEVEL",
  "Level",
  "log.level",
  "severity",
  "SEVERITY",
  "Severity",
  "SeverityText",
  "lvl",
  "LVL",
  "Lvl",
  "severity_text",
  "Severity_Text",
  "SEVERITY_TEXT",
];

export interface LevelDetection {
  /** Names of a level field, in order of preference (log_level_fields). */
  fields: readonly string[];
  /** How deep a JSON line is searched for a level field; 0 or less: without limit (log_level_from_json_max_depth). */
  jsonMaxDepth: number;
}

const KNOWN_LEVELS: Record<string, string> = {
  trace: "trace",
  trc: "trace",
  debug: "debug",
  dbg: "debug",
  info: "info",
  inf: "info",
  information: "info",
  warn: "warn",
  wrn: "warn",
  warning: "warn",
  error: "error",
  err: "error",
  critical: "critical",
  fatal: "fatal",
};

/** A known level name (any case) as its normal form, undefined for anything else. */
function knownLevel(value: string): string | undefined {
  return value.length <= 11 ? KNOWN_LEVELS[value.toLowerCase()] : undefined;
}

/** A level label's value normalized; an unknown value is kept as it is, as Loki keeps it. */
export function normalizeLevel(value: string): string {
  return knownLevel(value) ?? value;
}

function firstOf(labels: Labels, fields: readonly string[]): string | undefined {
  for (const field of fields) {
    const value = labels[field];
    if (value !== undefined) return value;
  }
  return undefined;
}

/** The level of an entry's stream labels alone, which then holds for each of its entries. */
export function streamLevel(streamLabels: Labels, detection: LevelDetection): string | undefined {
  const value = firstOf(streamLabels, detection.fields);
  return value === undefined ? undefined : normalizeLevel(value);
}

/**
 * The detected level of one entry whose stream has no level label: from its structured metadata, else from the
 * line. `metadata` is checked for an existing `detected_level` by the caller.
 */
export function entryLevel(metadata: Labels, line: string, detection: LevelDetection): string {
  const fromMetadata = firstOf(metadata, detection.fields);
  if (fromMetadata !== undefined) return normalizeLevel(fromMetadata);
  const severity = metadata["severity_number"];
  if (severity !== undefined && severity !== "") return severityNumberLevel(severity);
  return lineLevel(line, detection);
}

/** OpenTelemetry's SeverityNumber ranges (1-4 trace, 5-8 debug, ... 21-24 fatal); Loki reads a non-number as info. */
function severityNumberLevel(text: string): string {
  if (!/^[+-]?\d+$/.test(text)) return "info";
  const n = Number(text);
  if (n === 0) return UNKNOWN_LEVEL;
  if (n <= 4) return "trace";
  if (n <= 8) return "debug";
  if (n <= 12) return "info";
  if (n <= 16) return "warn";
  if (n <= 20) return "error";
  if (n <= 24) return "fatal";
  return UNKNOWN_LEVEL;
}

const SPACE = /\s/u;

function looksLikeJson(line: string): boolean {
  let first = 0;
  while (first < line.length && SPACE.test(line[first]!)) first++;
  let last = line.length - 1;
  while (last >= first && SPACE.test(line[last]!)) last--;
  return line[first] === "{" && line[last] === "}";
}

export function lineLevel(line: string, detection: LevelDetection): string {
  let field: string | undefined;
  if (looksLikeJson(line)) field = jsonLevelField(line, detection);
  else if (line.includes("=")) field = logfmtLevelField(line, detection.fields);
  else return levelWordIn(line);
  return (field !== undefined ? knownLevel(field) : undefined) ?? levelWordIn(line);
}

/** The first string value under a level field name, searching objects depth first up to the depth limit. */
function jsonLevelField(line: string, detection: LevelDetection): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  const fields = new Set(detection.fields);
  const search = (value: Record<string, unknown>, depth: number): string | undefined => {
    if (detection.jsonMaxDepth > 0 && depth >= detection.jsonMaxDepth) return undefined;
    for (const key in value) {
      const member = value[key];
      if (typeof member === "string") {
        if (fields.has(key)) return member;
      } else if (typeof member === "object" && member !== null && !Array.isArray(member)) {
        const found = search(member as Record<string, unknown>, depth + 1);
        if (found !== undefined) return found;
      }
    }
    return undefined;
  };
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
    ? search(parsed as Record<string, unknown>, 0)
    : undefined;
}

const decoder = new LogfmtDecoder();

/** The value of the most preferred level field among the line's pairs (names compared without case). */
function logfmtLevelField(line: string, fields: readonly string[]): string | undefined {
  const lower = fields.map((field) => field.toLowerCase());
  let best = lower.length;
  let value: string | undefined;
  decoder.reset(line);
  while (!decoder.eol() && decoder.scan()) {
    const index = lower.indexOf(decoder.key.toLowerCase());
    if (index === -1 || index >= best) continue;
    best = index;
    value = decoder.value;
    if (index === 0) break;
  }
  return value;
}

/** The words Loki looks for in a line without fields; at one position the earlier word of the list wins. */
const LEVEL_WORDS: readonly [string, string][] = [
  ["trace", "trace"],
  ["debug", "debug"],
  ["fatal", "fatal"],
  ["critical", "critical"],
  ["error", "error"],
  ["err", "error"],
  ["warning", "warn"],
  ["warn", "warn"],
  ["info", "info"],
];

// A word counts only between these characters (or the line's ends): `misc:error` is no level, `error:` is.
const LEFT_BOUNDARY = new Set([" ", "\t", "\n", "[", "(", "{", '"', "'", "=", "|"]);
const RIGHT_BOUNDARY = new Set([" ", "\t", "\n", "[", "]", "(", ")", "{", "}", ":", ",", "!", '"', "'", "=", "|"]);

function boundedIndexOf(text: string, word: string, before: number): number {
  for (let from = 0; ;) {
    const at = text.indexOf(word, from);
    if (at === -1 || at >= before) return -1;
    const end = at + word.length;
    if ((at === 0 || LEFT_BOUNDARY.has(text[at - 1]!)) && (end >= text.length || RIGHT_BOUNDARY.has(text[end]!)))
      return at;
    from = at + 1;
  }
}

/** The level of the earliest level word in the line, `unknown` without one. */
export function levelWordIn(line: string): string {
  // Go lowers İ to a plain i; JavaScript adds a combining dot, which would hide an `İnfo`.
  const text = (line.includes("\u0130") ? line.replaceAll("\u0130", "i") : line).toLowerCase();
  let earliest = text.length;
  let level = UNKNOWN_LEVEL;
  for (const [word, meaning] of LEVEL_WORDS) {
    const at = boundedIndexOf(text, word, earliest);
    if (at === -1) continue;
    earliest = at;
    level = meaning;
    if (at === 0) break;
  }
  return level;
}
