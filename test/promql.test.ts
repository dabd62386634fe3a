import { Authenticator } from "../common/auth.js";
import { configSchema } from "../config.js";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { rollupBatch } from "../aggregator/rollup.js";
import { createLogger } from "../common/log.js";
import { SampleKind, type Series } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { prometheusRoutes } from "../query/promql/api.js";
import { parseDurationParam, parseTimeParam } from "../query/promql/params.js";
import { formatFloatF } from "../common/go/float-format.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { Store } from "../storage/store.js";
import { INSTANT_TIMES_MS, loadDataSet, QUERIES, T0_MS } from "./helpers/promql-data.js";
import { CLICKHOUSE_URL, uniqueName } from "./helpers/services.js";

// The PromQL engine and the Prometheus API on both stores. A small data set whose answers are worked out by hand
// (in the comments), then the fixed data set of the Prometheus comparison, which both stores must answer alike.

const at = (i: number) => T0_MS + 1_000 + i * 15_000;
const points = (values: number[]) => values.map((value, i) => ({ timeUnixMs: at(i), value }));

// Samples at 1 s, 16 s, 31 s, 46 s and 61 s past T0.
const HAND: Series[] = [
  { name: "c_total", labels: labelsOf([["a", "x"]]), kind: SampleKind.Counter, points: points([0, 10, 20, 5, 15]) },
  { name: "g", labels: labelsOf([["a", "x"]]), kind: SampleKind.Gauge, points: points([1, 3, 2, 6, 4]) },
  ...[
    ["1", 10],
    ["2", 30],
    ["+Inf", 40],
  ].map(([le, count]) => ({
    name: "h_bucket",
    labels: labelsOf([["le", le as string]]),
    kind: SampleKind.HistogramBucket,
    points: [{ timeUnixMs: at(4), value: count as number }],
  })),
];

/** Seconds since T0 as the API's float seconds. */
const sec = (s: number) => String(T0_MS / 1000 + s);

type Answer = { status: string; errorType?: string; error?: string; data?: { resultType: string; result: unknown } };

/** The data sets are from November 2025: a shorter retention would have ClickHouse's TTL drop them on insert. */
const RETENTION = { logs_days: 3650, samples_days: 3650, rollups_1m_days: 3650, rollups_1h_days: 3650 };

/** At the reset, inside the gauge's gap and after the data's end (the Prometheus comparison uses all times). */
const CONSISTENCY_TIMES_MS = [INSTANT_TIMES_MS[1]!, INSTANT_TIMES_MS[3]!, INSTANT_TIMES_MS[5]!];

const consistency = new Map<string, Map<string, unknown>>();

