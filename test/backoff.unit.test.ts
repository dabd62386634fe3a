import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay } from "../common/backoff.js";

describe("backoffDelay", () => {
  it("doubles from the base up to the cap, within the jitter's bounds", () => {
    for (let attempt = 1; attempt <= 40; attempt++) {
      const ceiling = Math.min(10_000, 200 * 2 ** (attempt - 1));
      for (let i = 0; i < 200; i++) {
        const equal = backoffDelay(attempt, 200, 10_000);
        assert.ok(equal >= ceiling / 2 && equal <= ceiling, `equal jitter, attempt ${attempt}: ${equal}`);
        const full = backoffDelay(attempt, 200, 10_000, "full");
        assert.ok(full >= 0 && full <= ceiling, `full jitter, attempt ${attempt}: ${full}`);
      }
    }
  });

  it("spreads retries rather than repeating one delay", () => {
    assert.ok(new Set(Array.from({ length: 50 }, () => backoffDelay(5, 100, 60_000))).size > 40);
  });

  it("stays finite for any attempt count", () => {
    assert.ok(backoffDelay(10_000, 500, 30_000) <= 30_000);
  });
});
