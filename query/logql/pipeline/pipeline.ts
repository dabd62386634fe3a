// The LogQL log pipeline (`| json | level="error" | line_format ...`) with Grafana Loki's semantics, compiled once
// per query and run per entry. Stages read and write one reused LabelsBuilder; only the result is allocated.

import type { Labels } from "../../../proto/labels.js";
import type { LabelFilterExpr, Stage, Unwrap } from "../../../common/logql/syntax/ast.js";
import { dropStage, keepStage } from "./drop-keep.js";
import { labelFormatStage, lineFormatStage } from "./template-stages.js";
import { goParseBytes, goParseDurationSeconds, goParseFloat, type Parsed } from "../../../common/go/parse.js";
import { compileLabelFilter, type LabelPredicate } from "./label-filter.js";
import {
  ERROR_DETAILS_LABEL,
  ERROR_LABEL,
  type LabelCategories,
  LabelsBuilder,
} from "../../../common/logql/pipeline/labels-builder.js";
import { decolorizeStage, lineFilterStage } from "../../../common/logql/pipeline/line.js";
import {
  jsonParamsStage,
  jsonStage,
  logfmtParamsStage,
  logfmtStage,
  patternStage,
  regexpStage,
  type StageFn,
  unpackStage,
} from "../../../common/logql/pipeline/parsers.js";

export { StageError } from "../../../common/logql/pipeline/parsers.js";

export interface PipelineResult {
  line: string;
  /** Read-only: when no stage touched the labels this is the `streamLabels` record passed to `process`. */
  labels: Labels;
  /** The same labels by category, from a pipeline compiled with `categorize`. */
  categories?: LabelCategories;
}

export interface Pipeline {
  /**
   * Runs every stage; null when a filter drops the entry. `labels` in the result = stream labels + structured metadata + extracted labels, with __error__ / __error_details__ as Loki sets them.
   * `streamLabels` and `metadata` must not be modified after the call: their entries are cached per record.
   */
  process(tsNs: bigint, line: string, streamLabels: Labels, metadata: Labels): PipelineResult | null;
}

export interface UnwrapSample {
  value: number;
  labels: Labels;
}

function compileStage(stage: Stage): StageFn {
  switch (stage.kind) {
    case "line_filter":
      return lineFilterStage(stage);
    case "json":
      return stage.params.length === 0 ? jsonStage() : jsonParamsStage(stage.params);
    case "logfmt":
      return stage.params.length === 0
        ? logfmtStage(stage.strict, stage.keepEmpty)
        : logfmtParamsStage(stage.params, stage.strict);
    case "regexp":
      return regexpStage(stage.pattern);
    case "pattern":
      return patternStage(stage.pattern);
    case "unpack":
      return unpackStage();
    case "label_filter": {
      const predicate = compileLabelFilter(stage.filter);
      return (_ts, line, labels) => (predicate(labels) ? line : null);
    }
    case "line_format":
      return lineFormatStage(stage.template);
    case "label_format":
      return labelFormatStage(stage.items);
    case "drop":
      return dropStage(stage.items);
    case "keep":
      return keepStage(stage.items);
    case "decolorize":
      return decolorizeStage();
  }
}

/**
 * Compiles every stage (regexes, templates, JSON paths) once; throws StageError or a syntax error for bad ones.
 * With `categorize`, each result also has its labels by category; with `required` (pipeline/hints.ts), parsers
 * extract only those labels.
 */
export function compilePipeline(
  stages: Stage[],
  options: { categorize?: boolean; required?: ReadonlySet<string> } = {},
): Pipeline {
  const compiled = stages.map(compileStage);
  // Extracting only the required labels leaves entries few distinct label sets: each is made once.
  const builder = new LabelsBuilder(parseFilters(stages), options.required, options.required !== undefined);
  const categorize = options.categorize === true;
  return {
    process(tsNs, line, streamLabels, metadata) {
      builder.reset(streamLabels, metadata);
      let current: string | null = line;
      for (let i = 0; i < compiled.length; i++) {
        current = compiled[i]!(tsNs, current, builder);
        if (current === null) return null;
      }
      return categorize
        ? { line: current, labels: builder.labels(), categories: builder.categories() }
        : { line: current, labels: builder.labels() };
    },
  };
}

/** The filters Loki's parser hints apply while parsing: per label, the first label filter stage on it alone. */
function parseFilters(stages: Stage[]): Map<string, LabelPredicate> | undefined {
  const filters = new Map<string, LabelPredicate>();
  for (const stage of stages) {
    if (stage.kind !== "label_filter") continue;
    const filter = stage.filter;
    if (!("name" in filter)) continue;
    if (!filters.has(filter.name)) filters.set(filter.name, compileLabelFilter(filter));
  }
  return filters.size === 0 ? undefined : filters;
}

const CONVERSIONS: Record<Unwrap["conversion"], (text: string) => Parsed> = {
  none: goParseFloat,
  duration: goParseDurationSeconds,
  duration_seconds: goParseDurationSeconds,
  bytes: goParseBytes,
};

function andAll(filters: LabelFilterExpr[]): LabelPredicate | undefined {
  if (filters.length === 0) return undefined;
  const predicates = filters.map(compileLabelFilter);
  return (labels) => {
    let ok = true;
    for (const predicate of predicates) ok = predicate(labels) && ok;
    return ok;
  };
}

/**
 * The unwrap step of a range aggregation. An entry without the label (or with it empty) yields no sample; a value
 * that does not convert yields 0 marked SampleExtractionErr. Like Loki, the sample's labels lose the unwrapped
 * label, except when an error is set: Loki then keeps every label so that the error stays visible.
 */
export function compileUnwrap(unwrap: Unwrap): (result: PipelineResult) => UnwrapSample | null {
  const convert = CONVERSIONS[unwrap.conversion];
  const postFilter = andAll(unwrap.postFilters);
  const builder = new LabelsBuilder();
  const noMetadata: Labels = Object.create(null);
  // The sample labels of each label set the pipeline gave: it hands out one record per set when it interns them.
  const unwrapped = new Map<Labels, Labels>();
  const withoutUnwrapped = (labels: Labels): Labels => {
    let out = unwrapped.get(labels);
    if (out === undefined) {
      if (unwrapped.size >= 4096) unwrapped.clear();
      unwrapped.set(labels, (out = without(labels, unwrap.label, ERROR_DETAILS_LABEL)));
    }
    return out;
  };
  return (result) => {
    const text = result.labels[unwrap.label];
    if (text === undefined || text === "") return null;
    const err = result.labels[ERROR_LABEL];
    const details = result.labels[ERROR_DETAILS_LABEL];
    builder.reset(
      err === undefined && details === undefined
        ? result.labels
        : without(result.labels, ERROR_LABEL, ERROR_DETAILS_LABEL),
      noMetadata,
    );
    builder.err = err ?? "";
    builder.errDetails = details ?? "";
    const parsed = convert(text);
    let value = 0;
    if (parsed.error !== undefined) builder.setError("SampleExtractionErr", parsed.error);
    else value = parsed.value;
    if (postFilter !== undefined && !postFilter(builder)) return null;
    const labels = builder.labels();
    return { value, labels: builder.err === "" ? withoutUnwrapped(labels) : labels };
  };
}

function without(labels: Labels, first: string, second: string): Labels {
  const out: Labels = Object.create(null);
  for (const name in labels) if (name !== first && name !== second) out[name] = labels[name]!;
  return out;
}
