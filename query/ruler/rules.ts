import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type YAMLMap } from "yaml";
import { parsePrometheusDuration } from "../../common/go/parse.js";
import type { Labels } from "../../proto/labels.js";
import { compileExpr, type Language, languagesOf, type RuleExpr } from "./expr.js";
import { AlertTemplate } from "./templates.js";

// Rule files in the Prometheus/Loki ruler format (prometheus/model/rulefmt), read with every problem reported as
// file:line:column, plus Bifrost's extensions, which promtool rejects: a group's `language` (promql or logql,
// when parsing cannot tell) and anomaly rules (`anomaly:` instead of `alert:`/`record:`).

export interface AlertingRule {
  type: "alerting";
  name: string;
  expr: RuleExpr;
  forMs: number;
  keepFiringForMs: number;
  labels: Labels;
  annotations: Labels;
  labelTemplates: Map<string, AlertTemplate>;
  annotationTemplates: Map<string, AlertTemplate>;
}

export interface RecordingRule {
  type: "recording";
  name: string;
  expr: RuleExpr;
  labels: Labels;
}

export type AnomalyMethod = "zscore" | "mad";

/** Alerts when the expression leaves a band around its own recent (or seasonal) history. */
export interface AnomalyRule extends Omit<AlertingRule, "type"> {
  type: "anomaly";
  method: AnomalyMethod;
  windowMs: number;
  /** 0, one day or one week: where the history window sits (before now, or around the same time then). */
  seasonalityMs: number;
  minSamples: number;
  sensitivity: number;
}

export type Rule = AlertingRule | RecordingRule | AnomalyRule;

export interface RuleGroup {
  file: string;
  name: string;
  intervalMs: number;
  /** Most alerts (or series of a recording rule) one rule may produce; 0 means no limit. */
  limit: number;
  rules: Rule[];
}

export class RuleFileError extends Error {
  override readonly name = "RuleFileError";
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Prometheus' model.ParseDuration in milliseconds: `1h30m`, `5m`, `1d`, `0`; throws Prometheus' message. */
function parseDurationMs(text: string): number {
  const ns = parsePrometheusDuration(text);
  if (typeof ns === "string") throw new Error(ns);
  return Number(ns / 1_000_000n);
}

const GROUP_KEYS = new Set(["name", "interval", "limit", "labels", "rules", "query_offset", "language"]);
const RULE_KEYS: Record<Rule["type"], Set<string>> = {
  alerting: new Set(["alert", "expr", "for", "keep_firing_for", "labels", "annotations"]),
  recording: new Set(["record", "expr", "labels"]),
  anomaly: new Set([
    "anomaly",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
    "method",
    "window",
    "seasonality",
    "min_samples",
    "sensitivity",
  ]),
};
const SEASONALITY_MS: Record<string, number> = { none: 0, "1d": 86_400_000, "1w": 7 * 86_400_000 };

/**
 * Parses one rule file; `defaultIntervalMs` is the interval of groups that give none, and `defaultLanguage` the
 * language of groups that neither say nor show theirs (see groupLanguage). Throws RuleFileError.
 */
export function parseRuleFile(
  file: string,
  text: string,
  defaultIntervalMs: number,
  defaultLanguage: Language = "promql",
): RuleGroup[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const problems: string[] = [];
  const at = (node: Node | null | undefined, message: string) => {
    const { line, col } = lineCounter.linePos(node?.range?.[0] ?? 0);
    problems.push(`${file}:${line}:${col}: ${message}`);
  };
  for (const error of doc.errors) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    problems.push(`${file}:${line}:${col}: ${error.message.split("\n")[0]}`);
  }
  if (problems.length > 0) throw new RuleFileError(problems);
  if (doc.contents === null) return [];
  if (!isMap(doc.contents)) throw new RuleFileError([`${file}:1:1: a rule file is a mapping with a "groups" list`]);
  for (const pair of doc.contents.items) {
    if (scalarText(pair.key) !== "groups")
      at(pair.key as Node, `field ${scalarText(pair.key)} not found in type rulefmt.RuleGroups`);
  }
  const groupsNode = doc.contents.get("groups", true) as Node | undefined;
  const groups: RuleGroup[] = [];
  if (groupsNode !== undefined && !isSeq(groupsNode)) at(groupsNode, "groups must be a list");
  const seen = new Set<string>();
  for (const groupNode of isSeq(groupsNode) ? groupsNode.items : []) {
    if (!isMap(groupNode)) {
      at(groupNode as Node, "a group must be a mapping");
      continue;
    }
    const group = parseGroup(groupNode, defaultIntervalMs, defaultLanguage, file, at);
    if (group === undefined) continue;
    if (seen.has(group.name)) at(groupNode.get("name", true) as Node, `${group.name}: repeated in the same file`);
    seen.add(group.name);
    groups.push(group);
  }
  if (problems.length > 0) throw new RuleFileError(problems);
  return groups;
}

