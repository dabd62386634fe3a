import type { AggregationOp, BinaryOp, VectorMatching } from "./ast.js";
import { PromqlEvalError, type Sample } from "./values.js";

// The instant-vector operations that PromQL shares with LogQL: aggregations, binary operators between two
// vectors, sort and label_replace. They are implemented once, in query/engine/vector.ts; the PromQL engine calls
// them only through the functions below, which take fully evaluated operands.

export interface AggregationRequest {
  op: AggregationOp;
  /** The evaluated parameter of topk, bottomk, quantile (number) and count_values (string). */
  param?: number | string;
  grouping: string[];
  without: boolean;
  samples: Sample[];
}

export interface VectorBinaryRequest {
  op: BinaryOp;
  lhs: Sample[];
  rhs: Sample[];
  matching: VectorMatching;
  /** `bool` after a comparison. */
  bool: boolean;
}

export interface LabelReplaceRequest {
  samples: Sample[];
  destination: string;
  replacement: string;
  source: string;
  /** RE2, anchored at both ends. */
  regex: string;
}

export function aggregate(request: AggregationRequest): Sample[] {
  throw new PromqlEvalError(`aggregation ${request.op} is evaluated by query/engine/vector.ts`);
}

export function vectorBinary(request: VectorBinaryRequest): Sample[] {
  throw new PromqlEvalError(`binary operator ${request.op} between two vectors is evaluated by query/engine/vector.ts`);
}

export function sortVector(samples: Sample[], descending: boolean): Sample[] {
  throw new PromqlEvalError(`${descending ? "sort_desc" : "sort"} of ${samples.length} samples is evaluated by query/engine/vector.ts`);
}

export function labelReplace(request: LabelReplaceRequest): Sample[] {
  throw new PromqlEvalError(`label_replace of label ${request.destination} is evaluated by query/engine/vector.ts`);
}
