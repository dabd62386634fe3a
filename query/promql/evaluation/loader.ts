import type { Store } from "../../../storage/store.js";
import { compareLabels } from "../../../proto/labels.js";
import {
  type Call,
  childrenOf,
  type Expr,
  type MatrixSelector,
  type TimeModifiers,
  type VectorSelector,
} from "../syntax/ast.js";
import { answerFromRollups, ROLLUP_FUNCTIONS } from "../pushdown/rollups.js";
import { answerFromSlices, SLICE_FUNCTIONS } from "../pushdown/slices.js";
import { isStaleMarker } from "../../../proto/staleness.js";
import { type Point, PromqlEvalError, type Sample, type Series, TOO_MANY_SAMPLES } from "./values.js";

// What a PromQL query reads before it is evaluated: the samples of each selector over every step's window, in one
// store read per selector, or the steps of a range function that rollups or the store's slices answer exactly.

export const DEFAULT_LOOKBACK_MS = 5 * 60_000;
export const DEFAULT_MAX_SAMPLES = 50_000_000;

export interface EngineOptions {
  store: Store;
  tenant: string;
  lookbackMs?: number;
  /** Most samples one query may read from the store (Prometheus' query.max-samples). */
  maxSamples?: number;
  /** Answer range functions from rollups where that is exact (query/promql/pushdown/rollups.ts); on by default. */
  rollups?: boolean;
  /**
   * Answer range functions from the sums the store makes of each step's window where that is exact
   * (query/promql/pushdown/slices.ts), when rollups do not; on by default.
   */
  slices?: boolean;
  /** Aborts evaluation (the query timeout): checked each time evaluation gives the event loop a turn. */
  signal?: AbortSignal;
  /** Receives, for each range function that rollups could answer, the source that did (the API's explain). */
  sources?: QuerySource[];
}

export interface QuerySource {
  /** The function and its range, as `max_over_time[300s]`. */
  expr: string;
  source: "raw" | "rollup_1m" | "rollup_1h";
  /** Why raw samples answered. */
  reason?: string;
}

/** The steps a query is evaluated at. */
export interface QueryWindow {
  startMs: number;
  endMs: number;
  stepMs: number;
}

export interface Selections {
  data: Map<VectorSelector, Series[]>;
  /** Range functions answered from rollups or the store's slices: their vector at each step's time. */
  rolledUp: Map<Call, Map<number, Sample[]>>;
}

/** The time a selector or subquery is evaluated at for the step at t: `@` pins it, `offset` moves it back. */
export function referenceTime(window: QueryWindow, modifiers: TimeModifiers, t: number): number {
  const at = modifiers.at;
  const pinned =
    at === undefined ? t : at.kind === "time" ? at.ms : at.kind === "start" ? window.startMs : window.endMs;
  return pinned - modifiers.offsetMs;
}

/**
 * Reads the samples of every selector in the expression from the store, for all steps at once, and the steps of
 * the range functions that rollups or the store's slices answer.
 */