function promqlSuite(name: string, open: () => Promise<Store>): void {
  describe(`PromQL on ${name}`, () => {
    let store: Store;
    const app = new Hono();
    const answers = new Map<string, unknown>();
    consistency.set(name, answers);

    before(async () => {
      store = await open();
      await store.appendSamples([{ id: "hand/promql:1", tenant: "hand", series: HAND }]);
      await store.appendRollups([{ id: "hand/promql:1", tenant: "hand", partials: rollupBatch(HAND) }]);
      await loadDataSet(store, "fake");
      app.use(new Authenticator(configSchema().parse({}).auth, "hand").middleware());
      prometheusRoutes(app, { store, log: createLogger("silent"), now: () => at(4) });
    });
    after(() => store.close());

    async function get(
      path: string,
      params: Record<string, string>,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; body: Answer }> {
      const response = await app.request(`${path}?${new URLSearchParams(params)}`, { headers });
      return { status: response.status, body: (await response.json()) as Answer };
    }

    /** The one value of an instant query at 62 s, with its labels. */
    async function value(query: string, time = sec(62)): Promise<{ metric: Record<string, string>; value: number }[]> {
      const { status, body } = await get("/api/v1/query", { query, time });
      assert.equal(status, 200, `${query}: ${JSON.stringify(body)}`);
      const result = body.data!.result as { metric: Record<string, string>; value: [number, string] }[];
      for (const element of result) assert.equal(element.value[0], Number(time));
      return result.map((e) => ({
        metric: e.metric,
        value: e.value[1] === "+Inf" ? Infinity : e.value[1] === "-Inf" ? -Infinity : Number(e.value[1]),
      }));
    }

    function close(actual: number, expected: number, what: string): void {
      assert.ok(
        Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)),
        `${what}: ${actual}, expected ${expected}`,
      );
    }

    it("extrapolates rate, increase and delta as Prometheus does", async () => {
      // Window (2 s, 62 s]: c = 10, 20, 5 (reset), 15 → increase 25 over 45 s of samples; 14 s to the window's
      // start (under 1.1 × 15 s, and before the zero point at 18 s), 1 s to its end → × 60/45.
      close((await value("increase(c_total[1m])"))[0]!.value, 100 / 3, "increase");
      close((await value("rate(c_total[1m])"))[0]!.value, 100 / 3 / 60, "rate");
      // The last two samples, 5 → 15 in 15 s.
      close((await value("irate(c_total[1m])"))[0]!.value, 10 / 15, "irate");
      // g = 3, 2, 6, 4: 4 - 3 = 1, × 60/45 and no zero-point limit for gauges.
      close((await value("delta(g[1m])"))[0]!.value, 4 / 3, "delta");
      assert.deepEqual(await value("idelta(g[1m])"), [{ metric: { a: "x" }, value: -2 }]);
      // Window (-13 s, 47 s]: c = 0, 10, 20, 5 → increase 25; the counter was 0 at its first sample, so no
      // extrapolation before it, 1 s after the last → × 46/45.
      close((await value("increase(c_total[1m])", sec(47)))[0]!.value, (25 * 46) / 45, "increase from zero");
    });

    it("computes the _over_time functions over (t - range, t]", async () => {
      const over = async (f: string) => (await value(`${f}(g[1m])`))[0]!.value;
      assert.equal(await over("avg_over_time"), 3.75);
      assert.equal(await over("sum_over_time"), 15);
      assert.equal(await over("min_over_time"), 2);
      assert.equal(await over("max_over_time"), 6);
      assert.equal(await over("count_over_time"), 4);
      assert.equal(await over("stdvar_over_time"), 2.1875);
      close(await over("stddev_over_time"), Math.sqrt(2.1875), "stddev");
      assert.equal(await over("present_over_time"), 1);
      assert.equal((await value("quantile_over_time(0.5, g[1m])"))[0]!.value, 3.5);
      // last_over_time keeps the metric name, the others drop it.
      assert.deepEqual(await value("last_over_time(g[1m])"), [{ metric: { __name__: "g", a: "x" }, value: 4 }]);
      assert.deepEqual(await value("count_over_time(g[1m])"), [{ metric: { a: "x" }, value: 4 }]);
      // The window is left-open: at 61 s + 1 min the sample at 1 s... and at 76 s the one at 16 s is out.
      assert.equal((await value("count_over_time(g[1m])", sec(76)))[0]!.value, 3);
    });

    it("selects instant vectors with a 5 minute lookback, offset and @", async () => {
      assert.deepEqual(await value("g"), [{ metric: { __name__: "g", a: "x" }, value: 4 }]);
      assert.deepEqual(await value("g offset 30s"), [{ metric: { __name__: "g", a: "x" }, value: 2 }]);
      assert.deepEqual(await value(`g @ ${sec(20)}`), [{ metric: { __name__: "g", a: "x" }, value: 3 }]);
      assert.deepEqual(await value("g", sec(360)), [{ metric: { __name__: "g", a: "x" }, value: 4 }]);
      assert.deepEqual(await value("g", sec(361)), []);
      assert.deepEqual(await value("timestamp(g)"), [{ metric: { a: "x" }, value: T0_MS / 1000 + 61 }]);
    });

    it("evaluates subqueries at the multiples of their step", async () => {
      // Steps 15, 30, 45 and 60 s in (2 s, 62 s] see g's samples from 1, 16, 31 and 46 s: 1, 3, 2, 6.
      assert.deepEqual(await value("count_over_time(g[1m:15s])"), [{ metric: { a: "x" }, value: 4 }]);
      assert.deepEqual(await value("sum_over_time(g[1m:15s])"), [{ metric: { a: "x" }, value: 12 }]);
      assert.deepEqual(await value("last_over_time((g * 2)[1m:15s] offset 15s)"), [{ metric: { a: "x" }, value: 4 }]);
    });

    it("interpolates histogram_quantile within le buckets", async () => {
      // 40 observations: rank 20 lies in (1, 2] holding 20, half way.
      assert.deepEqual(await value("histogram_quantile(0.5, h_bucket)"), [{ metric: {}, value: 1.5 }]);
      // Rank 36 falls in the +Inf bucket: the highest finite bound.
      assert.deepEqual(await value("histogram_quantile(0.9, h_bucket)"), [{ metric: {}, value: 2 }]);
      assert.deepEqual(await value("histogram_quantile(2, h_bucket)"), [{ metric: {}, value: Infinity }]);
    });

    it("applies scalar operators, filters and metric name rules", async () => {
      assert.deepEqual(await value("2 * g + 1"), [{ metric: { a: "x" }, value: 9 }]);
      assert.deepEqual(await value("g > 3"), [{ metric: { __name__: "g", a: "x" }, value: 4 }]);
      assert.deepEqual(await value("5 > g"), [{ metric: { __name__: "g", a: "x" }, value: 4 }]);
      assert.deepEqual(await value("g > 5"), []);
      assert.deepEqual(await value("g > bool 5"), [{ metric: { a: "x" }, value: 0 }]);
      assert.deepEqual(await value("-g"), [{ metric: { a: "x" }, value: -4 }]);
      assert.deepEqual(await value("clamp(g, 5, 9)"), [{ metric: { a: "x" }, value: 5 }]);
      assert.deepEqual(await value("clamp(g, 9, 5)"), []);
      assert.deepEqual(await value("round(g / 3, 0.25)"), [{ metric: { a: "x" }, value: 1.25 }]);
      const scalar = await get("/api/v1/query", { query: "2 ^ 3 ^ 2 - time() * 0", time: sec(62) });
      assert.deepEqual(scalar.body, {
        status: "success",
        data: { resultType: "scalar", result: [T0_MS / 1000 + 62, "512"] },
      });
    });

    it("refuses a result with two equal label sets", async () => {
      const { status, body } = await get("/api/v1/query", {
        query: 'rate({__name__=~"c_total|g"}[1m])',
        time: sec(62),
      });
      assert.equal(status, 422);
      assert.deepEqual(body, {
        status: "error",
        errorType: "execution",
        error: "vector cannot contain metrics with the same labelset",
      });
    });

    it("evaluates aggregations and vector/vector operators with the shared vector operations", async () => {
      const single = await get("/api/v1/query", { query: "g", time: sec(62) });
      const [[time, text]] = [(single.body.data as { result: { value: [number, string] }[] }).result[0]!.value];
      const value = Number(text);
      assert.deepEqual((await get("/api/v1/query", { query: "sum(g)", time: sec(62) })).body.data, {
        resultType: "vector",
        result: [{ metric: {}, value: [time, String(value)] }],
      });
      assert.deepEqual((await get("/api/v1/query", { query: "g + g", time: sec(62) })).body.data, {
        resultType: "vector",
        result: [{ metric: { a: "x" }, value: [time, String(2 * value)] }],
      });
      assert.deepEqual((await get("/api/v1/query", { query: 'count_values("v", g)', time: sec(62) })).body.data, {
        resultType: "vector",
        result: [{ metric: { v: String(value) }, value: [time, "1"] }],
      });
    });

    it("answers range queries step by step", async () => {
      // Windows (t - 30 s, t] over samples at 1, 16, 31, 46, 61 s.
      const { status, body } = await get("/api/v1/query_range", {
        query: "count_over_time(g[30s])",
        start: sec(0),
        end: sec(90),
        step: "15s",
      });
      assert.equal(status, 200);
      assert.deepEqual(body.data, {
        resultType: "matrix",
        result: [
          {
            metric: { a: "x" },
            values: [15, 30, 45, 60, 75, 90].map((s, i) => [T0_MS / 1000 + s, i === 0 || i === 5 ? "1" : "2"]),
          },
        ],
      });
      const scalar = await get("/api/v1/query_range", { query: "time()", start: sec(0), end: sec(1), step: "0.5" });
      assert.deepEqual(scalar.body.data, {
        resultType: "matrix",
        result: [
          {
            metric: {},
            values: [
              [T0_MS / 1000, sec(0)],
              [T0_MS / 1000 + 0.5, sec(0.5)],
              [T0_MS / 1000 + 1, sec(1)],
            ],
          },
        ],
      });
    });

    it("serves the Prometheus JSON for every result type, by GET and form POST, under /prometheus too", async () => {
      const vector = await get("/api/v1/query", { query: "g", time: sec(62) });
      assert.deepEqual(vector.body, {
        status: "success",
        data: {
          resultType: "vector",
          result: [{ metric: { __name__: "g", a: "x" }, value: [T0_MS / 1000 + 62, "4"] }],
        },
      });
      const matrix = await get("/prometheus/api/v1/query", { query: "g[20s]", time: sec(62) });
      assert.deepEqual(matrix.body.data, {
        resultType: "matrix",
        result: [
          {
            metric: { __name__: "g", a: "x" },
            values: [
              [T0_MS / 1000 + 46, "6"],
              [T0_MS / 1000 + 61, "4"],
            ],
          },
        ],
      });
      const text = await get("/api/v1/query", { query: '"hello"', time: "2025-11-24T16:01:02Z" });
      assert.deepEqual(text.body.data, { resultType: "string", result: [T0_MS / 1000 + 62, "hello"] });
      const posted = await app.request("/api/v1/query", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ query: "g", time: sec(62) }).toString(),
      });
      assert.deepEqual(await posted.json(), vector.body);
    });

    it("keeps tenants apart by X-Scope-OrgID", async () => {
      const other = await get("/api/v1/query", { query: "g", time: sec(62) }, { "X-Scope-OrgID": "someone-else" });
      assert.deepEqual(other.body.data, { resultType: "vector", result: [] });
      const fake = await get(
        "/api/v1/query",
        { query: "count_over_time(temperature_celsius[1h])", time: String((T0_MS + 3_600_000) / 1000) },
        { "X-Scope-OrgID": "fake" },
      );
      assert.equal((fake.body.data!.result as unknown[]).length, 2);
    });

    it("reports bad requests as Prometheus does", async () => {
      const cases: [string, Record<string, string>, string][] = [
        [
          "/api/v1/query",
          { query: "rate(g)" },
          'invalid parameter "query": 1:6: parse error: expected type range vector in call to function "rate", got instant vector',
        ],
        [
          "/api/v1/query",
          { query: "g", time: "noon" },
          'invalid parameter "time": cannot parse "noon" to a valid timestamp',
        ],
        [
          "/api/v1/query_range",
          { query: "g", start: sec(10), end: sec(0), step: "1" },
          'invalid parameter "end": end timestamp must not be before start time',
        ],
        [
          "/api/v1/query_range",
          { query: "g", start: sec(0), end: sec(10), step: "0" },
          'invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer',
        ],
        [
          "/api/v1/query_range",
          { query: "g", start: sec(0), end: sec(11_001), step: "1" },
          "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ],
        [
          "/api/v1/query_range",
          { query: "g[1m]", start: sec(0), end: sec(10), step: "1" },
          'invalid expression type "range vector" for range query, must be Scalar or instant Vector',
        ],
        ["/api/v1/series", {}, "no match[] parameter provided"],
        ["/api/v1/label/1x/values", {}, 'invalid label name: "1x"'],
      ];
      for (const [path, params, error] of cases) {
        const { status, body } = await get(path, params);
        assert.equal(status, 400, `${path} ${JSON.stringify(params)}`);
        assert.deepEqual(body, { status: "error", errorType: "bad_data", error });
      }
    });

    it("lists series, label names, label values and metadata", async () => {
      const range = { start: sec(0), end: sec(120) };
      const series = await get("/api/v1/series", { "match[]": '{a="x"}', ...range });
      assert.deepEqual(series.body, {
        status: "success",
        data: [
          { __name__: "c_total", a: "x" },
          { __name__: "g", a: "x" },
        ],
      });
      const names = await get("/api/v1/labels", range);
      assert.deepEqual(names.body.data, ["__name__", "a", "le"]);
      const values = await get("/api/v1/label/__name__/values", { "match[]": "h_bucket", ...range });
      assert.deepEqual(values.body.data, ["h_bucket"]);
      const metadata = await get("/api/v1/metadata", {});
      assert.deepEqual(metadata.body.data, {
        c_total: [{ type: "counter", help: "", unit: "" }],
        g: [{ type: "gauge", help: "", unit: "" }],
        h: [{ type: "histogram", help: "", unit: "" }],
      });
      assert.deepEqual((await get("/api/v1/metadata", { metric: "g" })).body.data, {
        g: [{ type: "gauge", help: "", unit: "" }],
      });
    });

    it("answers the fixed query set of the Prometheus comparison", async () => {
      for (const query of QUERIES) {
        for (const timeMs of CONSISTENCY_TIMES_MS) {
          const { status, body } = await get(
            "/api/v1/query",
            { query, time: String(timeMs / 1000) },
            { "X-Scope-OrgID": "fake" },
          );
          assert.equal(status, 200, `${query}: ${JSON.stringify(body)}`);
          answers.set(`${query} @ ${timeMs}`, body);
        }
      }
    });
  });
}

