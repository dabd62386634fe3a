import type { Registry } from "prom-client";
import type { z } from "zod";
import type { Labels } from "../../../proto/labels.js";
import type { LogMetrics } from "./log-metrics.js";

// What every pipeline stage is: a configuration schema and a compile step that turns one validated
// configuration into a closure over one entry. Compilation happens once per configuration load; the closure
// runs per entry and allocates nothing it can avoid.

/** One log entry on its way through a pipeline: what the stages read and change. */
export interface PipelineEntry {
  line: string;
  timeUnixNano: bigint;
  /** When the input read or received the entry: `older_than` and the timestamp guard measure from it. */
  readonly readUnixNano: bigint;
  /** Stream labels: the entry's own copy. */
  labels: Labels;
  /** Structured metadata: the entry's own copy. */
  metadata: Labels;
  /** Values the parsing stages extracted, seeded with the stream labels as Promtail seeds it. */
  extracted: Record<string, unknown>;
  tenant: string;
  /** Milliseconds the pipeline must wait before the entry goes on (a `limit` stage in block mode). */
  waitMs: number;
}

/** What a stage did with an entry: went on (undefined), failed but went on, or dropped it. */
export interface Outcome {
  readonly kind: "failed" | "dropped";
  readonly reason: string;
}

/** An outcome made once, at compile time: the closures return these constants. */
export function failed(reason: string): Outcome {
  return Object.freeze({ kind: "failed", reason });
}

export function dropped(reason: string): Outcome {
  return Object.freeze({ kind: "dropped", reason });
}

export type StageRun = (entry: PipelineEntry) => Outcome | undefined;

/** What a stage may use besides its configuration; tests give their own clock and dice. */
export interface StageContext {
  /** Milliseconds since the epoch. */
  now(): number;
  /** A number in [0, 1). */
  random(): number;
  /** Where stages register counters of their own (the redact stage's per detector); none in some tests. */
  registry?: Registry;
  /** The pipeline's name (the input's), as those counters label it. */
  pipeline?: string;
  /** The collector's metrics from logs, which the `metrics` stage updates and the batcher ships. */
  logMetrics?: LogMetrics;
  /**
   * Nested stages (a `match` stage's), validated and compiled by the pipeline: a closure that runs them and
   * answers the dropping outcome if one dropped the entry.
   */
  nested(stages: unknown[]): StageRun;
}

export interface StageDefinition<S extends z.ZodType = z.ZodType> {
  schema: S;
  compile(config: z.output<S>, context: StageContext): StageRun;
}

/** Declares a stage so that its compile step is typed by its schema. */
export function defineStage<S extends z.ZodType>(definition: StageDefinition<S>): StageDefinition<S> {
  return definition;
}

/** A value of the extracted map as a label value or line, as Promtail's getString converts it; undefined when it has none. */
export function textOf(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
      return Number.isFinite(value) ? String(value) : undefined;
    case "boolean":
      return String(value);
    case "bigint":
      return value.toString();
    default:
      return value === null || value === undefined ? undefined : JSON.stringify(value);
  }
}

/** The text a stage reads: the extracted value `source`, or the line when no source is given. */
export function sourceText(entry: PipelineEntry, source: string | undefined): string | undefined {
  return source === undefined ? entry.line : textOf(entry.extracted[source]);
}
