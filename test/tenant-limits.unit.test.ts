import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { Batcher } from "../collector/buffer/batcher.js";
import { lokiReceiver } from "../collector/receivers/loki.js";
import { TenantRateLimiter } from "../common/rate-limit.js";
import { otlpHttpRoutes } from "../collector/receivers/otlp-http.js";
import { otlpMetricsOptions } from "../collector/receivers/otlp-metrics.js";
import { Wal } from "../collector/buffer/wal.js";
import { Authenticator } from "../common/auth.js";
import { configSchema, loadConfig } from "../config.js";
import { admissionFromConfig, contractFromConfig } from "../common/ingest-contract.js";
import { TenantLimits } from "../common/limits.js";
import { createLogger } from "../common/log.js";
import { SampleKind } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { lokiRoutes } from "../query/loki/api.js";
import { prometheusRoutes } from "../query/promql/api.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { Store } from "../storage/store.js";
import { T0_MS } from "./helpers/promql-data.js";

// Per-tenant limits (overrides.<tenant>) on every path that enforces them: the collector's Loki push and OTLP
// receivers, the Loki query API with its tail, and the Prometheus API. Two tenants have different limits; a third
// has none of its own and gets the defaults. Each error must name the tenant, the limit and the key to change.

const config = configSchema().parse({
  // The pushes carry T0_MS, a fixed time in the past.
  collector: { limits: { reject_old_samples: false } },
  overrides: {
    small: {
      rate_entries_per_s: 10,
      burst_entries: 20,
      max_labels: 2,
      max_line_bytes: 100,
      max_query_series: 1,
      max_query_length_hours: 1,
      max_entries_limit_per_query: 10,
      query_timeout_ms: 1000,
    },
    large: {
      rate_entries_per_s: 1000,
      burst_entries: 2000,
      max_labels: 5,
      max_line_bytes: 10_000,
      max_query_series: 100,
      max_query_length_hours: 48,
      max_entries_limit_per_query: 1000,
    },
  },
});
const limits = new TenantLimits(config);

function collectorApp(): Hono {
  const wal = Wal.open({
    dir: mkdtempSync(join(tmpdir(), "bifrost-limits-")),
    maxBytes: 64 << 20,
    segmentBytes: 1 << 20,
    fsync: "never",
    whenFull: "block",
  });
  const batcher = new Batcher({
    node: { id: "edge-1", site: "", region: "" },
    wal,
    maxEntries: 1000,
    maxBytes: 1 << 20,
    maxAgeMs: 10,
    maxBatchBytes: 3 << 20,
  });
  const app = new Hono();
  app.use(new Authenticator(config.auth, "fake").middleware());
  const rate = new TenantRateLimiter(limits);
  const parts = {
    contract: contractFromConfig(config, limits, "shipped"),
    admission: admissionFromConfig(config.collector.limits),
  };
  lokiReceiver(app, { batcher, ...parts, maxBodyBytes: 1 << 20, rate });
  otlpHttpRoutes(app, {
    batcher,
    ...parts,
    maxBodyBytes: 1 << 20,
    rate,
    metrics: otlpMetricsOptions(config.collector.otlp),
  });
  return app;
}

const pushBody = (labels: Record<string, string>, lines: string[]) =>
  JSON.stringify({ streams: [{ stream: labels, values: lines.map((line, i) => [String(T0_MS * 1e6 + i), line]) }] });

async function push(app: Hono, tenant: string, labels: Record<string, string>, lines: string[]) {
  const response = await app.request("/loki/api/v1/push", {
    method: "POST",
    body: pushBody(labels, lines),
    headers: { "Content-Type": "application/json", "X-Scope-OrgID": tenant },
  });
  return { status: response.status, text: await response.text(), retryAfter: response.headers.get("Retry-After") };
}

async function otlpLogs(app: Hono, tenant: string, lines: string[]) {
  const body = {
    resourceLogs: [
      {
        resource: { attributes: [] },
        scopeLogs: [
          { logRecords: lines.map((line) => ({ timeUnixNano: String(T0_MS * 1e6), body: { stringValue: line } })) },
        ],
      },
    ],
  };
  const response = await app.request("/v1/logs", {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-Scope-OrgID": tenant },
  });
  return { status: response.status, body: (await response.json()) as { message?: string } };
}

