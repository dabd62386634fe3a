import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Store } from "../storage/store.js";
import { onBothStores, startLokiHttp, type LokiHttp } from "./helpers/loki-http.js";
import { T0_NS } from "./helpers/store-contract.js";

// Issue 16 items 2-4 against the answers a real Grafana Loki (main of 2026-08, single binary, default query
// frontend) gave to the same two pushes and queries, its times made relative to an hour-aligned t0 as here:
// step alignment of metric query_range and index/volume_range, arrival order of entries sharing a timestamp
// (and what first_over_time, last_over_time and rate_counter make of it), and exact duplicates, pushed within one
// request and by the whole request sent twice, returned and counted once.

const SEC = 1_000_000_000n;
const T0_S = Number(T0_NS / SEC);
const at = (seconds: number) => String(T0_NS + BigInt(seconds) * SEC);

/** Lines sent in this order; Loki keeps it for equal timestamps. "zeta" at 70 s is an exact duplicate. */
const ORDER_PUSH = {
  streams: [
    {
      stream: { app: "ord" },
      values: [
        [at(10), "first"],
        [at(70), "zeta"],
        [at(70), "alpha"],
        [at(70), "zeta"],
        [at(130), "c 5"],
        [at(130), "c 3"],
        [at(250), "last"],
      ],
    },
    {
      // A counter logged twice in one timestamp, whose lines sort otherwise than they came.
      stream: { app: "ctr" },
      values: [
        [at(70), "n=3"],
        [at(70), "n=20"],
        [at(75), "n=21"],
        [at(80), "n=25"],
        [at(80), "n=100"],
      ],
    },
  ],
};

/** Loki's answers, times relative to t0 (seconds; log entries in ns). */
const LOKI = {
  forward: [
    [10, "first"],
    [70, "zeta"],
    [70, "alpha"],
    [130, "c 5"],
    [130, "c 3"],
    [250, "last"],
  ],
  forwardLimit3: [
    [10, "first"],
    [70, "zeta"],
    [70, "alpha"],
  ],
  backward: [
    [250, "last"],
    [130, "c 3"],
    [130, "c 5"],
    [70, "alpha"],
    [70, "zeta"],
    [10, "first"],
  ],
  // count_over_time({app="ord"}[1m]) from t0+7 s to t0+290 s, step 60: start rounded down, end up.
  countRange: [
    [60, "1"],
    [120, "2"],
    [180, "2"],
    [300, "1"],
  ],
  // ... to t0+240 s: already a multiple.
  countRangeToMultiple: [
    [60, "1"],
    [120, "2"],
    [180, "2"],
  ],
  // At t0+90 s.
  firstOverTime: "3",
  lastOverTime: "100",
  rateCounter: "1.8687500000000001",
  countOverTime5m: "3",
  bytesOverTime5m: "14",
  // index/volume_range from t0+7 s to t0+290 s, step 60: the times of Loki's points (its values are the sizes of
  // the chunks a bucket overlaps, an estimate, so Bifrost's exact bytes are checked apart).
  volumeTimes: [59.999, 119.999, 179.999, 239.999, 290],
};

function relativeEntries(result: unknown): [number, string][] {
  const streams = result as { stream: Record<string, string>; values: [string, string][] }[];
  assert.equal(streams.length, 1);
  return streams[0]!.values.map(([ts, line]) => [Number((BigInt(ts) - T0_NS) / SEC), line]);
}

function relativePoints(result: unknown): [number, string][] {
  const series = result as { values: [number, string][] }[];
  assert.equal(series.length, 1);
  return series[0]!.values.map(([ts, value]) => [Math.round((ts - T0_S) * 1000) / 1000, value]);
}

