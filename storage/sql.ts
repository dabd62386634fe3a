import type { LabelMatcher, LineFilter } from "./store.js";

// The one place where user input meets SQL text. Values never enter the text: each becomes a numbered
// placeholder bound by the engine (ClickHouse `{p0:String}` query parameters, DuckDB `$1` prepared-statement
// parameters), and the dialect supplies only function names. test/sql-injection.unit.test.ts fuzzes this file.

export interface Dialect {
  /** The placeholder text for parameter number `index` of SQL type `type` (a ClickHouse type name). */
  placeholder(index: number, type: string): string;
  /** A label's value in the labels map column, '' when absent (Prometheus semantics). */
  label(column: string, name: string): string;
  /** RE2 full match; the pattern is anchored by the caller. */
  regexMatch(subject: string, pattern: string): string;
  /** Substring test. */
  contains(subject: string, needle: string): string;
}

/** Collects bound values while building one statement. */
export class Params {
  readonly values: unknown[] = [];
  readonly types: string[] = [];

  constructor(private readonly dialect: Dialect) {}

  /** Binds `value` and returns its placeholder. */
  bind(value: unknown, type: string): string {
    this.values.push(value);
    this.types.push(type);
    return this.dialect.placeholder(this.values.length - 1, type);
  }

  /** ClickHouse's named parameters: {p0: value, ...}. */
  named(): Record<string, unknown> {
    return Object.fromEntries(this.values.map((value, i) => [`p${i}`, value]));
  }
}

/** Prometheus and Loki anchor label regexes at both ends. */
export function anchored(pattern: string): string {
  return `^(?:${pattern})$`;
}

/** The WHERE conditions for a selector over `column` (a map of label name to value). */
export function matcherConditions(
  dialect: Dialect,
  params: Params,
  column: string,
  matchers: LabelMatcher[],
): string[] {
  return matchers.map((m) => {
    const value = dialect.label(column, params.bind(m.name, "String"));
    switch (m.op) {
      case "=":
        return `${value} = ${params.bind(m.value, "String")}`;
      case "!=":
        return `${value} != ${params.bind(m.value, "String")}`;
      case "=~":
        return dialect.regexMatch(value, params.bind(anchored(m.value), "String"));
      case "!~":
        return `NOT ${dialect.regexMatch(value, params.bind(anchored(m.value), "String"))}`;
    }
  });
}

/** Any of several selectors (Prometheus `match[]`); no selectors means everything. */
export function selectorsCondition(
  dialect: Dialect,
  params: Params,
  column: string,
  selectors: LabelMatcher[][],
): string {
  if (selectors.length === 0) return "1 = 1";
  return selectors
    .map((matchers) => {
      const conditions = matcherConditions(dialect, params, column, matchers);
      return conditions.length === 0 ? "1 = 1" : `(${conditions.join(" AND ")})`;
    })
    .join(" OR ");
}

/** The WHERE conditions for Loki line filters over `column`. */
export function lineFilterConditions(
  dialect: Dialect,
  params: Params,
  column: string,
  filters: LineFilter[],
): string[] {
  return filters.map((filter) => {
    const tests = filter.values.map((value) =>
      filter.op === "|=" || filter.op === "!="
        ? dialect.contains(column, params.bind(value, "String"))
        : dialect.regexMatch(column, params.bind(value, "String")),
    );
    const any = tests.length === 1 ? tests[0]! : `(${tests.join(" OR ")})`;
    return filter.op === "|=" || filter.op === "|~" ? any : `NOT ${any}`;
  });
}
