import type { Series } from "../../proto/batch.js";
import { labelsKey, labelsOf, type Labels } from "../../proto/labels.js";
import { dropName } from "../promql/evaluation/values.js";
import { alertFingerprint, type AlertNotice } from "./notice.js";
import { type ActiveElement, type Alert, AlertStates, type ResolvedAlert } from "./alerts.js";
import { anomalyBand, historyWindow, outside } from "./anomaly.js";
import type { EvalContext, Language, RuleSample } from "./expr.js";
import type { AlertingRule, AnomalyRule, RecordingRule, Rule, RuleGroup } from "./rules.js";
import { alertSeries, gauge, GROUP_EVALUATION, groupKey } from "./state.js";

// One rule group of one tenant: its rules evaluated in order at one time, the alerts' states, each rule's health,
// and what an evaluation produces (samples to store, notifications to send).

export interface RuleHealth {
  health: "ok" | "err" | "unknown";
  lastError: string;
  lastEvaluationMs: number | undefined;
  evaluationMs: number;
}

export interface GroupOptions {
  externalURL: string;
  externalLabels: Labels;
}

export interface EvaluationOutput {
  series: Series[];
  notices: AlertNotice[];
}

export class GroupRunner {
  readonly key: string;
  readonly states = new Map<Rule, AlertStates>();
  readonly health = new Map<Rule, RuleHealth>();
  lastEvaluationMs: number | undefined;
  evaluationMs = 0;
  /** The next evaluation time, aligned to the interval. */
  nextEvalMs = 0;
  restored = false;

  constructor(
    readonly tenant: string,
    readonly group: RuleGroup,
    private readonly options: GroupOptions,
  ) {
    this.key = groupKey(group.file, group.name);
    for (const rule of group.rules) {
      if (rule.type !== "recording") this.states.set(rule, new AlertStates(rule.forMs, rule.keepFiringForMs));
      this.health.set(rule, { health: "unknown", lastError: "", lastEvaluationMs: undefined, evaluationMs: 0 });
    }
  }

  /** Takes over the alerts and schedule of the group this one replaces on a reload (same rule names and kinds). */
  adopt(previous: GroupRunner): void {
    this.nextEvalMs = previous.nextEvalMs;
    this.restored = previous.restored;
    this.lastEvaluationMs = previous.lastEvaluationMs;
    for (const [rule, states] of this.states) {
      const old = [...previous.states.keys()].find((r) => r.type === rule.type && r.name === rule.name);
      if (old === undefined) continue;
      for (const alert of previous.states.get(old)!.list()) states.restore(alert);
    }
  }

  /** Marks every rule unhealthy with `message`: its group could not be evaluated, or its results not written. */
  fail(message: string, timeMs?: number): void {
    for (const health of this.health.values()) {
      health.health = "err";
      health.lastError = message;
      if (timeMs !== undefined) health.lastEvaluationMs = timeMs;
    }
  }

  alertNames(): string[] {
    return [...this.states.keys()].map((rule) => rule.name);
  }

  /** Puts back restored alerts, by alert name. */
  restore(alerts: Map<string, Alert[]>): void {
    for (const [rule, states] of this.states) for (const alert of alerts.get(rule.name) ?? []) states.restore(alert);
    this.restored = true;
  }

  /** `recorded` learns each rule's recorded series at once, before the next rule runs. */
  async evaluate(
    context: EvalContext,
    timeMs: number,
    recorded: (series: Series[]) => void = () => {},
  ): Promise<EvaluationOutput> {
    const started = performance.now();
    const output: EvaluationOutput = { series: [], notices: [] };
    for (const rule of this.group.rules) {
      const ruleStarted = performance.now();
      const health = this.health.get(rule)!;
      const before = output.series.length;
      try {
        if (rule.type === "recording") output.series.push(...(await this.record(rule, context, timeMs)));
        else await this.alert(rule, context, timeMs, output);
        recorded(output.series.slice(before));
        health.health = "ok";
        health.lastError = "";
      } catch (err) {
        health.health = "err";
        health.lastError = (err as Error).message;
      }
      health.lastEvaluationMs = timeMs;
      health.evaluationMs = performance.now() - ruleStarted;
    }
    for (const states of this.states.values()) output.series.push(...alertSeries(states.list(), timeMs));
    output.series.push(gauge(GROUP_EVALUATION, { rule_group: this.key }, timeMs, timeMs / 1000));
    this.lastEvaluationMs = timeMs;
    this.evaluationMs = performance.now() - started;
    return output;
  }

  private checkLimit(count: number, what: string): void {
    if (this.group.limit > 0 && count > this.group.limit)
      throw new Error(`exceeded limit of ${this.group.limit} with ${count} ${what}`);
  }