describe("per-tenant limits in the configuration", () => {
  it("reads overrides from the file's schema and from the environment, and refuses unknown keys", () => {
    const fromEnv = loadConfig({
      env: { BIFROST_OVERRIDES__SHOP__MAX_LABELS: "7", BIFROST_OVERRIDES__SHOP__QUERY_TIMEOUT_MS: "2500" },
    });
    const shop = new TenantLimits(fromEnv);
    assert.equal(shop.get("shop", "max_labels"), 7);
    assert.equal(shop.get("shop", "query_timeout_ms"), 2500);
    assert.equal(shop.get("other", "max_labels"), fromEnv.collector.limits.max_labels);
    assert.throws(
      () => loadConfig({ env: { BIFROST_OVERRIDES__SHOP__MAX_LABLES: "7" } }),
      /overrides\.shop: unknown key max_lables/,
    );
  });
});

describe("per-tenant ingest limits at the collector", () => {
  it("Loki push: rate and burst per tenant, 429 naming tenant, limit and key", async () => {
    const app = collectorApp();
    const lines = Array.from({ length: 25 }, (_, i) => `line ${i}`);
    const small = await push(app, "small", { app: "a" }, lines);
    assert.equal(small.status, 429);
    assert.ok(Number(small.retryAfter) >= 1);
    assert.match(
      small.text,
      /^tenant small: ingestion rate limit exceeded while attempting to ingest 25 entries \(burst 20\)/,
    );
    assert.match(
      small.text,
      /limit rate_entries_per_s = 10, set by overrides\.small\.rate_entries_per_s; change it there/,
    );
    assert.equal((await push(app, "large", { app: "a" }, lines)).status, 204);
    assert.equal((await push(app, "defaults", { app: "a" }, lines)).status, 204, "the default rate (0) does not limit");
  });

  it("Loki push: label names per stream and line size per tenant, 400", async () => {
    const app = collectorApp();
    const labels = { app: "a", env: "prod", zone: "z1" };
    const tooMany = await push(app, "small", labels, ["x"]);
    assert.equal(tooMany.status, 400);
    assert.match(
      tooMany.text,
      /^tenant small: stream 0 has 3 labels, the limit is 2 \(limit max_labels = 2, set by overrides\.small\.max_labels/,
    );
    assert.equal((await push(app, "large", labels, ["x"])).status, 204);

    const long = "x".repeat(500);
    const tooLong = await push(app, "small", { app: "a" }, [long]);
    assert.equal(tooLong.status, 400);
    assert.match(
      tooLong.text,
      /tenant small: stream 0: a line of 500 bytes, the limit is 100 \(limit max_line_bytes = 100/,
    );
    assert.equal((await push(app, "large", { app: "a" }, [long])).status, 204);

    const many = Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`l${i}`, "v"]));
    const defaults = await push(app, "defaults", many, ["x"]);
    assert.equal(defaults.status, 400);
    assert.match(
      defaults.text,
      /limit max_labels = 30, the default collector\.limits\.max_labels; set overrides\.defaults\.max_labels to change it for this tenant/,
    );
  });

  it("OTLP: rate and line size per tenant, 429 and 400 naming tenant, limit and key", async () => {
    const app = collectorApp();
    const lines = Array.from({ length: 25 }, (_, i) => `line ${i}`);
    const over = await otlpLogs(app, "small", lines);
    assert.equal(over.status, 429);
    assert.match(
      over.body.message ?? "",
      /^tenant small: ingestion rate limit exceeded .*overrides\.small\.rate_entries_per_s/,
    );
    assert.equal((await otlpLogs(app, "large", lines)).status, 200);

    const fresh = collectorApp();
    const long = await otlpLogs(fresh, "small", ["y".repeat(300)]);
    assert.equal(long.status, 400);
    assert.match(
      long.body.message ?? "",
      /^tenant small: .*a line of 300 bytes, the limit is 100 \(limit max_line_bytes = 100, set by overrides\.small\.max_line_bytes/,
    );
    assert.equal((await otlpLogs(fresh, "large", ["y".repeat(300)])).status, 200);
  });
});

