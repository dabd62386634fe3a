import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { instantQuery, rangeQuery } from "../query/promql/evaluation/evaluator.js";
import { PromqlEvalError, TOO_MANY_SAMPLES } from "../query/promql/evaluation/values.js";
import { parsePromql } from "../query/promql/syntax/parser.js";
import { PromqlParseError } from "../query/promql/syntax/lexer.js";
import type { Store } from "../storage/store.js";

// Queries made only of vector() and subqueries read nothing from a store.
const store = {} as Store;
const T = Date.UTC(2026, 0, 1);

describe("PromQL bounds", () => {
  it("refuses subqueries over max_samples before evaluating anything", async () => {
    const started = performance.now();
    await assert.rejects(
      instantQuery({ store, tenant: "t", maxSamples: 1_000_000 }, parsePromql("max_over_time(vector(1)[30d:1ms])"), T),
      (err: unknown) => err instanceof PromqlEvalError && err.message === TOO_MANY_SAMPLES,
    );
    // 2.6 billion steps: only a refusal before evaluation answers within the test's lifetime.
    assert.ok(performance.now() - started < 60_000);
  });

  it("counts nested subqueries' steps and a range query's steps", async () => {
    const options = { store, tenant: "t", maxSamples: 50_000 };
    await assert.rejects(
      instantQuery(options, parsePromql("max_over_time(max_over_time(vector(1)[1d:1m])[1d:1s])"), T),
      /too many samples/,
    );
    // 1,441 outer steps of a 1h:1m subquery share their steps: 1,501 evaluations, not 1,441 x 60.
    const series = await rangeQuery(
      options,
      parsePromql("count_over_time(vector(1)[1h:1m])"),
      T,
      T + 86_400_000,
      60_000,
    );
    assert.equal(series[0]!.points.length, 1_441);
    assert.ok(series[0]!.points.every((point) => point.value === 60));
    await assert.rejects(
      rangeQuery(options, parsePromql("count_over_time(vector(1)[1h:1s])"), T, T + 86_400_000, 60_000),
      /too many samples/,
    );
  });

  it("evaluates within max_samples exactly", async () => {
    const value = await instantQuery(
      { store, tenant: "t", maxSamples: 100_000 },
      parsePromql("count_over_time(vector(1)[1d:1s])"),
      T,
    );
    assert.equal(value.type, "vector");
    assert.equal(value.type === "vector" ? value.samples[0]!.value : NaN, 86_400);
  });

  it("stops at the next turn once aborted, with the abort's reason", async () => {
    const abort = new AbortController();
    const reason = new Error("query timed out");
    setTimeout(() => abort.abort(reason), 50);
    const chain = Array(400).fill("vector(1)").join(" + ");
    await assert.rejects(
      rangeQuery({ store, tenant: "t", signal: abort.signal }, parsePromql(chain), T, T + 86_400_000, 8_000),
      (err: unknown) => err === reason,
    );
  });

  it("refuses deep nesting and tall trees with a parse error, and parses what is within the limits", () => {
    const refused: [string, RegExp][] = [
      ["(".repeat(10_000) + "1" + ")".repeat(10_000), /nested deeper than 1000 levels/],
      ["sum(".repeat(10_000) + "up" + ")".repeat(10_000), /nested deeper than 1000 levels/],
      ["-".repeat(10_000) + "1", /nested deeper than 1000 levels/],
      [Array(10_000).fill("2").join(" ^ "), /nested deeper than 1000 levels/],
      [Array(5_000).fill("up").join(" + "), /expression tree deeper than 500 levels/],
      [`(${Array(300).fill("up").join(" + ")}) + ${Array(300).fill("up").join(" + ")}`, /deeper than 500 levels/],
      [`abs(${Array(300).fill("up").join(" + ")}) + ${Array(300).fill("up").join(" + ")}`, /deeper than 500 levels/],
    ];
    for (const [query, reason] of refused) {
      assert.throws(
        () => parsePromql(query),
        (err: unknown) => err instanceof PromqlParseError && reason.test(err.message),
      );
    }
    assert.doesNotThrow(() => parsePromql("sum(".repeat(400) + "up" + ")".repeat(400)));
    assert.doesNotThrow(() => parsePromql(Array(400).fill("up").join(" + ")));
  });
});
