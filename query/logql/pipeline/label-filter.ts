import type { CompareOp, LabelFilterExpr } from "../../../common/logql/syntax/ast.js";
import { compare } from "../../../common/vector/arithmetic.js";
import { compileMatcher } from "../../../common/matchers.js";
import { goParseBytes, goParseDurationSeconds, goParseFloat, type Parsed } from "../../../common/go/parse.js";
import { compileIpMatcher } from "../../../common/logql/pipeline/ip.js";
import { ERROR_LABEL, type LabelsBuilder } from "../../../common/logql/pipeline/labels-builder.js";
import { StageError } from "../../../common/logql/pipeline/parsers.js";

export type LabelPredicate = (labels: LabelsBuilder) => boolean;

const LABEL_FILTER_ERROR = "LabelFilterErr";

/**
 * A comparison that converts the label first. A missing label fails the filter; a value that does not convert
 * keeps the entry and marks it with LabelFilterErr, unless an earlier error is already there.
 */
function conversionFilter(
  name: string,
  op: CompareOp,
  target: number,
  convert: (text: string) => Parsed,
): LabelPredicate {
  return (labels) => {
    const text = labels.get(name);
    if (text === undefined) return false;
    const parsed = convert(text);
    if (parsed.error !== undefined) {
      if (labels.err === "") labels.setError(LABEL_FILTER_ERROR, parsed.error);
      return true;
    }
    return compare(op, parsed.value, target);
  };
}

export function compileLabelFilter(expr: LabelFilterExpr): LabelPredicate {
  switch (expr.kind) {
    case "and": {
      const left = compileLabelFilter(expr.left);
      const right = compileLabelFilter(expr.right);
      // Both sides run even when the left fails, as in Loki: the right side may still set an error label.
      return (labels) => {
        const l = left(labels);
        const r = right(labels);
        return l && r;
      };
    }
    case "or": {
      const left = compileLabelFilter(expr.left);
      const right = compileLabelFilter(expr.right);
      return (labels) => left(labels) || right(labels);
    }
    case "string": {
      const matches = compileMatcher(expr.op, expr.value);
      const name = expr.name;
      if (name === ERROR_LABEL) return (labels) => matches(labels.err);
      return (labels) => matches(labels.get(name) ?? "");
    }
    case "number":
      return conversionFilter(expr.name, expr.op, expr.value, goParseFloat);
    case "duration":
      return conversionFilter(expr.name, expr.op, expr.seconds, goParseDurationSeconds);
    case "bytes":
      return conversionFilter(expr.name, expr.op, Math.trunc(expr.bytes), goParseBytes);
    case "ip": {
      const matcher = compileIpMatcher(expr.pattern);
      if (matcher === undefined) throw new StageError(`ip: invalid pattern: ${JSON.stringify(expr.pattern)}`);
      const name = expr.name;
      const equal = expr.op === "=";
      return (labels) => {
        if (labels.err !== "") return true;
        const value = labels.get(name);
        if (value === undefined) return false;
        return matcher(value) === equal;
      };
    }
  }
}
