import { createHash } from "node:crypto";
import { z } from "zod";
import { goLower, goUpper } from "../../common/go/case.js";
import { compileGoRegexp, expandReplacement, type Re2, RegexSyntaxError } from "../../common/regex.js";
import type { Labels } from "../../proto/labels.js";
import { LABEL_NAME } from "../../proto/validate.js";

// Prometheus's relabel_configs (https://prometheus.io/docs/prometheus/latest/configuration/configuration/#relabel_config):
// the one implementation Bifrost has, for scrape targets, scraped series and any other label set (streams and
// series of the processing pipeline). A rule list runs in order on a label set that holds the metric name as
// `__name__`; a label whose value becomes empty is gone, as in Prometheus. Regexes are RE2, anchored at both
// ends; replacements expand `$1`, `${1}`, `$name` and `${name}` as Go's Regexp.Expand does.
//
// Where Prometheus 2.42 and current Prometheus differ, this follows current Prometheus: a `replace` whose
// replacement expands to nothing deletes the expanded target label (2.42 deletes the unexpanded
// `target_label`, which only differs when it holds a `$` template), and lowercase, uppercase, keepequal and
// dropequal need a valid label name as target_label.

export const RELABEL_ACTIONS = [
  "replace",
  "keep",
  "drop",
  "keepequal",
  "dropequal",
  "hashmod",
  "labelmap",
  "labeldrop",
  "labelkeep",
  "lowercase",
  "uppercase",
] as const;

export type RelabelAction = (typeof RELABEL_ACTIONS)[number];

const DEFAULT_REGEX = "(.*)";
const DEFAULT_SEPARATOR = ";";
const DEFAULT_REPLACEMENT = "$1";

/** A target_label or labelmap replacement that is a label name once its `$` references expand (Prometheus's relabelTarget). */
const TEMPLATED_NAME = /^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$/;

/** YAML scalars that Go reads into a string field (regex: 200) arrive here as numbers. */
const text = () => z.preprocess((v) => (typeof v === "number" ? String(v) : v), z.string());

/** One relabel_config as Prometheus's YAML has it. */
export function relabelConfigSchema() {
  return z
    .strictObject({
      source_labels: z
        .array(z.string().regex(LABEL_NAME, "expected a Prometheus label name"))
        .optional()
        .describe("labels whose values, joined by `separator`, are the input of the rule"),
      separator: text().default(DEFAULT_SEPARATOR).describe("between the source label values"),
      regex: text()
        .default(DEFAULT_REGEX)
        .describe("RE2 regular expression, anchored at both ends, matched against the input"),
      modulus: z.number().int().min(0).default(0).describe("hashmod: modulus of the hash of the input"),
      target_label: z
        .string()
        .default("")
        .describe("label the result is written to; `$1`, `${name}` expand in replace"),
      replacement: text()
        .default(DEFAULT_REPLACEMENT)
        .describe("value written on a regex match; `$1`, `${1}`, `$name` expand to capture groups"),
      action: z
        .preprocess((v) => (typeof v === "string" ? v.toLowerCase() : v), z.enum(RELABEL_ACTIONS))
        .default("replace")
        .describe(RELABEL_ACTIONS.join(", ")),
    })
    .superRefine((config, ctx) => {
      const problem = relabelConfigProblem(config);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    });
}

export type RelabelConfig = z.output<ReturnType<typeof relabelConfigSchema>>;

