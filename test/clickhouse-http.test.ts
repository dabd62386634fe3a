import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import {
  type ClickHouseClient,
  type ClickHouseClientConfigOptions,
  ClickHouseError,
  ClickHouseLogLevel,
  createClient as createLoudClient,
} from "@clickhouse/client";
import { CLICKHOUSE_URL, startChdbHttp, uniqueName } from "./helpers/services.js";

// The chDB front end (deploy/local/clickhouse/chdb_http.py) must behave like ClickHouse's HTTP interface
// for everything @clickhouse/client does; these tests use the real client against it.

// These tests provoke errors on purpose; the client would log each one.
function createClient(options: ClickHouseClientConfigOptions): ClickHouseClient {
  return createLoudClient({ ...options, log: { level: ClickHouseLogLevel.OFF } });
}

function assertClickHouseError(err: unknown, code: string, type: string): true {
  assert.ok(err instanceof ClickHouseError, `expected ClickHouseError, got ${String(err)}`);
  assert.equal(err.code, code);
  assert.equal(err.type, type);
  return true;
}

describe("ClickHouse HTTP interface over chDB", () => {
  const database = uniqueName("t_http");
  let client: ClickHouseClient;

  before(async () => {
    const admin = createClient({ url: CLICKHOUSE_URL });
    await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    await admin.close();
    client = createClient({ url: CLICKHOUSE_URL, database });
  });

  after(async () => {
    await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await client.close();
  });

  it("answers ping and plain GETs as ClickHouse does", async () => {
    assert.deepEqual(await client.ping(), { success: true });
    const response = await fetch(`${CLICKHOUSE_URL}/ping`);
    assert.equal(await response.text(), "Ok.\n");
    const select = await fetch(`${CLICKHOUSE_URL}/?query=${encodeURIComponent("SELECT 1 + 1")}`);
    assert.equal(await select.text(), "2\n");
  });

  it("streams a large JSONEachRow insert and reads it back in order", async () => {
    await client.command({
      query:
        "CREATE TABLE rows (id UInt32, ts DateTime64(9), line String, labels Map(String, String)) ENGINE = MergeTree ORDER BY id",
    });
    const rows = Array.from({ length: 50_000 }, (_, id) => ({
      id,
      ts: `2026-11-28 10:00:00.${String(id).padStart(9, "0")}`,
      line: `line ${id} ${"é✓".repeat(id % 7)}`,
      labels: { node: `n${id % 3}` },
    }));
    const result = await client.insert({ table: "rows", values: Readable.from(rows), format: "JSONEachRow" });
    assert.equal(result.summary?.written_rows, "50000");
    const back = await (
      await client.query({ query: "SELECT id, line, labels FROM rows ORDER BY id", format: "JSONEachRow" })
    ).json<{
      id: number;
      line: string;
      labels: Record<string, string>;
    }>();
    assert.equal(back.length, rows.length);
    assert.deepEqual(back[49_999], { id: 49_999, line: rows[49_999]!.line, labels: { node: "n1" } });
    assert.ok(back.every((row, i) => row.id === i && row.line === rows[i]!.line));
  });

  it("binds query parameters in the engine, whatever they contain", async () => {
    const hostile = ["'; DROP TABLE rows; --", "\\'", "back\\slash", "multi\nline\ttab", "{x:String}", "\u0000", "🧪"];
    for (const value of hostile) {
      const rows = await (
        await client.query({ query: "SELECT {v:String} AS v", query_params: { v: value }, format: "JSONEachRow" })
      ).json<{ v: string }>();
      assert.deepEqual(rows, [{ v: value }]);
    }
    const arrays = await (
      await client.query({
        query: "SELECT {a:Array(String)} AS a, {n:UInt64} AS n",
        query_params: { a: hostile, n: 42 },
        format: "JSONEachRow",
      })
    ).json<{ a: string[]; n: string }>();
    assert.deepEqual(arrays[0]!.a, hostile);
    // Large parameters travel in the URL (up to ClickHouse's 1 MiB limit) or, when the client is told to, in a
    // multipart body.
    const big = "p".repeat(200_000);
    for (const use_multipart_params of [false, true]) {
      const rows = await (
        await client.query({
          query: "SELECT length({v:String}) AS n",
          query_params: { v: `${big}'` },
          format: "JSONEachRow",
          use_multipart_params,
        })
      ).json<{ n: number }>();
      assert.equal(Number(rows[0]!.n), big.length + 1);
    }
  });

  it("applies settings to one query only", async () => {
    await assert.rejects(
      client.query({
        query: "SELECT number FROM system.numbers LIMIT 10",
        format: "JSONEachRow",
        clickhouse_settings: { max_result_rows: "1", result_overflow_mode: "throw" },
      }),
      (err) => assertClickHouseError(err, "396", "TOO_MANY_ROWS_OR_BYTES"),
    );
    const rows = await (
      await client.query({ query: "SELECT number FROM system.numbers LIMIT 10", format: "JSONEachRow" })
    ).json();
    assert.equal(rows.length, 10);
    const setting = await (
      await client.query({
        query: "SELECT getSetting('max_threads') AS v",
        format: "JSONEachRow",
        clickhouse_settings: { max_threads: 3 },
      })
    ).json<{ v: string }>();
    assert.equal(Number(setting[0]!.v), 3);
  });

  it("deduplicates a repeated insert with the same insert_deduplication_token", async () => {
    await client.command({
      query:
        "CREATE TABLE dedup (id UInt32) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100",
    });
    for (let attempt = 0; attempt < 3; attempt++) {
      await client.insert({
        table: "dedup",
        values: [{ id: 1 }, { id: 2 }],
        format: "JSONEachRow",
        clickhouse_settings: { insert_deduplication_token: "node-1:42" },
      });
    }
    const count = await (
      await client.query({ query: "SELECT count() AS c FROM dedup", format: "JSONEachRow" })
    ).json<{ c: number }>();
    assert.equal(Number(count[0]!.c), 2);
  });

  it("reports engine errors with their code and type", async () => {
    await assert.rejects(client.query({ query: "SELEC 1" }), (err) => assertClickHouseError(err, "62", "SYNTAX_ERROR"));
    await assert.rejects(client.query({ query: "SELECT * FROM missing_table" }), (err) =>
      assertClickHouseError(err, "60", "UNKNOWN_TABLE"),
    );
    await assert.rejects(
      client.insert({ table: "rows", values: [{ id: "not a number" }], format: "JSONEachRow" }),
      (err) => err instanceof ClickHouseError && err.code !== "",
    );
    const raw = await fetch(`${CLICKHOUSE_URL}/?query=${encodeURIComponent("SELECT * FROM missing_table")}`);
    assert.equal(raw.status, 404);
    assert.equal(raw.headers.get("x-clickhouse-exception-code"), "60");
    assert.match(await raw.text(), /^Code: 60\. DB::Exception: .*\(UNKNOWN_TABLE\) \(version /);
    // The connection survives failed queries.
    assert.equal(
      (await (await client.query({ query: "SELECT 7 AS x", format: "JSONEachRow" })).json<{ x: number }>())[0]!.x,
      7,
    );
  });

  it("speaks gzip in both directions", async () => {
    const compressed = createClient({ url: CLICKHOUSE_URL, database, compression: { request: true, response: true } });
    try {
      await compressed.command({ query: "CREATE TABLE gz (s String) ENGINE = MergeTree ORDER BY s" });
      await compressed.insert({
        table: "gz",
        values: Array.from({ length: 5000 }, (_, i) => ({ s: `v${i}` })),
        format: "JSONEachRow",
      });
      const rows = await (
        await compressed.query({ query: "SELECT toString(count()) AS c, max(s) AS m FROM gz", format: "JSONEachRow" })
      ).json();
      assert.deepEqual(rows, [{ c: "5000", m: "v999" }]);
    } finally {
      await compressed.close();
    }
  });

  it("serves concurrent queries from one client", async () => {
    const results = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const rows = await (
          await client.query({ query: `SELECT ${i} AS i, toString(count()) AS c FROM rows`, format: "JSONEachRow" })
        ).json<{ i: number; c: string }>();
        return rows[0]!;
      }),
    );
    assert.deepEqual(
      results.map((r) => r.i),
      Array.from({ length: 24 }, (_, i) => i),
    );
    assert.ok(results.every((r) => r.c === "50000"));
  });
});

describe("ClickHouse HTTP interface over chDB with credentials", () => {
  let server: Awaited<ReturnType<typeof startChdbHttp>>;
  before(async () => {
    server = await startChdbHttp(["--user", "bifrost", "--password", "pa:ss"]);
  });
  after(async () => {
    await server.stop();
  });

  it("accepts the right user and password, and refuses others", async () => {
    const good = createClient({ url: server.url, username: "bifrost", password: "pa:ss" });
    const bad = createClient({ url: server.url, username: "bifrost", password: "wrong" });
    try {
      assert.equal(
        (await (await good.query({ query: "SELECT 1 AS x", format: "JSONEachRow" })).json<{ x: number }>())[0]!.x,
        1,
      );
      await assert.rejects(bad.query({ query: "SELECT 1" }), (err) =>
        assertClickHouseError(err, "516", "AUTHENTICATION_FAILED"),
      );
    } finally {
      await good.close();
      await bad.close();
    }
  });
});
