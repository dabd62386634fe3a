import type { DropKeepItem } from "../../../common/logql/syntax/ast.js";
import { compileMatcher } from "../../../common/matchers.js";
import { ERROR_DETAILS_LABEL, ERROR_LABEL, type LabelsBuilder } from "../../../common/logql/pipeline/labels-builder.js";
import type { StageFn } from "../../../common/logql/pipeline/parsers.js";

type CompiledItem = { name: string; matches: ((value: string) => boolean) | undefined };

function compileItems(items: DropKeepItem[]): CompiledItem[] {
  return items.map((item) =>
    item.kind === "name"
      ? { name: item.name, matches: undefined }
      : { name: item.matcher.name, matches: compileMatcher(item.matcher.op, item.matcher.value) },
  );
}

/** `| drop a, b="x"`: `__error__` and `__error_details__` are cleared rather than deleted. */
export function dropStage(items: DropKeepItem[]): StageFn {
  const compiled = compileItems(items);
  const drop = (labels: LabelsBuilder, { name, matches }: CompiledItem): void => {
    if (name === ERROR_LABEL) {
      if (matches === undefined || matches(labels.err)) labels.err = "";
      return;
    }
    if (name === ERROR_DETAILS_LABEL) {
      if (matches === undefined || matches(labels.errDetails)) labels.errDetails = "";
      return;
    }
    const value = labels.get(name);
    if (matches === undefined ? value !== undefined : matches(value ?? "")) labels.delete(name);
  };
  return (_ts, line, labels) => {
    for (const item of compiled) drop(labels, item);
    return line;
  };
}

/** `| keep a, b="x"`: every other label goes, except the error labels, which keep never removes. */
export function keepStage(items: DropKeepItem[]): StageFn {
  const compiled = compileItems(items);
  const doomed: string[] = [];
  return (_ts, line, labels) => {
    if (compiled.length === 0) return line;
    doomed.length = 0;
    labels.forEach((name, value) => {
      const kept = compiled.some((item) => item.name === name && (item.matches === undefined || item.matches(value)));
      if (!kept) doomed.push(name);
    });
    for (const name of doomed) labels.delete(name);
    return line;
  };
}
