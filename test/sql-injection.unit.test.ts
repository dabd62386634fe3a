import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Dialect, lineFilterConditions, matcherConditions, Params, selectorsCondition } from "../storage/sql.js";
import { prng } from "./helpers/batches.js";
import { hostile } from "./helpers/injection.js";

// Hostile label values, label names and line filters must reach the engine as bound values only: the SQL text
// never contains them. test/helpers/injection.ts sends the same kind of values through each real store.

const probeDialect: Dialect = {
  placeholder: (index) => `<${index}>`,
  label: (column, name) => `L(${column}, ${name})`,
  regexMatch: (subject, pattern) => `RE(${subject}, ${pattern})`,
  contains: (subject, needle) => `IN(${subject}, ${needle})`,
};

describe("SQL building keeps every value out of the SQL text", () => {
  it("binds 2000 random hostile matchers and line filters as parameters", () => {
    const random = prng(7);
    for (let round = 0; round < 2000; round++) {
      const [name, value, needle] = [hostile(random), hostile(random), hostile(random)];
      const params = new Params(probeDialect);
      const ops = ["=", "!=", "=~", "!~"] as const;
      const filterOps = ["|=", "!=", "|~", "!~"] as const;
      const text = [
        ...matcherConditions(probeDialect, params, "labels", [{ name, op: ops[round % 4]!, value }]),
        selectorsCondition(probeDialect, params, "labels", [[{ name: value, op: "=", value: name }]]),
        ...lineFilterConditions(probeDialect, params, "line", [{ op: filterOps[round % 4]!, values: [needle, value] }]),
      ].join(" AND ");
      assert.match(text, /^[A-Za-z0-9_ ()<>=!,]+$/, `SQL text carries more than placeholders: ${text}`);
      assert.ok(params.values.includes(name) && params.values.includes(needle));
    }
  });
});
