import { compileRe2, compileRe2Test } from "./regex.js";
import type { LabelMatcher, MatchOp } from "../storage/store.js";

// Label matchers (`=`, `!=`, `=~`, `!~`) as Prometheus and Loki define them: regular expressions are anchored, and a
// missing label matches as the empty value.

/** A string matcher; regular expressions are anchored. */
export function compileMatcher(op: MatchOp, value: string): (candidate: string) => boolean {
  switch (op) {
    case "=":
      return (candidate) => candidate === value;
    case "!=":
      return (candidate) => candidate !== value;
    case "=~":
      return compileRe2Test(value, true);
    case "!~": {
      const test = compileRe2Test(value, true);
      return (candidate) => !test(candidate);
    }
  }
}

/**
 * Whether a label matcher accepts the empty value, that is a series without the label: Loki and Prometheus
 * refuse selectors made only of such matchers. `compile` compiles the (anchored) regular expressions.
 */
export function matchesEmpty(
  matcher: LabelMatcher,
  compile: (pattern: string) => RegExp = (pattern) => compileRe2(pattern, true),
): boolean {
  switch (matcher.op) {
    case "=":
      return matcher.value === "";
    case "!=":
      return matcher.value !== "";
    case "=~":
      return compile(matcher.value).test("");
    case "!~":
      return !compile(matcher.value).test("");
  }
}