/** A store that answers every read after `delayMs`: a query slower than one tenant's timeout and not the other's. */
function slowStore(store: Store, delayMs: number): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== "function") return value;
      if (typeof prop === "string" && /^(select|count|probe)/.test(prop)) {
        return async (...args: unknown[]) => {
          await sleep(delayMs);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

describe("per-tenant query limits", () => {
  let store: Store;
  const app = new Hono();
  const slowApp = new Hono();
  const log = createLogger("silent");
  const t0 = T0_MS / 1000;

  before(async () => {
    store = new DuckDBStore({
      path: ":memory:",
      retention: { logs_days: 3650, samples_days: 3650, rollups_1m_days: 3650, rollups_1h_days: 3650 },
    });
    await store.migrate();
    for (const tenant of ["small", "large"]) {
      await store.appendLogs([
        {
          id: `${tenant}/logs:1`,
          tenant,
          streams: ["a", "b"].map((name) => ({
            labels: labelsOf([["app", name]]),
            entries: Array.from({ length: 30 }, (_, i) => ({
              timeUnixNano: BigInt(T0_MS + i * 1000) * 1_000_000n,
              line: `${name} ${i}`,
              metadata: labelsOf([]),
            })),
          })),
        },
      ]);
      await store.appendSamples([
        {
          id: `${tenant}/samples:1`,
          tenant,
          series: ["a", "b"].map((name) => ({
            name: "up",
            labels: labelsOf([["instance", name]]),
            kind: SampleKind.Gauge,
            points: Array.from({ length: 30 }, (_, i) => ({ timeUnixMs: T0_MS + i * 15_000, value: 1 })),
          })),
        },
      ]);
    }
    for (const [target, s] of [
      [app, store],
      [slowApp, slowStore(store, 2500)],
    ] as const) {
      target.use(new Authenticator(config.auth, "fake").middleware());
      lokiRoutes(target, {
        store: s,
        limits: config.query.limits,
        pushLimits: config.collector.limits,
        tenantLimits: limits,
        log,
      });
      prometheusRoutes(target, { store: s, tenantLimits: limits, log });
    }
  });
  after(() => store.close());

  async function get(target: Hono, path: string, params: Record<string, string>, tenant: string) {
    const response = await target.request(`${path}?${new URLSearchParams(params)}`, {
      headers: { "X-Scope-OrgID": tenant },
    });
    return { status: response.status, text: await response.text() };
  }

  const logRange = (hours: number) => ({ start: String(t0), end: String(t0 + hours * 3600) });

  it("Loki: max_query_length_hours, 400", async () => {
    const small = await get(app, "/loki/api/v1/query_range", { query: '{app="a"}', ...logRange(2) }, "small");
    assert.equal(small.status, 400);
    assert.match(
      small.text,
      /^tenant small: the query time range exceeds the limit \(query length: 2h0m0s, limit: 1h0m0s\) \(limit max_query_length_hours = 1, set by overrides\.small\.max_query_length_hours; change it there\)/,
    );
    assert.equal(
      (await get(app, "/loki/api/v1/query_range", { query: '{app="a"}', ...logRange(2) }, "large")).status,
      200,
    );
    assert.equal(
      (await get(app, "/loki/api/v1/series", { "match[]": '{app="a"}', ...logRange(2) }, "small")).status,
      400,
      "series too",
    );
  });

  it("Loki: max_entries_limit_per_query on queries and tail, 400", async () => {
    const small = await get(
      app,
      "/loki/api/v1/query_range",
      { query: '{app="a"}', limit: "20", ...logRange(0.5) },
      "small",
    );
    assert.equal(small.status, 400);
    assert.match(
      small.text,
      /^tenant small: max entries limit per query exceeded, limit > max_entries_limit_per_query \(20 > 10\) \(limit max_entries_limit_per_query = 10, set by overrides\.small/,
    );
    const large = await get(
      app,
      "/loki/api/v1/query_range",
      { query: '{app="a"}', limit: "20", ...logRange(0.5) },
      "large",
    );
    assert.equal(large.status, 200);
    assert.equal(
      (JSON.parse(large.text) as { data: { result: { values: unknown[] }[] } }).data.result[0]!.values.length,
      20,
    );
    const tail = await get(app, "/loki/api/v1/tail", { query: '{app="a"}', limit: "20" }, "small");
    assert.equal(tail.status, 400);
    assert.match(
      tail.text,
      /^tenant small: max entries limit per query exceeded, .*overrides\.small\.max_entries_limit_per_query/,
    );
    assert.doesNotMatch(
      (await get(app, "/loki/api/v1/tail", { query: '{app="a"}', limit: "20" }, "large")).text,
      /max entries limit/,
    );
  });

  it("Loki: max_query_series, 400", async () => {
    // A limit within the small tenant's max_entries_limit_per_query (Loki checks it on metric queries too).
    const query = {
      query: 'sum by (app) (count_over_time({app=~"a|b"}[1m]))',
      ...logRange(0.5),
      step: "60",
      limit: "5",
    };
    const small = await get(app, "/loki/api/v1/query_range", query, "small");
    assert.equal(small.status, 400);
    assert.match(
      small.text,
      /^tenant small: maximum number of series \(1\) reached for a single query.*\(limit max_query_series = 1, set by overrides\.small\.max_query_series/,
    );
    assert.equal((await get(app, "/loki/api/v1/query_range", query, "large")).status, 200);
  });

  it("Loki: query_timeout_ms, 504", async () => {
    const query = { query: '{app="a"}', ...logRange(0.5), limit: "5" };
    const small = await get(slowApp, "/loki/api/v1/query_range", query, "small");
    assert.equal(small.status, 504);
    assert.match(
      small.text,
      /^tenant small: request timed out.*\(limit query_timeout_ms = 1000, set by overrides\.small\.query_timeout_ms/,
    );
    assert.equal((await get(slowApp, "/loki/api/v1/query_range", query, "large")).status, 200);
  });

  it("Prometheus: max_query_length_hours and max_query_series, 400 bad_data", async () => {
    const long = { query: 'up{instance="a"}', start: String(t0), end: String(t0 + 7200), step: "60" };
    const small = await get(app, "/api/v1/query_range", long, "small");
    assert.equal(small.status, 400);
    const body = JSON.parse(small.text) as { errorType: string; error: string };
    assert.equal(body.errorType, "bad_data");
    assert.match(
      body.error,
      /^tenant small: the query time range exceeds the limit \(query length: 2h, limit: 1h\) \(limit max_query_length_hours = 1, set by overrides\.small/,
    );
    assert.equal((await get(app, "/api/v1/query_range", long, "large")).status, 200);

    const wide = { query: "up", time: String(t0 + 300) };
    const smallWide = await get(app, "/api/v1/query", wide, "small");
    assert.equal(smallWide.status, 400);
    assert.match(
      (JSON.parse(smallWide.text) as { error: string }).error,
      /^tenant small: the query returns 2 series, more than the 1 allowed \(limit max_query_series = 1/,
    );
    assert.equal((await get(app, "/api/v1/query", wide, "large")).status, 200);
  });

  it("Prometheus: query_timeout_ms, 503 timeout", async () => {
    const query = { query: 'up{instance="a"}', time: String(t0 + 300) };
    const small = await get(slowApp, "/api/v1/query", query, "small");
    assert.equal(small.status, 503);
    const body = JSON.parse(small.text) as { errorType: string; error: string };
    assert.equal(body.errorType, "timeout");
    assert.match(
      body.error,
      /^tenant small: query timed out in query execution \(limit query_timeout_ms = 1000, set by overrides\.small\.query_timeout_ms/,
    );
    assert.equal((await get(slowApp, "/api/v1/query", query, "large")).status, 200);
  });
});