function compatSuite(name: string, open: () => Promise<Store>): void {
  describe(`Loki order, duplicates and step alignment on ${name}`, () => {
    let store: Store;
    let api: LokiHttp;

    before(async () => {
      store = await open();
      api = await startLokiHttp(store);
      // The same request twice, as a client that retries: Loki keeps one copy.
      for (let i = 0; i < 2; i++) {
        const response = await fetch(`${api.base}/loki/api/v1/push`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-Scope-OrgID": "acme" },
          body: JSON.stringify(ORDER_PUSH),
        });
        assert.equal(response.status, 204, await response.text());
      }
    });
    after(async () => {
      await api.close();
      await store.close();
    });

    const range = (from: number, to: number) => `start=${at(from)}&end=${at(to)}`;
    const instant = `time=${at(90)}`;

    it("returns entries sharing a timestamp in push order, reversed backward, each duplicate once", async () => {
      const logs = (params: string) => api.result('{app="ord"}', `${range(0, 300)}&${params}`);
      const forward = await logs("direction=forward");
      assert.equal(forward.resultType, "streams");
      assert.deepEqual(relativeEntries(forward.result), LOKI.forward);
      assert.deepEqual(relativeEntries((await logs("direction=forward&limit=3")).result), LOKI.forwardLimit3);
      assert.deepEqual(relativeEntries((await logs("direction=backward")).result), LOKI.backward);
    });

    it("aligns metric query_range to the step: start rounded down, end rounded up", async () => {
      const counts = await api.result('count_over_time({app="ord"}[1m])', `${range(7, 290)}&step=60`);
      assert.equal(counts.resultType, "matrix");
      assert.deepEqual(relativePoints(counts.result), LOKI.countRange);
      const toMultiple = await api.result('count_over_time({app="ord"}[1m])', `${range(7, 240)}&step=60`);
      assert.deepEqual(relativePoints(toMultiple.result), LOKI.countRangeToMultiple);
    });

    it("feeds first_over_time, last_over_time and rate_counter the entries in arrival order", async () => {
      const value = async (query: string) => {
        const { result } = await api.result(query, instant);
        const vector = result as { value: [number, string] }[];
        assert.equal(vector.length, 1, query);
        return vector[0]!.value[1];
      };
      assert.equal(await value('first_over_time({app="ctr"} | logfmt | unwrap n [1m])'), LOKI.firstOverTime);
      assert.equal(await value('last_over_time({app="ctr"} | logfmt | unwrap n [1m])'), LOKI.lastOverTime);
      assert.equal(Number(await value('rate_counter({app="ctr"} | logfmt | unwrap n [1m])')), Number(LOKI.rateCounter));
    });

    it("counts each duplicate once in count_over_time and bytes_over_time", async () => {
      const { result } = await api.result('count_over_time({app="ord"}[5m])', instant);
      assert.deepEqual(
        (result as { value: [number, string] }[]).map((s) => s.value[1]),
        [LOKI.countOverTime5m],
      );
      const bytes = await api.result('sum(bytes_over_time({app="ord"}[5m]))', instant);
      assert.deepEqual(
        (bytes.result as { value: [number, string] }[]).map((s) => s.value[1]),
        [LOKI.bytesOverTime5m],
      );
    });

    it("ends index/volume_range buckets on multiples of the step, the last at the end, duplicates counted once", async () => {
      const volume = (await api.data(
        `/loki/api/v1/index/volume_range?query=${encodeURIComponent('{app="ord"}')}&${range(7, 290)}&step=60`,
      )) as { resultType: string; result: { metric: Record<string, string>; values: [number, string][] }[] };
      assert.equal(volume.resultType, "matrix");
      assert.deepEqual(volume.result[0]!.metric, { app: "ord" });
      const points = relativePoints(volume.result);
      // Bifrost counts the bytes of the lines themselves and answers no point for an empty bucket.
      assert.deepEqual(points, [
        [59.999, String("first".length)],
        [119.999, String("zeta".length + "alpha".length)],
        [179.999, String("c 5".length + "c 3".length)],
        [290, String("last".length)],
      ]);
      for (const [ts] of points) assert.ok(LOKI.volumeTimes.includes(ts), `${ts} is one of Loki's times`);
    });
  });
}

onBothStores("loki_compat", compatSuite);
