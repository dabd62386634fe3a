import { labelsOf, type Labels } from "../../proto/labels.js";
import type { Store } from "../../storage/store.js";
import type { Expr as LogqlExpr } from "../../common/logql/syntax/ast.js";
import { evaluate } from "../logql/evaluation/evaluator.js";
import { parseLogQL } from "../../common/logql/syntax/parser.js";
import { StoreSource } from "../logql/pushdown/store-source.js";
import type { Expr as PromqlExpr } from "../promql/syntax/ast.js";
import { instantQuery, rangeQuery } from "../promql/evaluation/evaluator.js";
import { parsePromql } from "../promql/syntax/parser.js";
import type { Value } from "../promql/evaluation/values.js";

// A rule's expression in either query language, evaluated to what rules work on: an instant vector at one time,
// and (for anomaly rules) the series of its values at regular steps over a past window.

export type Language = "promql" | "logql";

export interface RuleSample {
  labels: Labels;
  value: number;
}

export interface RuleSeries {
  labels: Labels;
  points: { timeMs: number; value: number }[];
}

export interface EvalContext {
  store: Store;
  tenant: string;
  /** Most series a LogQL expression may produce (query.limits.max_query_series). */
  maxSeries: number;
}

export interface RuleExpr {
  language: Language;
  text: string;
  instant(context: EvalContext, timeMs: number): Promise<RuleSample[]>;
  /** Values at startMs, startMs + stepMs, ... up to endMs inclusive. */
  range(context: EvalContext, startMs: number, endMs: number, stepMs: number): Promise<RuleSeries[]>;
}

/** A LogQL expression is a rule's query when it reads log streams through a range aggregation (rate, count_over_time...). */
function readsLogs(expr: LogqlExpr): boolean {
  switch (expr.kind) {
    case "range_aggregation":
      return true;
    case "vector_aggregation":
    case "label_replace":
      return readsLogs(expr.expr);
    case "binary":
      return readsLogs(expr.lhs) || readsLogs(expr.rhs);
    default:
      return false;
  }
}

/** The languages `text` parses in as a rule expression: LogQL only when it reads log streams. */
export function languagesOf(text: string): Language[] {
  const languages: Language[] = [];
  try {
    parsePromql(text);
    languages.push("promql");
  } catch {
    // not PromQL
  }
  try {
    if (readsLogs(parseLogQL(text))) languages.push("logql");
  } catch {
    // not LogQL
  }
  return languages;
}

/**
 * Parses `text` in `language`; without one, in the only language it parses in, and in `fallback` when it parses
 * in both (a PromQL `rate({job="x"}[5m])` over a selector without metric name is also LogQL) or in neither.
 * Throws the language's parse error.
 */
export function compileExpr(text: string, language?: Language, fallback: Language = "promql"): RuleExpr {
  let chosen = language;
  if (chosen === undefined) {
    const languages = languagesOf(text);
    chosen = languages.length === 1 ? languages[0]! : fallback;
  }
  return chosen === "logql" ? logqlExpr(text, parseLogQL(text)) : promqlExpr(text, parsePromql(text));
}

function vectorOf(value: Value): RuleSample[] {
  if (value.type === "vector") return value.samples;
  if (value.type === "scalar") return [{ labels: labelsOf([]), value: value.value }];
  throw new Error(`rule result is not a vector or scalar: ${value.type === "matrix" ? "range vector" : "string"}`);
}

function promqlExpr(text: string, expr: PromqlExpr): RuleExpr {
  return {
    language: "promql",
    text,
    async instant({ store, tenant }, timeMs) {
      return vectorOf(await instantQuery({ store, tenant }, expr, timeMs));
    },
    async range({ store, tenant }, startMs, endMs, stepMs) {
      return rangeQuery({ store, tenant }, expr, startMs, endMs, stepMs);
    },
  };
}

function logqlExpr(text: string, expr: LogqlExpr): RuleExpr {
  if (expr.kind === "log") throw new Error("a rule needs a metric query, not a log query");
  const toNs = (ms: number) => BigInt(ms) * 1_000_000n;
  return {
    language: "logql",
    text,
    async instant({ store, tenant, maxSeries }, timeMs) {
      const params = {
        startNs: toNs(timeMs),
        endNs: toNs(timeMs),
        stepNs: 0n,
        direction: "backward" as const,
        limit: 100,
        instant: true,
      };
      const result = await evaluate(expr, params, new StoreSource(store, tenant), { maxSeries });
      if (result.type === "vector") return result.samples.map(({ labels, value }) => ({ labels, value }));
      if (result.type === "scalar") return [{ labels: labelsOf([]), value: result.value }];
      throw new Error(`rule result is not a vector or scalar: ${result.type}`);
    },
    async range({ store, tenant, maxSeries }, startMs, endMs, stepMs) {
      const params = {
        startNs: toNs(startMs),
        endNs: toNs(endMs),
        stepNs: toNs(stepMs),
        direction: "backward" as const,
        limit: 100,
        instant: false,
      };
      const result = await evaluate(expr, params, new StoreSource(store, tenant), { maxSeries });
      if (result.type !== "matrix") throw new Error(`rule result is not a matrix: ${result.type}`);
      return result.series.map(({ labels, points }) => ({
        labels,
        points: points.map(([timeMs, value]) => ({ timeMs, value })),
      }));
    },
  };
}
