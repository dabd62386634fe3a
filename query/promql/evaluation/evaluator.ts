import { type Binary, type Expr, type MatrixSelector, type Subquery, type VectorSelector } from "../syntax/ast.js";
import { EvaluationBudget } from "../../evaluation-budget.js";
import { checkSubquerySteps, DEFAULT_SUBQUERY_STEP_MS } from "./bounds.js";
import {
  DEFAULT_LOOKBACK_MS,
  DEFAULT_MAX_SAMPLES,
  type EngineOptions,
  loadSelections,
  type QueryWindow,
  referenceTime,
  type Selections,
} from "./loader.js";
import { histogramQuantile, MATH_FUNCTIONS, RANGE_FUNCTIONS, rangeFunction, type Window } from "./functions.js";
import {
  assertUniqueLabels,
  dropName,
  type Point,
  PromqlEvalError,
  type Sample,
  TOO_MANY_SAMPLES,
  type Series,
  type Value,
} from "./values.js";
import { compareLabels, labelsKey, labelsOf, type Labels } from "../../../proto/labels.js";
import type { ArithmeticOp, ComparisonOp } from "../../../common/vector/types.js";
import { isStaleMarker } from "../../../proto/staleness.js";
import { aggregate, labelReplace, scalarBinary, sortVector, vectorBinary, vectorScalar } from "./vector-ops.js";

// Evaluates a PromQL expression the way Prometheus 3 does: every step on its own, an instant selector taking the
// newest sample in (t - lookback, t] unless that is a staleness marker, a range selector the samples in
// (t - range, t] but staleness markers, a subquery its expression at the multiples of its step in (t - range, t].
// Each selector's samples are read from the store once for the whole query, then sliced per step. Evaluation is
// asynchronous only to yield (query/evaluation-budget.ts): a heavy query gives the event loop a turn every few
// milliseconds and stops when its request times out.

export { DEFAULT_SUBQUERY_STEP_MS };

/** Evaluates at one time (ms); a range selector at the top yields a matrix, as Prometheus' instant queries do. */
export async function instantQuery(options: EngineOptions, expr: Expr, timeMs: number): Promise<Value> {
  const window = { startMs: timeMs, endMs: timeMs, stepMs: 1 };
  const evaluator = new Evaluator(options, window, await prepare(options, expr, window));
  return evaluator.evaluate(expr, timeMs);
}

/** Evaluates at start, start + step, ... up to end (ms) into series sorted by labels. */
export async function rangeQuery(
  options: EngineOptions,
  expr: Expr,
  startMs: number,
  endMs: number,
  stepMs: number,
): Promise<Series[]> {
  const window = { startMs, endMs, stepMs };
  const evaluator = new Evaluator(options, window, await prepare(options, expr, window));
  const series = new Map<string, Series>();
  const add = (labels: Labels, point: Point) => {
    const key = evaluator.labelsKey(labels);
    let one = series.get(key);
    if (one === undefined) series.set(key, (one = { labels, points: [] }));
    one.points.push(point);
  };
  for (let t = startMs; t <= endMs; t += stepMs) {
    const value = await evaluator.evaluate(expr, t);
    evaluator.budget.spend(value.type === "vector" ? value.samples.length : 1);
    if (value.type === "scalar") add(labelsOf([]), { timeMs: t, value: value.value });
    else if (value.type === "vector")
      for (const sample of value.samples) add(sample.labels, { timeMs: t, value: sample.value });
    else
      throw new PromqlEvalError(
        `invalid expression type "${value.type === "matrix" ? "range vector" : "string"}" for range query, must be Scalar or instant Vector`,
      );
  }
  return [...series.values()].sort((a, b) => compareLabels(a.labels, b.labels));
}

/** Refuses a query whose subqueries cannot fit its sample limit, then reads what it selects. */
async function prepare(options: EngineOptions, expr: Expr, window: QueryWindow): Promise<Selections> {
  checkSubquerySteps(expr, window, options.maxSamples ?? DEFAULT_MAX_SAMPLES);
  return loadSelections(options, expr, window);
}