/** What Prometheus would refuse in a relabel_config at load, or undefined. */
function relabelConfigProblem(c: RelabelConfig): string | undefined {
  try {
    compileGoRegexp(c.regex, true);
  } catch (err) {
    if (err instanceof RegexSyntaxError) return err.message;
    throw err;
  }
  const a = c.action;
  if (a === "hashmod" && c.modulus === 0) return "relabel configuration for hashmod requires non-zero modulus";
  const needsTarget = ["replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"];
  if (needsTarget.includes(a) && c.target_label === "")
    return `relabel configuration for ${a} action requires 'target_label' value`;
  if (a === "replace" && !TEMPLATED_NAME.test(c.target_label))
    return `${JSON.stringify(c.target_label)} is invalid 'target_label' for ${a} action`;
  if (["hashmod", "lowercase", "uppercase", "keepequal", "dropequal"].includes(a) && !LABEL_NAME.test(c.target_label))
    return `${JSON.stringify(c.target_label)} is invalid 'target_label' for ${a} action`;
  if (["lowercase", "uppercase", "keepequal", "dropequal"].includes(a) && c.replacement !== DEFAULT_REPLACEMENT)
    return `'replacement' can not be set for ${a} action`;
  if (a === "labelmap" && !TEMPLATED_NAME.test(c.replacement))
    return `${JSON.stringify(c.replacement)} is invalid 'replacement' for ${a} action`;
  if (
    (a === "keepequal" || a === "dropequal") &&
    (c.regex !== DEFAULT_REGEX || c.modulus !== 0 || c.separator !== DEFAULT_SEPARATOR)
  )
    return `${a} action requires only 'source_labels' and 'target_label', and no other fields`;
  if (
    (a === "labeldrop" || a === "labelkeep") &&
    (c.source_labels !== undefined || c.target_label !== "" || c.modulus !== 0 || c.separator !== DEFAULT_SEPARATOR)
  )
    return `${a} action requires only 'regex', and no other fields`;
  if ((a === "labeldrop" || a === "labelkeep") && c.replacement !== DEFAULT_REPLACEMENT)
    return `${a} action requires only 'regex', and no other fields`;
  return undefined;
}

/** A relabel_config ready to run. */
export interface RelabelRule {
  action: RelabelAction;
  sourceLabels: string[];
  separator: string;
  regex: Re2;
  modulus: bigint;
  targetLabel: string;
  replacement: string;
}

/** Compiles validated relabel_configs (the schema has checked them). */
export function compileRelabelConfigs(configs: readonly RelabelConfig[]): RelabelRule[] {
  return configs.map((c) => ({
    action: c.action,
    sourceLabels: c.source_labels ?? [],
    separator: c.separator,
    regex: compileGoRegexp(c.regex, true),
    modulus: BigInt(c.modulus),
    targetLabel: c.target_label,
    replacement: c.replacement,
  }));
}

/**
 * Runs the rules in order on a copy of `labels`; the relabeled set, or null when a rule dropped it. Labels left
 * with an empty value are removed.
 */
export function relabel(labels: Labels, rules: readonly RelabelRule[]): Labels | null {
  const current = new Map<string, string>();
  for (const name in labels) if (labels[name] !== "") current.set(name, labels[name]!);
  for (const rule of rules) if (!apply(rule, current)) return null;
  const out: Labels = Object.create(null);
  for (const [name, value] of current) out[name] = value;
  return out;
}

function set(labels: Map<string, string>, name: string, value: string): void {
  if (value === "") labels.delete(name);
  else labels.set(name, value);
}

/** The label names in the order Go ranges over a label set: sorted (names are ASCII, so code units order them). */
function sortedNames(labels: Map<string, string>): string[] {
  return [...labels.keys()].sort();
}

function apply(rule: RelabelRule, labels: Map<string, string>): boolean {
  const input = rule.sourceLabels.map((name) => labels.get(name) ?? "").join(rule.separator);
  switch (rule.action) {
    case "drop":
      return !rule.regex.test(input);
    case "keep":
      return rule.regex.test(input);
    case "dropequal":
      return (labels.get(rule.targetLabel) ?? "") !== input;
    case "keepequal":
      return (labels.get(rule.targetLabel) ?? "") === input;
    case "replace": {
      const match = rule.regex.exec(input);
      if (match === null) return true;
      const target = expandReplacement(rule.targetLabel, match);
      if (!LABEL_NAME.test(target)) return true;
      set(labels, target, expandReplacement(rule.replacement, match));
      return true;
    }
    case "lowercase":
      set(labels, rule.targetLabel, goLower(input));
      return true;
    case "uppercase":
      set(labels, rule.targetLabel, goUpper(input));
      return true;
    case "hashmod": {
      const digest = createHash("md5").update(input, "utf8").digest();
      set(labels, rule.targetLabel, (digest.readBigUInt64BE(8) % rule.modulus).toString());
      return true;
    }
    case "labelmap":
      for (const name of sortedNames(labels)) {
        const match = rule.regex.exec(name);
        if (match !== null) set(labels, expandReplacement(rule.replacement, match), labels.get(name)!);
      }
      return true;
    case "labeldrop":
      for (const name of [...labels.keys()]) if (rule.regex.test(name)) labels.delete(name);
      return true;
    case "labelkeep":
      for (const name of [...labels.keys()]) if (!rule.regex.test(name)) labels.delete(name);
      return true;
  }
}
