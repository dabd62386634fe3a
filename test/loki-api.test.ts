import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import type { Store } from "../storage/store.js";
import { until } from "./helpers/aggregation.js";
import { onBothStores, startLokiHttp, type LokiHttp } from "./helpers/loki-http.js";
import { logBatch, T0_MS, T0_NS } from "./helpers/store-contract.js";

// The Loki API as Grafana's Loki data source drives it (the request sequence of Explore), over a fixed data set,
// on both stores, with exact expected JSON worked out by hand from the data below.

const SEC = 1_000_000_000n;
const at = (seconds: number) => T0_NS + BigInt(seconds) * SEC;
/** A sample time in Loki's JSON: seconds as a number. */
const t = (seconds: number) => T0_MS / 1000 + seconds;

const API_INFO = [
  [at(10), 'level=info msg="GET /orders" status=200 latency=12ms'],
  [at(20), 'level=info msg="GET /users" status=200 latency=250ms'],
  [at(70), 'level=info msg="POST /orders" status=201 latency=40ms'],
] as const;
const API_ERROR = [
  [at(30), 'level=error msg="GET /orders" status=500 latency=1.5s'],
  [at(80), 'level=error msg="db timeout" status=503 latency=2s'],
] as const;
const WORKER = [
  [at(15), '{"job":"resize","took_ms":120,"user":{"id":7}}', [["trace_id", "abc"]]],
  [at(75), '{"job":"email","took_ms":30,"user":{"id":9}}'],
] as const;

const bytes = (lines: readonly (readonly [bigint, string, ...unknown[]])[]) =>
  lines.reduce((n, [, line]) => n + Buffer.byteLength(line), 0);

async function load(store: Store): Promise<void> {
  await store.appendLogs([
    logBatch(
      "edge-1:1",
      [
        {
          labels: [
            ["service", "api"],
            ["level", "info"],
            ["node", "n1"],
          ],
          entries: API_INFO.map(([ts, line]) => [ts, line]),
        },
        {
          labels: [
            ["service", "api"],
            ["level", "error"],
            ["node", "n1"],
          ],
          entries: API_ERROR.map(([ts, line]) => [ts, line]),
        },
      ],
      "acme",
    ),
    logBatch(
      "edge-2:1",
      [
        {
          labels: [
            ["service", "worker"],
            ["level", "info"],
            ["node", "n2"],
          ],
          entries: WORKER.map(([ts, line, md]) => [ts, line, md?.map(([k, v]) => [k, v] as [string, string])]),
        },
      ],
      "acme",
    ),
    logBatch(
      "edge-3:1",
      [
        {
          labels: [
            ["service", "api"],
            ["level", "info"],
            ["node", "other"],
          ],
          entries: [[at(10), "another tenant's GET /orders"]],
        },
      ],
      "globex",
    ),
  ]);
}