/** vector()'s labels, one set for every step: label sets are never changed once made, and keyed once. */
const NO_LABELS = labelsOf([]);

interface TimedSample extends Sample {
  timeMs: number;
}

/** A series' points [from, to) in a range function's window. */
interface SeriesWindow extends Series {
  from: number;
  to: number;
}

class Evaluator {
  private readonly subqueryResults = new Map<Subquery, Map<number, Value>>();
  private readonly lookbackMs: number;
  // A label set is never changed once made, and a selector's series keep theirs at every step: each set's copy
  // without the metric name, and its key, are worked out once per query rather than once per step.
  private readonly nameless = new WeakMap<Labels, Labels>();
  private readonly keys = new WeakMap<Labels, string>();
  readonly budget: EvaluationBudget;

  constructor(
    options: EngineOptions,
    private readonly window: QueryWindow,
    private readonly loaded: Selections,
  ) {
    this.lookbackMs = options.lookbackMs ?? DEFAULT_LOOKBACK_MS;
    this.budget = new EvaluationBudget({
      maxSamples: options.maxSamples ?? DEFAULT_MAX_SAMPLES,
      tooManySamples: () => new PromqlEvalError(TOO_MANY_SAMPLES),
      signal: options.signal,
    });
  }

  async evaluate(expr: Expr, t: number): Promise<Value> {
    await this.budget.pause();
    switch (expr.kind) {
      case "number":
        return { type: "scalar", value: expr.value };
      case "string":
        return { type: "string", value: expr.value };
      case "paren":
        return await this.evaluate(expr.expr, t);
      case "selector":
        return { type: "vector", samples: this.selectInstant(expr, t).map(({ labels, value }) => ({ labels, value })) };
      case "matrix":
      case "subquery":
        return {
          type: "matrix",
          series: (await this.rangeArgument(expr, t)).series.map(({ labels, points, from, to }) => ({
            labels,
            points: points.slice(from, to),
          })),
        };
      case "unary": {
        const value = await this.evaluate(expr.expr, t);
        if (expr.op === "+") return value;
        if (value.type === "scalar") return { type: "scalar", value: -value.value };
        return this.vectorResult(this.vector(value).map((s) => ({ labels: this.dropName(s.labels), value: -s.value })));
      }
      case "binary":
        return await this.binary(expr, t);
      case "aggregation": {
        const param = expr.param === undefined ? undefined : await this.evaluate(expr.param, t);
        const samples = aggregate({
          op: expr.op,
          ...(param === undefined ? {} : { param: param.type === "string" ? param.value : this.scalar(param) }),
          grouping: expr.grouping,
          without: expr.without,
          samples: this.vector(await this.evaluate(expr.expr, t)),
        });
        return { type: "vector", samples };
      }
      case "call": {
        const rolledUp = this.loaded.rolledUp.get(expr)?.get(t);
        return rolledUp !== undefined ? this.vectorResult(rolledUp) : await this.call(expr.func, expr.args, t);
      }
    }
  }

  private vectorResult(samples: Sample[]): Value {
    assertUniqueLabels(
      samples.map((s) => s.labels),
      (labels) => this.labelsKey(labels),
    );
    return { type: "vector", samples };
  }

  labelsKey(labels: Labels): string {
    let key = this.keys.get(labels);
    if (key === undefined) this.keys.set(labels, (key = labelsKey(labels)));
    return key;
  }

  private dropName(labels: Labels): Labels {
    let out = this.nameless.get(labels);
    if (out === undefined) this.nameless.set(labels, (out = dropName(labels)));
    return out;
  }

  private vector(value: Value): Sample[] {
    if (value.type !== "vector") throw new Error(`expected an instant vector, got ${value.type}`);
    return value.samples;
  }

