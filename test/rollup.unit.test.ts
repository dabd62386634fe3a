import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type PreviousSample, rollupBatch, rollupSeries } from "../aggregator/rollup.js";
import { SampleKind, type Series } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";

function series(kind: SampleKind, points: [number, number][]): Series {
  return {
    name: "m",
    labels: labelsOf([]),
    kind,
    points: points.map(([timeUnixMs, value]) => ({ timeUnixMs, value })),
  };
}

describe("rollupSeries", () => {
  it("aggregates per bucket and counts a counter reset from zero", () => {
    const { partials, last } = rollupSeries(
      series(SampleKind.Counter, [
        [0, 5],
        [30_000, 8],
        [60_000, 2],
        [90_000, 6],
      ]),
      "1m",
    );
    assert.deepEqual(
      partials.map((p) => [p.bucketStartMs, p.min, p.max, p.sum, p.count, p.last, p.lastTimeMs, p.increase]),
      [
        [0, 5, 8, 13, 2, 8, 30_000, 3],
        [60_000, 2, 6, 8, 2, 6, 90_000, 6],
      ],
    );
    assert.deepEqual(last, { timeMs: 90_000, value: 6 });
  });

  it("measures the first increase from the previous batch's last sample", () => {
    const previous: PreviousSample = { timeMs: 50_000, value: 10 };
    const { partials } = rollupSeries(
      series(SampleKind.Counter, [
        [61_000, 12],
        [62_000, 1],
      ]),
      "1m",
      previous,
    );
    assert.equal(partials[0]!.increase, 2 + 1);
  });

  it("keeps late samples in the aggregates but not in the increase, and drops NaN", () => {
    const { partials, last } = rollupSeries(
      series(SampleKind.Counter, [
        [10_000, 3],
        [20_000, NaN],
        [65_000, 9],
      ]),
      "1m",
      { timeMs: 30_000, value: 4 },
    );
    assert.deepEqual(
      partials.map((p) => [p.bucketStartMs, p.count, p.sum, p.increase]),
      [
        [0, 1, 3, 0],
        [60_000, 1, 9, 5],
      ],
    );
    assert.deepEqual(last, { timeMs: 65_000, value: 9 });
  });

  it("gives gauges no increase", () => {
    assert.equal(
      rollupSeries(
        series(SampleKind.Gauge, [
          [0, 5],
          [1000, 9],
        ]),
        "1h",
      ).partials[0]!.increase,
      0,
    );
  });

  it("rolls up a batch from its own content: each series' previous sample starts its counter increase", () => {
    const counter = {
      ...series(SampleKind.Counter, [
        [61_000, 12],
        [62_000, 1],
      ]),
      previous: { timeUnixMs: 50_000, value: 10 },
    };
    const partials = rollupBatch([counter, series(SampleKind.Gauge, [[61_000, 3]])]);
    assert.deepEqual(
      partials.map((p) => [p.kind, p.resolution, p.bucketStartMs, p.increase]),
      [
        [SampleKind.Counter, "1m", 60_000, 3],
        [SampleKind.Counter, "1h", 0, 3],
        [SampleKind.Gauge, "1m", 60_000, 0],
        [SampleKind.Gauge, "1h", 0, 0],
      ],
    );
  });
});
