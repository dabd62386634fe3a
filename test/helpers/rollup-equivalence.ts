import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type PreviousSample, rollupSeries } from "../../aggregator/rollup.js";
import { SampleKind, type Series } from "../../proto/batch.js";
import { labelsOf } from "../../proto/labels.js";
import {
  RESOLUTION_MS,
  type Resolution,
  type RollupPoints,
  type SamplePoints,
  type Store,
} from "../../storage/store.js";
import { prng } from "./batches.js";

// What a rollup must answer, computed from raw samples: per window, the count, sum, min and max of the
// samples in it, and the counter increase of each sample in it against the sample before it (reset = from 0).
function fromRaw(points: SamplePoints["points"], startMs: number, endMs: number) {
  let [count, sum, min, max, increase] = [0, 0, Infinity, -Infinity, 0];
  points.forEach((p, i) => {
    if (p.timeMs < startMs || p.timeMs >= endMs) return;
    count++;
    sum += p.value;
    min = Math.min(min, p.value);
    max = Math.max(max, p.value);
    const before = points[i - 1];
    if (before) increase += p.value >= before.value ? p.value - before.value : p.value;
  });
  return { count, sum, min, max, increase };
}

function fromRollups(buckets: RollupPoints["buckets"], startMs: number, endMs: number) {
  let [count, sum, min, max, increase] = [0, 0, Infinity, -Infinity, 0];
  for (const b of buckets) {
    if (b.startMs < startMs || b.startMs >= endMs) continue;
    count += b.count;
    sum += b.sum;
    min = Math.min(min, b.min);
    max = Math.max(max, b.max);
    increase += b.increase;
  }
  return { count, sum, min, max, increase };
}

function assertClose(actual: number, expected: number, what: string): void {
  const tolerance = 1e-9 * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} from rollups, ${expected} from raw samples`);
}

/** Random counters with resets, a gauge and a histogram bucket, shipped in random-sized batches. */
async function loadRandomSeries(store: Store, startMs: number, hours: number): Promise<void> {
  const random = prng(20261128);
  const kinds = [SampleKind.Counter, SampleKind.Counter, SampleKind.Gauge, SampleKind.HistogramBucket];
  const all: Series[] = kinds.map((kind, i) => {
    const points: Series["points"] = [];
    let value = random() * 100;
    for (
      let t = startMs + Math.floor(random() * 10_000);
      t < startMs + hours * 3_600_000;
      t += 7_000 + Math.floor(random() * 6_000)
    ) {
      if (kind === SampleKind.Gauge) value = 20 + random() * 10;
      else if (random() < 0.03)
        value = random() * 5; // counter reset: the process restarted
      else value += random() * 50;
      points.push({ timeUnixMs: t, value });
    }
    return {
      name: i === 3 ? "request_duration_seconds_bucket" : `metric_${i}`,
      labels: labelsOf([["series", String(i)], ...(i === 3 ? [["le", "0.5"] as [string, string]] : [])]),
      kind,
      points,
    };
  });
  const previous = new Map<string, Record<Resolution, PreviousSample | undefined>>();
  let sequence = 0;
  for (const s of all) previous.set(s.name, { "1m": undefined, "1h": undefined });
  const cursors = all.map(() => 0);
  while (cursors.some((c, i) => c < all[i]!.points.length)) {
    const id = `rollup-node:${++sequence}`;
    const batchSeries = all
      .map((s, i) => {
        const take = 1 + Math.floor(random() * 40);
        const points = s.points.slice(cursors[i], cursors[i]! + take);
        cursors[i]! += points.length;
        return { ...s, points };
      })
      .filter((s) => s.points.length > 0);
    await store.appendSamples([{ id, tenant: "rollups", series: batchSeries }]);
    const partials = batchSeries.flatMap((s) =>
      (["1m", "1h"] as const).flatMap((resolution) => {
        const state = previous.get(s.name)!;
        const { partials: p, last } = rollupSeries(s, resolution, state[resolution]);
        state[resolution] = last;
        return p;
      }),
    );
    await store.appendRollups([{ id, tenant: "rollups", partials }]);
    if (sequence % 7 === 0) await store.appendRollups([{ id, tenant: "rollups", partials }]); // a replay
  }
}

export function rollupEquivalence(name: string, open: () => Promise<Store>): void {
  describe(`${name}: rollups answer what raw samples answer`, () => {
    let store: Store;
    const startMs = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 6 * 3_600_000;
    const hours = 3;
    before(async () => {
      store = await open();
      await loadRandomSeries(store, startMs, hours);
    });
    after(async () => store.close());

    for (const resolution of ["1m", "1h"] as const) {
      it(`${resolution}: count, sum, min, max, increase and rate over random aligned windows`, async () => {
        const endMs = startMs + hours * 3_600_000;
        const raw = await store.selectSamples({ tenant: "rollups", matchers: [], startMs: startMs - 3_600_000, endMs });
        const rollups = await store.selectRollups({ tenant: "rollups", matchers: [], resolution, startMs, endMs });
        assert.equal(raw.length, 4);
        assert.equal(rollups.length, 4);
        const width = RESOLUTION_MS[resolution];
        const random = prng(resolution === "1m" ? 1 : 2);
        for (let trial = 0; trial < 25; trial++) {
          const buckets = (endMs - startMs) / width;
          const from = Math.floor(random() * buckets);
          const to = Math.min(buckets, from + 1 + Math.floor(random() * (buckets - from)));
          const [w0, w1] = [startMs + from * width, startMs + to * width];
          for (let i = 0; i < raw.length; i++) {
            const expected = fromRaw(raw[i]!.points, w0, w1);
            if (raw[i]!.kind === SampleKind.Gauge) expected.increase = 0;
            const actual = fromRollups(rollups[i]!.buckets, w0, w1);
            const what = `${JSON.stringify({ ...raw[i]!.labels })} [${(w0 - startMs) / width}, ${(w1 - startMs) / width}) ${resolution}`;
            assert.equal(actual.count, expected.count, `${what} count`);
            assertClose(actual.sum, expected.sum, `${what} sum`);
            assert.equal(actual.min, expected.min, `${what} min`);
            assert.equal(actual.max, expected.max, `${what} max`);
            assertClose(actual.increase, expected.increase, `${what} increase`);
            assertClose(actual.increase / ((w1 - w0) / 1000), expected.increase / ((w1 - w0) / 1000), `${what} rate`);
          }
        }
      });
    }
  });
}
