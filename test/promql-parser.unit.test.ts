import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Expr } from "../query/promql/syntax/ast.js";
import { parsePromql, PromqlParseError } from "../query/promql/syntax/parser.js";
import { parsePromDuration } from "../query/promql/syntax/selector-parser.js";

/** The tree as a compact text: parenthesised operators, so that precedence and associativity show. */
function show(expr: Expr): string {
  switch (expr.kind) {
    case "number":
      return String(expr.value);
    case "string":
      return JSON.stringify(expr.value);
    case "selector": {
      const matchers = expr.matchers.map((m) => `${m.name}${m.op}${JSON.stringify(m.value)}`).join(",");
      const at = expr.at === undefined ? "" : expr.at.kind === "time" ? ` @${expr.at.ms}` : ` @${expr.at.kind}()`;
      return `{${matchers}}${expr.offsetMs !== 0 ? ` offset ${expr.offsetMs}` : ""}${at}`;
    }
    case "matrix":
      return `${show(expr.selector)}[${expr.rangeMs}]`;
    case "subquery":
      return `${show(expr.expr)}[${expr.rangeMs}:${expr.stepMs ?? ""}]${expr.offsetMs !== 0 ? ` offset ${expr.offsetMs}` : ""}${expr.at?.kind === "end" ? " @end()" : ""}`;
    case "call":
      return `${expr.func}(${expr.args.map(show).join(", ")})`;
    case "aggregation":
      return `${expr.op}${expr.without ? " without" : " by"}(${expr.grouping.join(",")})(${expr.param ? `${show(expr.param)}, ` : ""}${show(expr.expr)})`;
    case "binary": {
      const m = expr.matching;
      const matching =
        m === undefined
          ? ""
          : ` ${m.card}${m.on ? " on" : " ignoring"}(${m.labels.join(",")})${m.include.length ? ` include(${m.include.join(",")})` : ""}`;
      return `(${show(expr.lhs)} ${expr.op}${expr.bool ? " bool" : ""}${matching} ${show(expr.rhs)})`;
    }
    case "unary":
      return `(${expr.op}${show(expr.expr)})`;
    case "paren":
      return `[${show(expr.expr)}]`;
  }
}

function parseError(query: string): string {
  try {
    parsePromql(query);
  } catch (err) {
    assert.ok(err instanceof PromqlParseError, `${query}: ${(err as Error).message}`);
    return err.message;
  }
  assert.fail(`${query} parsed`);
}