function apiSuite(name: string, open: () => Promise<Store>): void {
  describe(`Loki API on ${name}`, () => {
    let store: Store;
    let api: LokiHttp;
    let base: string;
    const range = `start=${at(0)}&end=${at(120)}`;
    const get = (path: string, tenant?: string) => api.get(path, tenant);
    const data = (path: string, tenant?: string) => api.data(path, tenant);
    const result = (query: string, params: string) => api.result(query, params);

    before(async () => {
      store = await open();
      await load(store);
      api = await startLokiHttp(store);
      base = api.base;
    });
    after(async () => {
      await api.close();
      await store.close();
    });

    it("lists label names and values for the label browser", async () => {
      assert.deepEqual(await data(`/loki/api/v1/labels?${range}`), ["level", "node", "service"]);
      assert.deepEqual(await data(`/loki/api/v1/label/service/values?${range}`), ["api", "worker"]);
      assert.deepEqual(
        await data(`/loki/api/v1/label/node/values?${range}&query=${encodeURIComponent('{service="api"}')}`),
        ["n1"],
      );
      assert.deepEqual(await data(`/loki/api/v1/label/node/values?${range}`, "globex"), ["other"]);
    });

    it("lists series for match[] selectors", async () => {
      assert.deepEqual(await data(`/loki/api/v1/series?${range}&match[]=${encodeURIComponent('{service="api"}')}`), [
        { level: "error", node: "n1", service: "api" },
        { level: "info", node: "n1", service: "api" },
      ]);
    });

    it("answers index stats and volume", async () => {
      const stats = await get(`/loki/api/v1/index/stats?${range}&query=${encodeURIComponent('{service="api"}')}`);
      assert.equal(stats.status, 200, stats.text);
      // Loki counts the chunks a query reads; Bifrost has none.
      assert.deepEqual(stats.body, { streams: 2, chunks: 0, entries: 5, bytes: bytes(API_INFO) + bytes(API_ERROR) });
      const volume = await data(`/loki/api/v1/index/volume?${range}&query=${encodeURIComponent('{service=~".+"}')}`);
      assert.deepEqual(volume, {
        resultType: "vector",
        result: [
          { metric: { service: "api" }, value: [t(120), String(bytes(API_INFO) + bytes(API_ERROR))] },
          { metric: { service: "worker" }, value: [t(120), String(bytes(WORKER))] },
        ],
        stats: (volume as { stats: unknown }).stats,
      });
    });

    it("returns log lines with a line filter, newest first, grouped by stream", async () => {
      const got = await result('{service="api"} |= "orders"', `${range}&limit=1000&direction=backward&step=1000ms`);
      assert.deepEqual(got, {
        resultType: "streams",
        result: [
          { stream: { level: "error", node: "n1", service: "api" }, values: [[String(at(30)), API_ERROR[0][1]]] },
          {
            stream: { level: "info", node: "n1", service: "api" },
            values: [
              [String(at(70)), API_INFO[2][1]],
              [String(at(10)), API_INFO[0][1]],
            ],
          },
        ],
      });
    });

    it("applies limit and direction across streams", async () => {
      const got = await result('{service=~"api|worker"}', `${range}&limit=3&direction=forward`);
      const entries = (got.result as { values: [string, string][] }[])
        .flatMap((s) => s.values.map(([ts]) => ts))
        .sort();
      assert.deepEqual(entries, [String(at(10)), String(at(15)), String(at(20))]);
    });

    it("parses json and formats lines", async () => {
      const got = await result(
        '{service="worker"} | json | line_format "{{.job}} by {{.user_id}}"',
        `${range}&limit=10`,
      );
      const lines = (got.result as { values: [string, string][] }[])
        .flatMap((s) => s.values.map(([, line]) => line))
        .sort();
      assert.deepEqual(lines, ["email by 9", "resize by 7"]);
    });

    it("answers the logs volume query Explore adds (sum by level of count_over_time)", async () => {
      const got = await result(
        'sum by (level) (count_over_time({service="api"}[1m]))',
        `start=${at(60)}&end=${at(120)}&step=60000ms`,
      );
      assert.deepEqual(got, {
        resultType: "matrix",
        result: [
          {
            metric: { level: "error" },
            values: [
              [t(60), "1"],
              [t(120), "1"],
            ],
          },
          {
            metric: { level: "info" },
            values: [
              [t(60), "2"],
              [t(120), "1"],
            ],
          },
        ],
      });
    });

    it("splits metric series by structured metadata as Loki does", async () => {
      const got = await result('count_over_time({service="worker"}[2m])', `time=${at(120)}`);
      assert.deepEqual(got, {
        resultType: "vector",
        result: [
          { metric: { level: "info", node: "n2", service: "worker" }, value: [t(120), "1"] },
          { metric: { level: "info", node: "n2", service: "worker", trace_id: "abc" }, value: [t(120), "1"] },
        ],
      });
    });

    it("filters parsed labels and computes rates", async () => {
      const got = await result(
        'sum(rate({service="api"} | logfmt | status >= 500 [1m]))',
        `start=${at(60)}&end=${at(120)}&step=60`,
      );
      assert.deepEqual(got, {
        resultType: "matrix",
        result: [
          {
            metric: {},
            values: [
              [t(60), String(1 / 60)],
              [t(120), String(1 / 60)],
            ],
          },
        ],
      });
    });

    it("unwraps durations for quantiles", async () => {
      const got = await result(
        'quantile_over_time(0.5, {service="api"} | logfmt | unwrap duration(latency) [2m]) by (service)',
        `time=${at(120)}`,
      );
      assert.deepEqual(got, {
        resultType: "vector",
        result: [{ metric: { service: "api" }, value: [t(120), "0.25"] }],
      });
    });

    it("answers Grafana's health check", async () => {
      const got = await result("vector(1)+vector(1)", "time=4");
      assert.deepEqual(got, { resultType: "vector", result: [{ metric: {}, value: [4, "2"] }] });
    });

    it("keeps tenants apart", async () => {
      const got = (await data(
        `/loki/api/v1/query_range?query=${encodeURIComponent('{service="api"}')}&${range}`,
        "globex",
      )) as { result: { values: unknown[] }[] };
      assert.deepEqual(
        got.result.map((s) => s.values.length),
        [1],
      );
    });

    it("answers bad requests with Loki's 400 messages", async () => {
      const parse = await get(`/loki/api/v1/query_range?query=${encodeURIComponent('{service="api"')}&${range}`);
      assert.equal(parse.status, 400);
      assert.match(parse.text, /^parse error at line 1, col \d+/);
      const limit = await get(
        `/loki/api/v1/query_range?query=${encodeURIComponent('{service="api"}')}&${range}&limit=6000`,
      );
      assert.equal(limit.status, 400);
      assert.match(limit.text, /max_entries_limit_per_query \(6000 > 5000\)/);
      const instant = await get(`/loki/api/v1/query?query=${encodeURIComponent('{service="api"}')}&time=${at(60)}`);
      assert.equal(instant.status, 400);
      assert.match(instant.text, /log queries are not supported as an instant query type/);
      const resolution = await get(
        `/loki/api/v1/query_range?query=${encodeURIComponent('count_over_time({service="api"}[1m])')}&${range}&step=0.001`,
      );
      assert.equal(resolution.status, 400);
      assert.match(resolution.text, /exceeded maximum resolution of 11,000 points/);
      const long = await get(
        `/loki/api/v1/query_range?query=${encodeURIComponent('{service="api"}')}&start=${at(0)}&end=${at(25 * 3600)}`,
      );
      assert.equal(long.status, 400);
      assert.match(long.text, /the query time range exceeds the limit \(query length: 25h0m0s, limit: 24h0m0s\)/);
      const time = await get(`/loki/api/v1/query_range?query=${encodeURIComponent('{service="api"}')}&start=yesterday`);
      assert.equal(time.status, 400);
      assert.match(time.text, /invalid start: cannot parse "yesterday"/);
      const formatted = await get(`/loki/api/v1/format_query?query=${encodeURIComponent("{a=}")}`);
      assert.equal(formatted.status, 400);
      assert.equal((formatted.body as { status: string }).status, "invalid-query");
    });

    it("formats queries", async () => {
      assert.equal(
        await data(`/loki/api/v1/format_query?query=${encodeURIComponent('{service="api"}|="x"')}`),
        '{service="api"} |= "x"',
      );
    });

    it("tails over a WebSocket: the newest entries first, then what arrives", async () => {
      const url = `${base.replace("http", "ws")}/loki/api/v1/tail?query=${encodeURIComponent('{service="api"} |~ "orders|timeout|live"')}&start=${at(0)}&limit=2`;
      const ws = new WebSocket(url, { headers: { "X-Scope-OrgID": "acme" } });
      const frames: { streams: { stream: Record<string, string>; values: [string, string][] }[] }[] = [];
      ws.on("message", (data) => frames.push(JSON.parse(String(data))));
      const lines = () => frames.flatMap((f) => f.streams.flatMap((s) => s.values.map(([, line]) => line)));
      await until("the first tail frame", () => frames.length >= 1);
      assert.deepEqual(lines().sort(), [API_ERROR[1][1], API_INFO[2][1]].sort());
      const now = BigInt(Date.now()) * 1_000_000n;
      const pushed = await fetch(`${base}/loki/api/v1/push`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Scope-OrgID": "acme" },
        body: JSON.stringify({
          streams: [{ stream: { service: "api", level: "info", node: "n1" }, values: [[String(now), "live line"]] }],
        }),
      });
      assert.equal(pushed.status, 204);
      await until("the pushed line in the tail", () => lines().includes("live line"));
      ws.close();
      const refused = await get(`/loki/api/v1/tail?query=${encodeURIComponent('count_over_time({a="b"}[1m])')}`);
      assert.equal(refused.status, 400);
    });

    it("accepts pushes centrally and serves them", async () => {
      const response = await fetch(`${base}/loki/api/v1/push`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Scope-OrgID": "pushed" },
        body: JSON.stringify({ streams: [{ stream: { app: "central" }, values: [[String(at(5)), "hello"]] }] }),
      });
      assert.equal(response.status, 204);
      const got = (await data(
        `/loki/api/v1/query_range?query=${encodeURIComponent('{app="central"}')}&${range}`,
        "pushed",
      )) as { result: unknown };
      // Loki's ingestion defaults: service_name from `app`, and the line's level (none here) as structured metadata.
      assert.deepEqual(got.result, [
        {
          stream: { app: "central", detected_level: "unknown", service_name: "central" },
          values: [[String(at(5)), "hello"]],
        },
      ]);
    });
  });
}

onBothStores("lokiapi", apiSuite);