promqlSuite("ClickHouse", async () => {
  const store = new ClickHouseStore({
    url: CLICKHOUSE_URL,
    username: "default",
    password: "",
    database: uniqueName("promql"),
    retention: RETENTION,
  });
  await store.migrate();
  return store;
});

const dir = mkdtempSync(join(tmpdir(), "bifrost-promql-"));
after(() => rmSync(dir, { recursive: true, force: true }));
promqlSuite("DuckDB", async () => {
  const store = new DuckDBStore({ path: join(dir, "bifrost.duckdb"), retention: RETENTION });
  await store.migrate();
  return store;
});

describe("PromQL on both stores", () => {
  it("gives identical answers to the fixed query set", () => {
    const clickhouse = consistency.get("ClickHouse")!;
    const duckdb = consistency.get("DuckDB")!;
    assert.equal(clickhouse.size, QUERIES.length * CONSISTENCY_TIMES_MS.length);
    for (const [key, answer] of clickhouse) assert.deepEqual(duckdb.get(key), answer, key);
  });
});

describe("Prometheus API parameters", () => {
  it("prints floats as Go's FormatFloat(v, 'f', -1, 64)", () => {
    assert.deepEqual([1e21, 1.5e-7, -2.5e22, 0.1 + 0.2, 123, -0, NaN, Infinity, -Infinity].map(formatFloatF), [
      "1000000000000000000000",
      "0.00000015",
      "-25000000000000000000000",
      "0.30000000000000004",
      "123",
      "0",
      "NaN",
      "+Inf",
      "-Inf",
    ]);
  });

  it("reads times and durations as Prometheus does", () => {
    assert.equal(parseTimeParam("1764000000.1234", 0, 1), 1_764_000_000_123);
    assert.equal(parseTimeParam("2025-11-24T16:00:00.5+01:00", 0, 1), T0_MS - 3_600_000 + 500);
    assert.throws(() => parseTimeParam("tomorrow", 0, 1), /cannot parse "tomorrow" to a valid timestamp/);
    assert.equal(parseDurationParam("15"), 15_000);
    assert.equal(parseDurationParam("0.25"), 250);
    assert.equal(parseDurationParam("1m30s"), 90_000);
    assert.throws(() => parseDurationParam("1.5m"), /cannot parse "1.5m" to a valid duration/);
  });
});
