import { Authenticator } from "../common/auth.js";
import { configSchema } from "../config.js";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { createLogger } from "../common/log.js";
import { prometheusRoutes } from "../query/promql/api.js";
import { DuckDBStore } from "../storage/duckdb.js";
import { compareAnswers, type PromJson } from "./helpers/promql-compare.js";
import {
  DATA_SET,
  INSTANT_TIMES_MS,
  loadDataSet,
  QUERIES,
  RANGES_MS,
  SUBQUERIES,
  SUBQUERY_RANGES_MS,
  SUBQUERY_TIMES_MS,
} from "./helpers/promql-data.js";
import { prometheusMissing, type RunningPrometheus, startPrometheus } from "./helpers/prometheus.js";
import { TEST_RETENTION } from "./helpers/store-contract.js";

// The same samples in Debian's Prometheus (imported with promtool) and in Bifrost: every query of the fixed set
// must give the same numbers from both APIs.

const skip = prometheusMissing();

describe("PromQL answers match Prometheus", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-promql-"));
  let prometheus: RunningPrometheus | undefined;
  let prometheusUrl = "";
  let store: DuckDBStore;
  const app = new Hono();

  before(async () => {
    prometheus = await startPrometheus(dir, DATA_SET);
    prometheusUrl = prometheus.url;
    store = new DuckDBStore({ path: join(dir, "bifrost", "bifrost.duckdb"), retention: TEST_RETENTION });
    await store.migrate();
    await loadDataSet(store, "fake");
    app.use(new Authenticator(configSchema().parse({}).auth, "fake").middleware());
    prometheusRoutes(app, { store, log: createLogger("silent") });
  });

  after(async () => {
    await prometheus?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function both(path: string, params: Record<string, string>): Promise<string | undefined> {
    const query = new URLSearchParams(params).toString();
    const want = await (await fetch(`${prometheusUrl}${path}?${query}`)).json();
    const got = await (await app.request(`${path}?${query}`)).json();
    const why = compareAnswers(got as PromJson, want as PromJson);
    return why === undefined ? undefined : `${params.query} ${JSON.stringify(params)}: ${why}`;
  }

  it("gives the same instant query results", async () => {
    const failures: string[] = [];
    for (const query of QUERIES) {
      for (const timeMs of INSTANT_TIMES_MS) {
        const why = await both("/api/v1/query", { query, time: String(timeMs / 1000) });
        if (why !== undefined) failures.push(why);
      }
    }
    assert.deepEqual(failures, []);
  });

  it("gives the same range query results", async () => {
    const failures: string[] = [];
    for (const query of QUERIES) {
      for (const { startMs, endMs, stepMs } of RANGES_MS) {
        const why = await both("/api/v1/query_range", {
          query,
          start: String(startMs / 1000),
          end: String(endMs / 1000),
          step: String(stepMs / 1000),
        });
        if (why !== undefined) failures.push(why);
      }
    }
    assert.deepEqual(failures, []);
  });

  it("evaluates subqueries as Prometheus does", async () => {
    const failures: string[] = [];
    for (const query of SUBQUERIES) {
      for (const timeMs of SUBQUERY_TIMES_MS) {
        const why = await both("/api/v1/query", { query, time: String(timeMs / 1000) });
        if (why !== undefined) failures.push(why);
      }
      for (const { startMs, endMs, stepMs } of SUBQUERY_RANGES_MS) {
        const why = await both("/api/v1/query_range", {
          query,
          start: String(startMs / 1000),
          end: String(endMs / 1000),
          step: String(stepMs / 1000),
        });
        if (why !== undefined) failures.push(why);
      }
    }
    assert.deepEqual(failures, []);
  });

  it("returns range vectors of instant queries as Prometheus does", async () => {
    const failures: string[] = [];
    for (const query of [
      "temperature_celsius[2m]",
      "http_requests_total[1m] offset 3m",
      'request_duration_seconds_bucket{le="+Inf"}[45s]',
    ]) {
      for (const timeMs of INSTANT_TIMES_MS) {
        const why = await both("/api/v1/query", { query, time: String(timeMs / 1000) });
        if (why !== undefined) failures.push(why);
      }
    }
    assert.deepEqual(failures, []);
  });

  it("lists the same series, label names and label values", async () => {
    const range = {
      start: String(DATA_SET[0]!.points[0]!.timeUnixMs / 1000 - 60),
      end: String(DATA_SET[0]!.points[0]!.timeUnixMs / 1000 + 7200),
    };
    for (const params of [{ "match[]": "http_requests_total" }, { "match[]": '{job="api"}' }]) {
      const query = new URLSearchParams({ ...params, ...range }).toString();
      const want = await (await fetch(`${prometheusUrl}/api/v1/series?${query}`)).json();
      const got = await (await app.request(`/api/v1/series?${query}`)).json();
      assert.deepEqual(got, want);
    }
    for (const path of ["/api/v1/labels", "/api/v1/label/instance/values", "/api/v1/label/__name__/values"]) {
      const query = new URLSearchParams(range).toString();
      const want = await (await fetch(`${prometheusUrl}${path}?${query}`)).json();
      const got = await (await app.request(`${path}?${query}`)).json();
      assert.deepEqual(got, want, path);
    }
  });

  it("refuses the same malformed queries with the same messages", async () => {
    const failures: string[] = [];
    const queries = [
      "",
      "rate(http_requests_total)",
      "1 > 2",
      "http_requests_total and 1",
      "sum(",
      '{a=""}',
      "foo[5m] + 1",
      "rate(x[5m]",
      "abs(1)",
      "x[5x]",
      "x $",
    ];
    for (const query of queries) {
      const params = new URLSearchParams({ query, time: "1764001800" }).toString();
      const want = await (await fetch(`${prometheusUrl}/api/v1/query?${params}`)).json();
      const got = await (await app.request(`/api/v1/query?${params}`)).json();
      if (JSON.stringify(got) !== JSON.stringify(want))
        failures.push(`${query}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    }
    for (const params of [
      { query: "http_requests_total[5m]", start: "1764000000", end: "1764003600", step: "60" },
      { query: "1", start: "1764003600", end: "1764000000", step: "60" },
      { query: "1", start: "1764000000", end: "1764003600", step: "0" },
      { query: "1", start: "1764000000", end: "1764100000", step: "1" },
      { query: "1", start: "yesterday", end: "1764003600", step: "60" },
    ]) {
      const query = new URLSearchParams(params).toString();
      const want = await (await fetch(`${prometheusUrl}/api/v1/query_range?${query}`)).json();
      const got = await (await app.request(`/api/v1/query_range?${query}`)).json();
      if (JSON.stringify(got) !== JSON.stringify(want))
        failures.push(`${query}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    }
    assert.deepEqual(failures, []);
  });
});
