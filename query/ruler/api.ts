import type { Context, Hono } from "hono";
import { tenantOf } from "../../common/auth.js";
import { formatFloatE } from "../../common/go/float-format.js";
import { GO_ZERO_TIME } from "../../common/go/time-layout.js";
import type { Alert } from "./alerts.js";
import type { GroupRunner } from "./group.js";
import type { Rule } from "./rules.js";
import type { Ruler } from "./ruler.js";

// Prometheus' /api/v1/rules and /api/v1/alerts (web/api/v1/api.go) over the ruler's groups of the request's
// tenant, in Prometheus' JSON shapes, under /prometheus/api/v1 and /api/v1. Anomaly rules are listed as alerting
// rules (Grafana knows only the two types), with their parameters under `anomaly`.

const rfc3339 = (ms: number) => new Date(ms).toISOString();

function alertJson(alert: Alert) {
  return {
    labels: alert.labels,
    annotations: alert.annotations,
    state: alert.state,
    activeAt: rfc3339(alert.activeAtMs),
    ...(alert.keepFiringSinceMs !== undefined ? { keepFiringSince: rfc3339(alert.keepFiringSinceMs) } : {}),
    value: formatFloatE(alert.value),
  };
}

function ruleJson(runner: GroupRunner, rule: Rule, excludeAlerts: boolean) {
  const health = runner.health.get(rule)!;
  const common = {
    name: rule.name,
    query: rule.expr.text,
    labels: rule.labels,
    health: health.health,
    lastError: health.lastError,
    evaluationTime: health.evaluationMs / 1000,
    lastEvaluation: health.lastEvaluationMs === undefined ? GO_ZERO_TIME : rfc3339(health.lastEvaluationMs),
  };
  if (rule.type === "recording") return { ...common, type: "recording" };
  const alerts = runner.states.get(rule)!.list();
  const state = alerts.some((a) => a.state === "firing") ? "firing" : alerts.length > 0 ? "pending" : "inactive";
  return {
    state,
    ...common,
    duration: rule.forMs / 1000,
    keepFiringFor: rule.keepFiringForMs / 1000,
    annotations: rule.annotations,
    ...(excludeAlerts ? {} : { alerts: alerts.map(alertJson) }),
    type: "alerting",
    ...(rule.type === "anomaly"
      ? {
          anomaly: {
            method: rule.method,
            window: rule.windowMs / 1000,
            seasonality: rule.seasonalityMs / 1000,
            minSamples: rule.minSamples,
            sensitivity: rule.sensitivity,
          },
        }
      : {}),
  };
}

function filterOf(url: URL, name: string): Set<string> | undefined {
  const values = url.searchParams.getAll(name);
  return values.length === 0 ? undefined : new Set(values);
}

export function rulerRoutes(app: Hono, ruler: Ruler, prefixes: string[] = ["", "/prometheus"]): void {
  const rules = (c: Context) => {
    const url = new URL(c.req.url);
    const type = url.searchParams.get("type") ?? "";
    if (type !== "" && type !== "alert" && type !== "record") {
      return c.json({ status: "error", errorType: "bad_data", error: `unsupported type ${JSON.stringify(type)}` }, 400);
    }
    const excludeAlerts = url.searchParams.get("exclude_alerts") === "true";
    const names = filterOf(url, "rule_name[]");
    const groupNames = filterOf(url, "rule_group[]");
    const files = filterOf(url, "file[]");
    const groups = [];
    for (const runner of ruler.groups(tenantOf(c))) {
      const { group } = runner;
      if (groupNames !== undefined && !groupNames.has(group.name)) continue;
      if (files !== undefined && !files.has(group.file)) continue;
      const selected = group.rules.filter(
        (rule) =>
          (names === undefined || names.has(rule.name)) &&
          (type === "" || (type === "record") === (rule.type === "recording")),
      );
      if (selected.length === 0 && (names !== undefined || type !== "")) continue;
      groups.push({
        name: group.name,
        file: group.file,
        rules: selected.map((rule) => ruleJson(runner, rule, excludeAlerts)),
        interval: group.intervalMs / 1000,
        limit: group.limit,
        evaluationTime: runner.evaluationMs / 1000,
        lastEvaluation: runner.lastEvaluationMs === undefined ? GO_ZERO_TIME : rfc3339(runner.lastEvaluationMs),
      });
    }
    return c.json({ status: "success", data: { groups } });
  };
  const alerts = (c: Context) => {
    const list = ruler
      .groups(tenantOf(c))
      .flatMap((runner) => [...runner.states.values()].flatMap((states) => states.list().map(alertJson)));
    return c.json({ status: "success", data: { alerts: list } });
  };
  for (const prefix of prefixes) {
    app.get(`${prefix}/api/v1/rules`, rules);
    app.get(`${prefix}/api/v1/alerts`, alerts);
  }
}