type At = (node: Node | null | undefined, message: string) => void;

function scalarText(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  return node.value === null ? undefined : String(node.value);
}

function checkKeys(map: YAMLMap, allowed: Set<string>, what: string, at: At): void {
  for (const pair of map.items) {
    const key = scalarText(pair.key);
    if (key === undefined || !allowed.has(key)) at(pair.key as Node, `field ${key} not found in type ${what}`);
  }
}

function durationField(map: YAMLMap, key: string, at: At): number | undefined {
  const node = map.get(key, true) as Node | undefined;
  if (node === undefined) return undefined;
  const text = scalarText(node);
  try {
    return parseDurationMs(text ?? "");
  } catch (err) {
    at(node, `${key}: ${(err as Error).message}`);
    return undefined;
  }
}

function stringMap(map: YAMLMap, key: string, at: At, checkName: (name: string) => string | undefined): Labels {
  const out: Labels = Object.create(null);
  const node = map.get(key, true) as Node | undefined;
  if (node === undefined || (isScalar(node) && node.value === null)) return out;
  if (!isMap(node)) {
    at(node, `${key} must be a mapping of names to strings`);
    return out;
  }
  for (const pair of node.items) {
    const name = scalarText(pair.key) ?? "";
    const problem = checkName(name);
    if (problem !== undefined) at(pair.key as Node, problem);
    const value = isScalar(pair.value) ? pair.value.value : undefined;
    if (value === undefined || typeof value === "object")
      at((pair.value ?? pair.key) as Node, `${key}.${name} must be a string`);
    else out[name] = value === null ? "" : String(value);
  }
  return out;
}

function parseGroup(
  map: YAMLMap,
  defaultIntervalMs: number,
  defaultLanguage: Language,
  file: string,
  at: At,
): RuleGroup | undefined {
  checkKeys(map, GROUP_KEYS, "rulefmt.RuleGroup", at);
  const name = scalarText(map.get("name", true));
  if (name === undefined || name === "") {
    at(map, "groupname must not be empty");
    return undefined;
  }
  const intervalMs = durationField(map, "interval", at) ?? defaultIntervalMs;
  if (intervalMs <= 0) at(map.get("interval", true) as Node, `${name}: interval must be positive`);
  const limitNode = map.get("limit", true) as Node | undefined;
  const limit = limitNode === undefined ? 0 : Number(scalarText(limitNode));
  if (!Number.isInteger(limit) || limit < 0) at(limitNode, `${name}: limit must be a non-negative integer`);
  let language: Language | undefined;
  const languageNode = map.get("language", true) as Node | undefined;
  if (languageNode !== undefined) {
    const text = scalarText(languageNode);
    if (text === "promql" || text === "logql") language = text;
    else at(languageNode, `${name}: language must be promql or logql`);
  }
  const groupLabels = stringMap(map, "labels", at, labelNameProblem);
  const rulesNode = map.get("rules", true) as Node | undefined;
  if (rulesNode !== undefined && !isSeq(rulesNode)) at(rulesNode, `${name}: rules must be a list`);
  const ruleNodes = isSeq(rulesNode) ? rulesNode.items : [];
  const fallback = groupLanguage(ruleNodes, defaultLanguage);
  const rules: Rule[] = [];
  for (const [index, ruleNode] of ruleNodes.entries()) {
    if (!isMap(ruleNode)) {
      at(ruleNode as Node, "a rule must be a mapping");
      continue;
    }
    // promtool's way of naming a rule: its group and its position there.
    const ruleAt: At = (node, message) => at(node, `group ${JSON.stringify(name)}, rule ${index + 1}: ${message}`);
    const rule = parseRule(ruleNode, groupLabels, language, fallback, ruleAt);
    if (rule !== undefined) rules.push(rule);
  }
  return { file, name, intervalMs, limit, rules };
}

/**
 * The language of a group's expressions that parse as both PromQL and LogQL: the one language of its expressions
 * that parse in only one (a Loki or Prometheus group is in one language), else `defaultLanguage`, that of where
 * the file comes from.
 */
function groupLanguage(ruleNodes: unknown[], defaultLanguage: Language): Language {
  const shown = new Set<Language>();
  for (const ruleNode of ruleNodes) {
    if (!isMap(ruleNode)) continue;
    const languages = languagesOf(scalarText(ruleNode.get("expr", true)) ?? "");
    if (languages.length === 1) shown.add(languages[0]!);
  }
  return shown.size === 1 ? [...shown][0]! : defaultLanguage;
}