describe("PromQL parser", () => {
  it("parses selectors with names, matchers, ranges, offsets and @", () => {
    assert.equal(show(parsePromql("up")), '{__name__="up"}');
    assert.equal(
      show(parsePromql('http_requests_total{code=~"5..", job!="x",}')),
      '{__name__="http_requests_total",code=~"5..",job!="x"}',
    );
    assert.equal(show(parsePromql('{__name__=~"job:.*", on="1", by!~"a"}')), '{__name__=~"job:.*",on="1",by!~"a"}');
    assert.equal(
      show(parsePromql("job:rate5m:sum[1h30m] offset -5m")),
      '{__name__="job:rate5m:sum"} offset -300000[5400000]',
    );
    assert.equal(show(parsePromql("x @ 1764000000.5 offset 1m")), '{__name__="x"} offset 60000 @1764000000500');
    assert.equal(show(parsePromql("x offset 1m @ end()")), '{__name__="x"} offset 60000 @end()');
    assert.equal(show(parsePromql("rate(x[5m] @ start())")), 'rate({__name__="x"} @start()[300000])');
  });

  it("parses subqueries with their own offset and @", () => {
    assert.equal(show(parsePromql("x[5m:1m]")), '{__name__="x"}[300000:60000]');
    assert.equal(
      show(parsePromql("max_over_time(rate(x[5m])[1h:] offset 10m)")),
      'max_over_time(rate({__name__="x"}[300000])[3600000:] offset 600000)',
    );
    assert.equal(show(parsePromql("sum(x)[30m:15s] @ end()")), 'sum by()({__name__="x"})[1800000:15000] @end()');
    assert.equal(
      parseError("(1)[5m:]"),
      '1:1: parse error: subquery is only allowed on instant vector, got scalar in "(1)" instead',
    );
    assert.equal(
      parseError("x[5m][1h:]"),
      '1:1: parse error: subquery is only allowed on instant vector, got range vector in "x[5m]" instead',
    );
  });

  it("parses number and string literals as Prometheus does", () => {
    assert.equal(show(parsePromql("0x1F")), "31");
    assert.equal(show(parsePromql("1.5e3")), "1500");
    assert.equal(show(parsePromql(".5")), "0.5");
    assert.equal(show(parsePromql("-Inf")), "-Infinity");
    assert.equal(show(parsePromql("NaN")), "NaN");
    assert.equal(show(parsePromql('"a\\tb\\u00e9\\x41"')), JSON.stringify("a\tbéA"));
    assert.equal(show(parsePromql("'it\\'s'")), JSON.stringify("it's"));
    assert.equal(show(parsePromql("`raw\\n`")), JSON.stringify("raw\\n"));
  });

  it("applies Prometheus' operator precedence and associativity", () => {
    assert.equal(show(parsePromql("1 + 2 * 3")), "(1 + (2 * 3))");
    assert.equal(show(parsePromql("1 - 2 - 3")), "((1 - 2) - 3)");
    assert.equal(show(parsePromql("2 ^ 3 ^ 2")), "(2 ^ (3 ^ 2))");
    assert.equal(show(parsePromql("-2 ^ 2")), "(-(2 ^ 2))");
    assert.equal(show(parsePromql("-a * b")), '((-{__name__="a"}) * one-to-one ignoring() {__name__="b"})');
    assert.equal(
      show(parsePromql("a or b and c unless d")),
      '({__name__="a"} or many-to-many ignoring() (({__name__="b"} and many-to-many ignoring() {__name__="c"}) unless many-to-many ignoring() {__name__="d"}))',
    );
    assert.equal(show(parsePromql("a > bool 1 + 2")), '({__name__="a"} > bool (1 + 2))');
    assert.equal(
      show(parsePromql("a % 2 atan2 b")),
      '(({__name__="a"} % 2) atan2 one-to-one ignoring() {__name__="b"})',
    );
    assert.equal(show(parsePromql("(1 + 2) * 3")), "([(1 + 2)] * 3)");
  });

  it("parses vector matching and grouping", () => {
    assert.equal(
      show(parsePromql("a / on (job, instance) group_left (version) b")),
      '({__name__="a"} / many-to-one on(job,instance) include(version) {__name__="b"})',
    );
    assert.equal(
      show(parsePromql("a - ignoring(code) group_right b")),
      '({__name__="a"} - one-to-many ignoring(code) {__name__="b"})',
    );
    assert.equal(show(parsePromql("a == bool on() b")), '({__name__="a"} == bool one-to-one on() {__name__="b"})');
  });

  it("parses aggregations with grouping before or after, and parameters", () => {
    assert.equal(show(parsePromql("sum by (job) (rate(x[5m]))")), 'sum by(job)(rate({__name__="x"}[300000]))');
    assert.equal(
      show(parsePromql("sum(rate(x[5m])) without (instance, code)")),
      'sum without(instance,code)(rate({__name__="x"}[300000]))',
    );
    assert.equal(show(parsePromql("topk(3, x)")), 'topk by()(3, {__name__="x"})');
    assert.equal(show(parsePromql('count_values("value", x)')), 'count_values by()("value", {__name__="x"})');
    assert.equal(show(parsePromql("quantile without() (0.9, x)")), 'quantile without()(0.9, {__name__="x"})');
    assert.equal(show(parsePromql("sum")), '{__name__="sum"}');
  });

  it("parses function calls and checks their argument types", () => {
    assert.equal(
      show(parsePromql("histogram_quantile(0.9, rate(h_bucket[5m]))")),
      'histogram_quantile(0.9, rate({__name__="h_bucket"}[300000]))',
    );
    assert.equal(show(parsePromql("round(x)")), 'round({__name__="x"})');
    assert.equal(show(parsePromql("round(x, 0.5)")), 'round({__name__="x"}, 0.5)');
    assert.equal(show(parsePromql("time()")), "time()");
    assert.equal(
      parseError("rate(x)"),
      '1:6: parse error: expected type range vector in call to function "rate", got instant vector',
    );
    assert.equal(parseError("abs(x, 1)"), '1:1: parse error: expected 1 argument(s) in call to "abs", got 2');
    assert.equal(parseError("clamp(x)"), '1:1: parse error: expected 3 argument(s) in call to "clamp", got 1');
    assert.equal(parseError("nope(x)"), '1:1: parse error: unknown function with name "nope"');
  });

  it("refuses what Prometheus refuses, with the position", () => {
    assert.equal(parseError(""), "1:1: parse error: no expression found in input");
    assert.equal(parseError("1 > 2"), "1:3: parse error: comparisons between scalars must use BOOL modifier");
    assert.equal(parseError("x and 1"), '1:1: parse error: set operator "and" not allowed in binary scalar expression');
    assert.equal(parseError("x + bool 1"), "1:3: parse error: bool modifier can only be used on comparison operators");
    assert.equal(parseError("1 + on(a) x"), "1:1: parse error: vector matching only allowed between instant vectors");
    assert.equal(
      parseError("x[5m] + 1"),
      "1:1: parse error: binary expression must contain only scalar and instant vector types",
    );
    assert.equal(parseError('{a=""}'), "1:1: parse error: vector selector must contain at least one non-empty matcher");
    assert.equal(
      parseError('{a=~".*"}'),
      "1:1: parse error: vector selector must contain at least one non-empty matcher",
    );
    assert.equal(parseError('x{__name__="y"}'), '1:1: parse error: metric name must not be set twice: "x" or "y"');
    assert.equal(parseError("(x)[5m]"), "1:4: parse error: ranges only allowed for vector selectors");
    assert.equal(
      parseError("sum(x) offset 5m"),
      "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
    );
    assert.equal(parseError("x[5x]"), '1:3: parse error: bad duration syntax: "5"');
    assert.equal(parseError("x + 5x"), '1:5: parse error: bad number or duration syntax: "5x"');
    assert.equal(parseError("x[1m1h]"), '1:3: parse error: not a valid duration string: "1m1h"');
    assert.equal(parseError("rate(x[5m]"), "1:11: parse error: unclosed left parenthesis");
    assert.equal(parseError("x\n  + $"), "2:5: parse error: unexpected character: '$'");
    assert.equal(parseError('x{a="b'), "1:5: parse error: unterminated quoted string");
    assert.match(parseError('x{a=~"("}'), /^1:3: parse error: invalid regular expression "\(": /);
    assert.equal(
      parseError("topk(x)"),
      "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1",
    );
    assert.equal(
      parseError("sum(x[5m])"),
      "1:5: parse error: expected type instant vector in aggregation expression, got range vector",
    );
    assert.equal(
      parseError("a + on(b) group_left(b) c"),
      '1:3: parse error: label "b" must not occur in ON and GROUP clause at once',
    );
    assert.equal(parseError("a and on(b) group_left c"), '1:1: parse error: no grouping allowed for "and" operation');
  });

  it("reads Prometheus durations only", () => {
    assert.equal(parsePromDuration("1h30m"), 5_400_000);
    assert.equal(parsePromDuration("1y2w3d"), (365 + 14 + 3) * 86_400_000);
    assert.equal(parsePromDuration("250ms"), 250);
    assert.equal(parsePromDuration("30m1h"), undefined);
    assert.equal(parsePromDuration("1.5h"), undefined);
    assert.equal(parsePromDuration("10us"), undefined);
  });
});
