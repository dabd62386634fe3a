import type { Labels } from "../../../proto/labels.js";
import type { Direction } from "../../../storage/store.js";
import type { Sample } from "../../../common/vector/types.js";
import type { Grouping, LogExpr, LogRange, RangeAggregationExpr } from "../../../common/logql/syntax/ast.js";
import type { LabelCategories } from "../../../common/logql/pipeline/labels-builder.js";

// What the evaluator reads (an EngineSource: the Store behind pushdown/store-source.ts, or test data) and the
// steps a metric query moves through.

export interface Step {
  tsMs: number;
  vector: Sample[];
}

export interface Timeline {
  startNs: bigint;
  endNs: bigint;
  stepNs: bigint;
}

export interface LogRow {
  tsNs: bigint;
  line: string;
  /** Labels after the pipeline: stream labels, structured metadata and extracted labels. */
  labels: Labels;
  /** The same labels by category, when the source was asked to categorize. */
  categories?: LabelCategories;
}

export interface SampleRow {
  tsNs: bigint;
  value: number;
  /** Labels after the pipeline, unwrap and the filters after unwrap. */
  labels: Labels;
}

export interface EngineSource {
  /**
   * Entries of `log` (selector + full pipeline applied) with tsNs in [startNs, endNs), in `direction` order, in
   * chunks. `limit`, when given, is how many entries the caller will take at most, so that the source reads no more.
   * `required`, when given, names the only labels the caller reads besides the stream labels and the error labels
   * (pipeline/hints.ts), so that parsers may leave the others out.
   */
  logs(
    log: LogExpr,
    startNs: bigint,
    endNs: bigint,
    direction: Direction,
    limit?: number,
    categorize?: boolean,
    required?: ReadonlySet<string>,
  ): AsyncIterable<LogRow[]>;
  /** For range aggregations with unwrap: unwrapped values, ascending by time, in chunks; `required` as for logs. */
  samples(range: LogRange, startNs: bigint, endNs: bigint, required?: ReadonlySet<string>): AsyncIterable<SampleRow[]>;
  /**
   * The steps of a range aggregation computed by the source itself (pushed down into the Store), or undefined
   * when it cannot; the engine then streams rows through its own windows. Both must give the same steps.
   */
  rangeAggregation?(expr: RangeAggregationExpr, timeline: Timeline): Promise<Step[] | undefined>;
  /**
   * The steps of `sum <grouping> (expr)` (a `by` grouping or none) computed by the source itself, or undefined
   * when it cannot. The same steps as summing rangeAggregation's, except that a summed rate may differ in the
   * last bits (the rate of the summed counts rather than the sum of the rates).
   */
  groupedRangeAggregation?(
    expr: RangeAggregationExpr,
    grouping: Grouping | undefined,
    timeline: Timeline,
  ): Promise<Step[] | undefined>;
}
