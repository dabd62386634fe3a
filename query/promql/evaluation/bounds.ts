import { childrenOf, type Expr } from "../syntax/ast.js";
import { type QueryWindow, referenceTime } from "./loader.js";
import { PromqlEvalError, TOO_MANY_SAMPLES } from "./values.js";

// The bound a PromQL query must fit before anything is read or evaluated: every step of a subquery holds at least
// one sample per series, so a query whose subqueries evaluate more steps than the query's sample limit
// (`max_over_time(vector(1)[30d:1ms])`: 2.6 billion) is refused at once with Prometheus' error rather than
// discovered after minutes of evaluation.

/** The step of a subquery written without one (`[1h:]`): Prometheus' default evaluation interval. */
export const DEFAULT_SUBQUERY_STEP_MS = 60_000;

/**
 * Throws PromqlEvalError when the subqueries of `expr`, evaluated over `window`, would take more than
 * `maxSamples` steps in all. A subquery evaluates each multiple of its step once per query (the evaluator caches
 * them), so its steps are the fewer of those its outer steps' windows cover and those spanning them.
 */
export function checkSubquerySteps(expr: Expr, window: QueryWindow, maxSamples: number): void {
  let total = 0;
  const outerSteps = Math.floor((window.endMs - window.startMs) / window.stepMs) + 1;
  const walk = (e: Expr, minMs: number, maxMs: number, steps: number): void => {
    switch (e.kind) {
      case "subquery": {
        const stepMs = e.stepMs ?? DEFAULT_SUBQUERY_STEP_MS;
        const firstRef = referenceTime(window, e, minMs);
        const lastRef = referenceTime(window, e, maxMs);
        const spanning = Math.floor((lastRef - firstRef + e.rangeMs) / stepMs) + 1;
        const inner = Math.min(spanning, steps * Math.ceil(e.rangeMs / stepMs));
        total += inner;
        if (total > maxSamples) throw new PromqlEvalError(TOO_MANY_SAMPLES);
        walk(e.expr, firstRef - e.rangeMs, lastRef, inner);
        return;
      }
      default:
        for (const child of childrenOf(e)) walk(child, minMs, maxMs, steps);
    }
  };
  walk(expr, window.startMs, window.endMs, outerSteps);
}