  private scalar(value: Value): number {
    if (value.type !== "scalar") throw new Error(`expected a scalar, got ${value.type}`);
    return value.value;
  }

  private string(value: Value): string {
    if (value.type !== "string") throw new Error(`expected a string, got ${value.type}`);
    return value.value;
  }

  /** The newest sample of each series in (ref - lookback, ref], with its own timestamp. */
  private selectInstant(selector: VectorSelector, t: number): TimedSample[] {
    const ref = referenceTime(this.window, selector, t);
    const out: TimedSample[] = [];
    for (const series of this.loaded.data.get(selector)!) {
      const index = lastAtOrBefore(series.points, ref);
      if (index < 0) continue;
      const point = series.points[index]!;
      if (point.timeMs <= ref - this.lookbackMs || isStaleMarker(point.value)) continue;
      out.push({ labels: series.labels, value: point.value, timeMs: point.timeMs });
    }
    return out;
  }

  /**
   * A range selector's or subquery's series at the step at t, each as its points [from, to) (not copied out), with
   * the window (ref - range, ref] they cover.
   */
  private async rangeArgument(
    expr: MatrixSelector | Subquery,
    t: number,
  ): Promise<{ series: SeriesWindow[]; window: Window }> {
    if (expr.kind === "subquery") {
      const { series, window } = await this.subquery(expr, t);
      return { series: series.map(({ labels, points }) => ({ labels, points, from: 0, to: points.length })), window };
    }
    const ref = referenceTime(this.window, expr.selector, t);
    const series: SeriesWindow[] = [];
    for (const one of this.loaded.data.get(expr.selector)!) {
      const from = lastAtOrBefore(one.points, ref - expr.rangeMs) + 1;
      const to = lastAtOrBefore(one.points, ref) + 1;
      if (to > from) series.push({ labels: one.labels, points: one.points, from, to });
    }
    return { series, window: { startMs: ref - expr.rangeMs, endMs: ref, rangeMs: expr.rangeMs } };
  }

  /** The inner expression at the multiples of the step in (ref - range, ref], each time evaluated once per query. */
  private async subquery(expr: Subquery, t: number): Promise<{ series: Series[]; window: Window }> {
    const ref = referenceTime(this.window, expr, t);
    const stepMs = expr.stepMs ?? DEFAULT_SUBQUERY_STEP_MS;
    let cache = this.subqueryResults.get(expr);
    if (cache === undefined) this.subqueryResults.set(expr, (cache = new Map()));
    const series = new Map<string, Series>();
    let held = 0;
    for (let at = Math.floor((ref - expr.rangeMs) / stepMs) * stepMs + stepMs; at <= ref; at += stepMs) {
      await this.budget.pause();
      let value = cache.get(at);
      if (value === undefined) {
        cache.set(at, (value = await this.evaluate(expr.expr, at)));
        this.budget.spend(value.type === "vector" ? value.samples.length : 1);
      }
      for (const sample of this.vector(value)) {
        const key = this.labelsKey(sample.labels);
        let one = series.get(key);
        if (one === undefined) series.set(key, (one = { labels: sample.labels, points: [] }));
        one.points.push({ timeMs: at, value: sample.value });
      }
      held += value.type === "vector" ? value.samples.length : 1;
      this.budget.hold(held);
    }
    return {
      series: [...series.values()].sort((a, b) => compareLabels(a.labels, b.labels)),
      window: { startMs: ref - expr.rangeMs, endMs: ref, rangeMs: expr.rangeMs },
    };
  }

