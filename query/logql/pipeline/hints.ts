import { lex } from "../../../common/go/template/lexer.js";
import type { Grouping, LabelFilterExpr, Stage, Unwrap } from "../../../common/logql/syntax/ast.js";
import { DUPLICATE_SUFFIX } from "../../../common/logql/pipeline/labels-builder.js";

// Loki's parser hints (pkg/logql/log/parser_hints.go): when a metric query keeps only some labels of its series
// (a `by` grouping, its own or one an outer sum lends it), `| logfmt` and `| json` need to extract only those and
// the ones a later stage reads (label filters, templates, renames, drop/keep matchers, unwrap). The rest of each
// line is still scanned, so that a malformed line gets the same error, but no label is made for it.

function filterNames(filter: LabelFilterExpr, into: Set<string>): void {
  if ("name" in filter) into.add(filter.name);
  else {
    filterNames(filter.left, into);
    filterNames(filter.right, into);
  }
}

/** The labels a template reads, or undefined when it may read any (`.` or `$` passes the whole map). */
function templateNames(source: string, into: Set<string>): boolean {
  let tokens;
  try {
    tokens = lex("hint", source);
  } catch {
    // The pipeline's compilation reports the error; hints only need to not guess.
    return false;
  }
  for (const token of tokens) {
    if (token.kind === "dot" || token.kind === "variable") return false;
    if (token.kind === "field") into.add(token.text.slice(1));
  }
  return true;
}

function stageNames(stage: Stage, into: Set<string>): boolean {
  switch (stage.kind) {
    case "label_filter":
      filterNames(stage.filter, into);
      return true;
    case "line_format":
      return templateNames(stage.template, into);
    case "label_format":
      for (const item of stage.items) {
        if (item.kind === "rename") into.add(item.from);
        else if (!templateNames(item.template, into)) return false;
      }
      return true;
    case "drop":
    case "keep":
      for (const item of stage.items) if (item.kind === "matcher") into.add(item.matcher.name);
      return true;
    default:
      return true;
  }
}

/**
 * The labels the parsers of `stages` must extract when the series are reduced to `grouping` (and the unwrapped
 * label), each also with the `_extracted` suffix a name clash gives it; undefined when every label is needed
 * (no grouping, a `without` grouping, or a template that reads the whole label map).
 */
export function requiredLabels(
  stages: readonly Stage[],
  grouping: Grouping | undefined,
  unwrap?: Unwrap,
): ReadonlySet<string> | undefined {
  if (grouping === undefined || grouping.without) return undefined;
  const names = new Set(grouping.labels);
  if (unwrap !== undefined) {
    names.add(unwrap.label);
    for (const filter of unwrap.postFilters) filterNames(filter, names);
  }
  for (const stage of stages) if (!stageNames(stage, names)) return undefined;
  for (const name of [...names]) names.add(name + DUPLICATE_SUFFIX);
  return names;
}
