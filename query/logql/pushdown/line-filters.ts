import type { LineFilter } from "../../../storage/store.js";
import { patternLiterals } from "../../../common/logql/pipeline/pattern.js";
import type { LineFilterStage, Stage } from "../../../common/logql/syntax/ast.js";

/**
 * Splits the pipeline into the line filters before any stage that rewrites the line, which the Store runs, and the
 * stages left to run here. Line filters commute, so the ones the Store cannot run (patterns, ip()) move to the front
 * of the rest; a pattern filter also hands the Store a substring every matching line contains, so that the Store
 * narrows what it reads without changing the answer.
 */
export function pushableLineFilters(pipeline: Stage[]): { pushed: LineFilter[]; rest: Stage[] } {
  let index = 0;
  while (index < pipeline.length && pipeline[index]!.kind === "line_filter") index++;
  const pushed: LineFilter[] = [];
  const kept: Stage[] = [];
  for (const stage of pipeline.slice(0, index) as LineFilterStage[]) {
    if (stage.ip === undefined && (stage.op === "|=" || stage.op === "!=" || stage.op === "|~" || stage.op === "!~")) {
      pushed.push({ op: stage.op, values: stage.values });
      continue;
    }
    kept.push(stage);
    const necessary = stage.op === "|>" ? stage.values.map((value) => longest(patternLiterals(value))) : [];
    if (necessary.length > 0 && necessary.every((literal) => literal !== ""))
      pushed.push({ op: "|=", values: necessary });
  }
  return { pushed, rest: [...kept, ...pipeline.slice(index)] };
}

function longest(literals: string[]): string {
  return literals.reduce((best, literal) => (literal.length > best.length ? literal : best), "");
}