  private async call(func: string, args: Expr[], t: number): Promise<Value> {
    if (RANGE_FUNCTIONS.has(func)) {
      const param = args.length > 1 ? this.scalar(await this.evaluate(args[0]!, t)) : NaN;
      const { series, window } = await this.rangeArgument(args[args.length - 1] as MatrixSelector | Subquery, t);
      const out: Sample[] = [];
      for (const one of series) {
        const value = rangeFunction(func, one.points, one.from, one.to, window, param);
        // last_over_time only moves samples in time, like offset, so it keeps the metric name.
        if (value !== undefined)
          out.push({ labels: func === "last_over_time" ? one.labels : this.dropName(one.labels), value });
      }
      return this.vectorResult(out);
    }
    const math = MATH_FUNCTIONS[func];
    if (math !== undefined) {
      const samples = this.vector(await this.evaluate(args[0]!, t));
      const params: number[] = [];
      for (const arg of args.slice(1)) params.push(this.scalar(await this.evaluate(arg, t)));
      // clamp with min > max gives an empty vector.
      if (func === "clamp" && params[0]! > params[1]!) return { type: "vector", samples: [] };
      return this.vectorResult(samples.map((s) => ({ labels: this.dropName(s.labels), value: math(s.value, params) })));
    }
    switch (func) {
      case "time":
        return { type: "scalar", value: t / 1000 };
      case "vector":
        return {
          type: "vector",
          samples: [{ labels: NO_LABELS, value: this.scalar(await this.evaluate(args[0]!, t)) }],
        };
      case "scalar": {
        const samples = this.vector(await this.evaluate(args[0]!, t));
        return { type: "scalar", value: samples.length === 1 ? samples[0]!.value : NaN };
      }
      case "timestamp": {
        // A selector's samples carry their own time; anything computed is stamped with the evaluation time.
        let arg = args[0]!;
        while (arg.kind === "paren") arg = arg.expr;
        const samples: TimedSample[] =
          arg.kind === "selector"
            ? this.selectInstant(arg, t)
            : this.vector(await this.evaluate(arg, t)).map((s) => ({ ...s, timeMs: t }));
        return this.vectorResult(samples.map((s) => ({ labels: this.dropName(s.labels), value: s.timeMs / 1000 })));
      }
      case "histogram_quantile": {
        const q = this.scalar(await this.evaluate(args[0]!, t));
        return this.vectorResult(histogramQuantile(q, this.vector(await this.evaluate(args[1]!, t))));
      }
      case "sort":
      case "sort_desc":
        return {
          type: "vector",
          samples: sortVector(this.vector(await this.evaluate(args[0]!, t)), func === "sort_desc"),
        };
      case "label_replace": {
        const strings: string[] = [];
        for (const arg of args.slice(1)) strings.push(this.string(await this.evaluate(arg, t)));
        const [destination, replacement, source, regex] = strings;
        return {
          type: "vector",
          samples: labelReplace({
            samples: this.vector(await this.evaluate(args[0]!, t)),
            destination: destination!,
            replacement: replacement!,
            source: source!,
            regex: regex!,
          }),
        };
      }
      default:
        throw new Error(`function ${func} has no evaluation`);
    }
  }

  private async binary(expr: Binary, t: number): Promise<Value> {
    const lhs = await this.evaluate(expr.lhs, t);
    const rhs = await this.evaluate(expr.rhs, t);
    if (lhs.type === "scalar" && rhs.type === "scalar") {
      return { type: "scalar", value: scalarBinary(expr.op as ArithmeticOp | ComparisonOp, lhs.value, rhs.value) };
    }
    if (lhs.type === "vector" && rhs.type === "vector") {
      return {
        type: "vector",
        samples: vectorBinary({
          op: expr.op,
          lhs: lhs.samples,
          rhs: rhs.samples,
          matching: expr.matching!,
          bool: expr.bool,
        }),
      };
    }
    const vectorOnLeft = lhs.type === "vector";
    const samples = this.vector(vectorOnLeft ? lhs : rhs);
    const scalar = this.scalar(vectorOnLeft ? rhs : lhs);
    return this.vectorResult(
      vectorScalar(expr.op as ArithmeticOp | ComparisonOp, samples, scalar, !vectorOnLeft, expr.bool),
    );
  }
}

/** Index of the last point at or before timeMs, or -1. */
function lastAtOrBefore(points: Point[], timeMs: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]!.timeMs <= timeMs) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