function labelNameProblem(name: string): string | undefined {
  if (!LABEL_NAME.test(name)) return `invalid label name: ${name}`;
  if (name === "__name__") return "invalid label name: __name__";
  return undefined;
}

function parseRule(
  map: YAMLMap,
  groupLabels: Labels,
  language: Language | undefined,
  fallback: Language,
  at: At,
): Rule | undefined {
  const kinds = (["alert", "record", "anomaly"] as const).filter((key) => map.has(key));
  if (kinds.length !== 1) {
    at(
      map,
      kinds.length === 0
        ? "one of 'record' or 'alert' must be set"
        : `only one of ${kinds.map((k) => `'${k}'`).join(" and ")} may be set`,
    );
    return undefined;
  }
  const kind = kinds[0]!;
  const type = kind === "alert" ? "alerting" : kind === "record" ? "recording" : "anomaly";
  checkKeys(map, RULE_KEYS[type], "rulefmt.Rule", at);
  const nameNode = map.get(kind, true) as Node;
  const name = scalarText(nameNode) ?? "";
  if (name === "") at(nameNode, `${kind} name must not be empty`);
  if (type !== "alerting" && !METRIC_NAME.test(name)) at(nameNode, `invalid ${kind} name: ${name}`);
  const exprNode = map.get("expr", true) as Node | undefined;
  const exprText = scalarText(exprNode) ?? "";
  let expr: RuleExpr | undefined;
  if (exprText.trim() === "") at(exprNode ?? map, "field 'expr' must be set in rule");
  else {
    try {
      expr = compileExpr(exprText, language, fallback);
    } catch (err) {
      at(exprNode, `${name}: could not parse expression: ${(err as Error).message}`);
    }
  }
  const labels = { ...groupLabels, ...stringMap(map, "labels", at, labelNameProblem) };
  if (type === "recording") {
    for (const [labelName, value] of Object.entries(labels)) {
      if (value.includes("{{"))
        at(
          map.get("labels", true) as Node,
          `${name}: label ${labelName}: templates are not allowed in recording rules`,
        );
    }
    return expr === undefined ? undefined : { type, name, expr, labels };
  }
  const annotations = stringMap(map, "annotations", at, (n) =>
    n === "" ? "annotation name must not be empty" : undefined,
  );
  const compile = (what: string, values: Labels) => {
    const templates = new Map<string, AlertTemplate>();
    for (const [key, source] of Object.entries(values)) {
      try {
        templates.set(key, new AlertTemplate(`__alert_${name}`, source));
      } catch (err) {
        at(map.get(what, true) as Node, `${name}: ${what}.${key}: ${(err as Error).message}`);
      }
    }
    return templates;
  };
  const alerting = {
    name,
    expr: expr!,
    forMs: durationField(map, "for", at) ?? 0,
    keepFiringForMs: durationField(map, "keep_firing_for", at) ?? 0,
    labels,
    annotations,
    labelTemplates: compile("labels", labels),
    annotationTemplates: compile("annotations", annotations),
  };
  if (expr === undefined) return undefined;
  if (type === "alerting") return { type, ...alerting };
  return parseAnomaly(map, alerting, at);
}

function parseAnomaly(map: YAMLMap, alerting: Omit<AlertingRule, "type">, at: At): AnomalyRule | undefined {
  const { name } = alerting;
  const methodNode = map.get("method", true) as Node | undefined;
  const method = scalarText(methodNode) ?? "zscore";
  if (method !== "zscore" && method !== "mad") at(methodNode, `${name}: method must be zscore or mad`);
  const windowMs = durationField(map, "window", at) ?? 3_600_000;
  if (windowMs <= 0) at(map.get("window", true) as Node, `${name}: window must be positive`);
  const seasonalityNode = map.get("seasonality", true) as Node | undefined;
  const seasonality = scalarText(seasonalityNode) ?? "none";
  if (SEASONALITY_MS[seasonality] === undefined) at(seasonalityNode, `${name}: seasonality must be none, 1d or 1w`);
  const number = (key: string, fallback: number, valid: (n: number) => boolean, what: string) => {
    const node = map.get(key, true) as Node | undefined;
    if (node === undefined) return fallback;
    const value = Number(scalarText(node));
    if (!valid(value)) at(node, `${name}: ${key} must be ${what}`);
    return value;
  };
  const minSamples = number("min_samples", 10, (n) => Number.isInteger(n) && n >= 2, "an integer of at least 2");
  const sensitivity = number("sensitivity", 3, (n) => Number.isFinite(n) && n > 0, "a positive number");
  return {
    type: "anomaly",
    ...alerting,
    method: method as AnomalyMethod,
    windowMs,
    seasonalityMs: SEASONALITY_MS[seasonality] ?? 0,
    minSamples,
    sensitivity,
  };
}