export async function loadSelections(options: EngineOptions, expr: Expr, window: QueryWindow): Promise<Selections> {
  const data = new Map<VectorSelector, Series[]>();
  const rolledUp = new Map<Call, Map<number, Sample[]>>();
  const lookbackMs = options.lookbackMs ?? DEFAULT_LOOKBACK_MS;
  const selections: {
    selector: VectorSelector;
    rangeMs: number;
    firstMs: number;
    lastMs: number;
    matrix: boolean;
  }[] = [];
  const candidates: Candidate[] = [];
  // Each node is evaluated at times in [minMs, maxMs]: the query's, or a subquery's steps below it.
  const walk = (e: Expr, minMs: number, maxMs: number, inSubquery = false): void => {
    switch (e.kind) {
      case "selector":
      case "matrix": {
        const selector = e.kind === "selector" ? e : e.selector;
        const rangeMs = e.kind === "selector" ? lookbackMs : e.rangeMs;
        selections.push({
          selector,
          rangeMs,
          firstMs: referenceTime(window, selector, minMs),
          lastMs: referenceTime(window, selector, maxMs),
          matrix: e.kind === "matrix",
        });
        return;
      }
      case "subquery":
        walk(e.expr, referenceTime(window, e, minMs) - e.rangeMs, referenceTime(window, e, maxMs), true);
        return;
      case "call": {
        const arg = e.args[0];
        const rollups = options.rollups !== false && ROLLUP_FUNCTIONS.has(e.func);
        const slices = options.slices !== false && SLICE_FUNCTIONS.has(e.func);
        if (!inSubquery && (rollups || slices) && arg?.kind === "matrix") {
          candidates.push({ call: e, matrix: arg, rollups, slices });
          return;
        }
        e.args.forEach((a) => walk(a, minMs, maxMs, inSubquery));
        return;
      }
      default:
        for (const child of childrenOf(e)) walk(child, minMs, maxMs, inSubquery);
    }
  };
  walk(expr, window.startMs, window.endMs);
  let loaded = 0;
  const maxSamples = options.maxSamples ?? DEFAULT_MAX_SAMPLES;
  const steps: number[] = [];
  for (let t = window.startMs; t <= window.endMs; t += window.stepMs) steps.push(t);
  const answers = await Promise.all(candidates.map((candidate) => pushedDown(options, candidate, window, steps)));
  candidates.forEach(({ call, matrix }, i) => {
    const { answer, source } = answers[i]!;
    if (source !== undefined) options.sources?.push(source);
    if (answer === undefined) {
      selections.push({
        selector: matrix.selector,
        rangeMs: matrix.rangeMs,
        firstMs: referenceTime(window, matrix.selector, window.startMs),
        lastMs: referenceTime(window, matrix.selector, window.endMs),
        matrix: true,
      });
      return;
    }
    loaded += answer.samples;
    rolledUp.set(call, answer.steps);
  });
  if (loaded > maxSamples) throw new PromqlEvalError(TOO_MANY_SAMPLES);
  await Promise.all(
    selections.map(async ({ selector, rangeMs, firstMs, lastMs, matrix }) => {
      // The windows are left-open, (ref - range, ref]; the store's ranges are [start, end).
      const found = await options.store.selectSamples({
        tenant: options.tenant,
        matchers: selector.matchers,
        startMs: firstMs - rangeMs + 1,
        endMs: lastMs + 1,
      });
      for (const series of found) loaded += series.points.length;
      if (loaded > maxSamples) throw new PromqlEvalError(TOO_MANY_SAMPLES);
      // Prometheus' series sets are sorted by labels; results keep that order unless an operation changes it.
      // A range selector leaves staleness markers out; an instant one needs them to end a series' lookback.
      data.set(
        selector,
        found
          .map((s) => ({ labels: s.labels, points: matrix ? withoutStaleMarkers(s.points) : s.points }))
          .sort((a, b) => compareLabels(a.labels, b.labels)),
      );
    }),
  );
  return { data, rolledUp };
}

/** A range function of a plain range selector, which rollups or the store's slices may answer. */
interface Candidate {
  call: Call;
  matrix: MatrixSelector;
  rollups: boolean;
  slices: boolean;
}

/**
 * The candidate's vector at each step from rollups or else from the store's slices, when either is exact, and
 * what rollups answered (undefined when they were not asked).
 */
async function pushedDown(
  options: EngineOptions,
  { call, matrix, rollups, slices }: Candidate,
  window: QueryWindow,
  steps: number[],
): Promise<{ answer?: { steps: Map<number, Sample[]>; samples: number }; source?: QuerySource }> {
  const query = {
    func: call.func,
    matchers: matrix.selector.matchers,
    rangeMs: matrix.rangeMs,
    steps: steps.map((t) => ({ t, ref: referenceTime(window, matrix.selector, t) })),
  };
  let source: QuerySource | undefined;
  if (rollups) {
    const expr = `${call.func}[${matrix.rangeMs / 1000}s]`;
    const answer = await answerFromRollups(options.store, options.tenant, query);
    if (answer.source !== "raw")
      return { answer: { steps: answer.steps, samples: answer.rows }, source: { expr, source: answer.source } };
    source = { expr, source: "raw", reason: answer.reason };
  }
  if (slices) {
    const answer = await answerFromSlices(options.store, options.tenant, query);
    if ("steps" in answer) return { answer, ...(source === undefined ? {} : { source }) };
  }
  return source === undefined ? {} : { source };
}

function withoutStaleMarkers(points: Point[]): Point[] {
  return points.some((p) => isStaleMarker(p.value)) ? points.filter((p) => !isStaleMarker(p.value)) : points;
}
