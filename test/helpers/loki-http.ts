import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { Authenticator } from "../../common/auth.js";
import { configSchema } from "../../config.js";
import { createLogger } from "../../common/log.js";
import { createRegistry } from "../../common/metrics.js";
import { HttpService } from "../../common/service.js";
import { lokiRoutes } from "../../query/loki/api.js";
import { admissionFromConfig, contractFromConfig, ingestDefaultsFromConfig } from "../../common/ingest-contract.js";
import { storePushSink } from "../../query/loki/push.js";
import { ClickHouseStore } from "../../storage/clickhouse.js";
import { DuckDBStore } from "../../storage/duckdb.js";
import type { Store } from "../../storage/store.js";
import { CLICKHOUSE_URL, uniqueName } from "./services.js";
import { TEST_RETENTION } from "./store-contract.js";

// The query service's Loki API over a store, on a local port, with the calls the API tests make.

export interface LokiHttp {
  base: string;
  get(path: string, tenant?: string): Promise<{ status: number; body: unknown; text: string }>;
  /** `data` of a successful response. */
  data(path: string, tenant?: string): Promise<unknown>;
  /** resultType and result of a query: an instant one when `params` has `time=`, else a range one. */
  result(query: string, params: string, tenant?: string): Promise<{ resultType: string; result: unknown }>;
  close(): Promise<void>;
}

export async function startLokiHttp(store: Store): Promise<LokiHttp> {
  const config = configSchema().parse({
    query: { limits: { max_entries_limit_per_query: 5000, max_query_length_hours: 24 } },
  });
  const log = createLogger("silent");
  const http = new HttpService("query", createRegistry(), log);
  http.app.use(new Authenticator(config.auth, "fake").middleware());
  const ingestDefaults = ingestDefaultsFromConfig(config, "stored");
  lokiRoutes(http.app, {
    store,
    limits: config.query.limits,
    pushLimits: config.collector.limits,
    push: {
      sink: storePushSink(store, ingestDefaults),
      contract: contractFromConfig(config, undefined, "stored", ingestDefaults),
      admission: admissionFromConfig(config.collector.limits),
    },
    log,
  });
  const base = (await http.listen("127.0.0.1:0", undefined, true)).url;

  const get: LokiHttp["get"] = async (path, tenant = "acme") => {
    const response = await fetch(`${base}${path}`, { headers: { "X-Scope-OrgID": tenant } });
    const text = await response.text();
    let body: unknown = undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, body, text };
  };
  const data: LokiHttp["data"] = async (path, tenant) => {
    const { status, body, text } = await get(path, tenant);
    assert.equal(status, 200, text);
    assert.equal((body as { status: string }).status, "success");
    return (body as { data: unknown }).data;
  };
  const result: LokiHttp["result"] = async (query, params, tenant) => {
    const route = params.includes("time=") ? "query" : "query_range";
    const got = (await data(`/loki/api/v1/${route}?query=${encodeURIComponent(query)}&${params}`, tenant)) as {
      resultType: string;
      result: unknown;
      stats: { summary: Record<string, number> };
    };
    assert.equal(typeof got.stats.summary.execTime, "number");
    return { resultType: got.resultType, result: got.result };
  };
  return { base, get, data, result, close: () => http.close() };
}

/**
 * Runs `suite` on the real ClickHouse engine (a fresh database on the shared server) and on the embedded DuckDB
 * store (a file in a temporary directory), each migrated and empty.
 */
export function onBothStores(prefix: string, suite: (name: string, open: () => Promise<Store>) => void): void {
  suite("ClickHouse", async () => {
    const store = new ClickHouseStore({
      url: CLICKHOUSE_URL,
      username: "default",
      password: "",
      database: uniqueName(prefix),
      retention: TEST_RETENTION,
    });
    await store.migrate();
    return store;
  });
  const dir = mkdtempSync(join(tmpdir(), `bifrost-${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  suite("DuckDB", async () => {
    const store = new DuckDBStore({ path: join(dir, "bifrost.duckdb"), retention: TEST_RETENTION });
    await store.migrate();
    return store;
  });
}