  private async record(rule: RecordingRule, context: EvalContext, timeMs: number): Promise<Series[]> {
    const samples = await rule.expr.instant(context, timeMs);
    this.checkLimit(samples.length, "series");
    const seen = new Set<string>();
    return samples.map((sample) => {
      const labels = { ...dropName(sample.labels), ...rule.labels };
      const key = labelsKey(labels);
      if (seen.has(key)) throw new Error("vector contains metrics with the same labelset after applying rule labels");
      seen.add(key);
      return gauge(rule.name, labels, timeMs, sample.value);
    });
  }

  private async alert(
    rule: AlertingRule | AnomalyRule,
    context: EvalContext,
    timeMs: number,
    output: EvaluationOutput,
  ): Promise<void> {
    const states = this.states.get(rule)!;
    let elements: ActiveElement[];
    try {
      const active =
        rule.type === "alerting"
          ? await rule.expr.instant(context, timeMs)
          : await this.anomalies(rule, context, timeMs, output);
      elements = active.map((sample) => this.element(rule, sample, timeMs));
      this.checkLimit(elements.length, "alerts");
    } catch (err) {
      // As Prometheus does with a rule over its limit, drop its alerts; a failed query leaves them as they are.
      if ((err as Error).message.startsWith("exceeded limit"))
        output.notices.push(...states.clear(timeMs).map((a) => this.notice(rule, a)));
      throw err;
    }
    const { resolved } = states.update(elements, timeMs);
    for (const alert of states.list()) if (alert.state === "firing") output.notices.push(this.notice(rule, alert));
    for (const alert of resolved) output.notices.push(this.notice(rule, alert));
  }

  private element(rule: AlertingRule | AnomalyRule, sample: RuleSample, timeMs: number): ActiveElement {
    const data = {
      labels: sample.labels,
      value: sample.value,
      externalLabels: this.options.externalLabels,
      externalURL: this.options.externalURL,
      timeMs,
    };
    const labels = dropName(sample.labels);
    for (const [name, template] of rule.labelTemplates) labels[name] = template.expand(data);
    labels["alertname"] = rule.name;
    const annotations = labelsOf([]);
    for (const [name, template] of rule.annotationTemplates) annotations[name] = template.expand(data);
    return { labels, annotations, value: sample.value };
  }

  /** The elements outside their band; the baseline and band of every element with enough history are recorded. */
  private async anomalies(
    rule: AnomalyRule,
    context: EvalContext,
    timeMs: number,
    output: EvaluationOutput,
  ): Promise<RuleSample[]> {
    const current = await rule.expr.instant(context, timeMs);
    const { startMs, endMs } = historyWindow(timeMs, rule.windowMs, rule.seasonalityMs, this.group.intervalMs);
    const history = new Map<string, number[]>();
    for (const series of await rule.expr.range(context, startMs, endMs, this.group.intervalMs)) {
      history.set(
        labelsKey(dropName(series.labels)),
        series.points.map((p) => p.value),
      );
    }
    const staticLabels = Object.entries(rule.labels).filter(([, value]) => !value.includes("{{"));
    const out: RuleSample[] = [];
    for (const sample of current) {
      const base = dropName(sample.labels);
      const band = anomalyBand(
        history.get(labelsKey(base)) ?? [],
        sample.value,
        rule.method,
        rule.sensitivity,
        rule.minSamples,
      );
      if (band === undefined) continue;
      const labels = { ...base, ...Object.fromEntries(staticLabels) };
      for (const part of ["baseline", "upper", "lower", "score"] as const) {
        output.series.push(gauge(`${rule.name}:${part}`, labels, timeMs, band[part]));
      }
      if (outside(band, sample.value)) out.push(sample);
    }
    return out;
  }

  private notice(rule: Rule, alert: Alert | ResolvedAlert): AlertNotice {
    const resolvedAtMs = "resolvedAtMs" in alert ? alert.resolvedAtMs : undefined;
    const notice: AlertNotice = {
      labels: { ...this.options.externalLabels, ...alert.labels },
      annotations: { ...alert.annotations },
      state: resolvedAtMs === undefined ? "firing" : "resolved",
      startsAt: new Date(alert.firedAtMs ?? alert.activeAtMs).toISOString(),
      generatorURL: generatorURL(this.options.externalURL, rule.expr.text, rule.expr.language),
      // Prometheus' fingerprint, which Alertmanager and the notifier show for the same labels.
      fingerprint: alertFingerprint({ ...this.options.externalLabels, ...alert.labels }),
    };
    if (resolvedAtMs !== undefined) notice.endsAt = new Date(resolvedAtMs).toISOString();
    return notice;
  }
}

/**
 * Prometheus' link to the expression in its graph page, which the query service answers (query/ruler/graph.ts);
 * a LogQL rule's link says so, since an expression alone does not always tell.
 */
export function generatorURL(externalURL: string, expr: string, language: Language = "promql"): string {
  const link = `${externalURL.replace(/\/$/, "")}/graph?g0.expr=${encodeURIComponent(expr)}&g0.tab=1`;
  return language === "logql" ? `${link}&g0.language=logql` : link;
}
