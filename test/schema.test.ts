import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createClient } from "@clickhouse/client";
import { schemaStatements, TABLES, VIEWS } from "../storage/schema.js";
import { CLICKHOUSE_URL } from "./helpers/services.js";
import { TEST_RETENTION } from "./helpers/store-contract.js";

const single = schemaStatements({ database: "bifrost", retention: TEST_RETENTION });
const cluster = schemaStatements({ database: "bifrost", retention: TEST_RETENTION, cluster: "edge_fleet" });

describe("ClickHouse DDL", () => {
  it("single-server layout: plain MergeTree engines, no ON CLUSTER, one statement per table and view", () => {
    assert.equal(single.length, 1 + TABLES.length + VIEWS.length);
    assert.ok(single.every((s) => !s.includes("ON CLUSTER") && !s.includes("Replicated") && !s.includes("Distributed")));
    assert.ok(single.every((s) => s.includes("IF NOT EXISTS")));
  });

  it("cluster layout: replicated local tables, a Distributed table of the plain name in front of each, views on local tables", () => {
    assert.equal(cluster.length, 1 + 2 * TABLES.length + VIEWS.length);
    assert.ok(cluster.every((s) => s.includes(" ON CLUSTER edge_fleet")), "every statement runs ON CLUSTER");
    for (const table of TABLES) {
      const local = cluster.find((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS bifrost.${table.name}_local ON CLUSTER`));
      assert.ok(local, `${table.name}_local`);
      assert.match(local, new RegExp(`ENGINE = Replicated${table.engine}\\('/clickhouse/tables/\\{shard\\}/bifrost/${table.name}', '\\{replica\\}'\\)`));
      const distributed = cluster.find((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS bifrost.${table.name} ON CLUSTER`));
      assert.ok(distributed, table.name);
      assert.match(distributed, new RegExp(`AS bifrost\\.${table.name}_local\\nENGINE = Distributed\\(edge_fleet, bifrost, ${table.name}_local, `));
    }
    for (const view of VIEWS) {
      const statement = cluster.find((s) => s.includes(`MATERIALIZED VIEW IF NOT EXISTS bifrost.${view.name} ON CLUSTER`));
      assert.ok(statement, view.name);
      assert.match(statement, new RegExp(`TO bifrost\\.${view.to}_local\\n`));
      assert.doesNotMatch(statement.split("FROM")[1]!, /bifrost\.\w+(?<!_local)\s/, "views read local tables");
    }
  });

  it("both layouts parse as ClickHouse SQL (the engine's own parser, via formatQuery)", async () => {
    const client = createClient({ url: CLICKHOUSE_URL });
    try {
      for (const statement of [...single, ...cluster]) {
        const result = await client.query({ query: "SELECT formatQuery({q:String}) AS f", query_params: { q: statement }, format: "JSONEachRow" });
        const [row] = await result.json<{ f: string }>();
        assert.ok(row!.f.length > 0, statement);
      }
    } finally {
      await client.close();
    }
  });

  it("puts the configured retention into the TTLs", () => {
    const ddl = schemaStatements({ database: "b", retention: { logs_days: 7, samples_days: 14, rollups_1m_days: 60, rollups_1h_days: 365 } }).join("\n");
    assert.match(ddl, /CREATE TABLE IF NOT EXISTS b\.logs\n[\s\S]*?TTL toDateTime\(timestamp\) \+ INTERVAL 7 DAY/);
    assert.match(ddl, /CREATE TABLE IF NOT EXISTS b\.samples\n[\s\S]*?TTL toDateTime\(timestamp\) \+ INTERVAL 14 DAY/);
    assert.match(ddl, /CREATE TABLE IF NOT EXISTS b\.rollups_1m\n[\s\S]*?TTL bucket \+ INTERVAL 60 DAY/);
    assert.match(ddl, /CREATE TABLE IF NOT EXISTS b\.rollups_1h\n[\s\S]*?TTL bucket \+ INTERVAL 365 DAY/);
  });

  it("refuses a database or cluster name that is not a plain identifier", () => {
    assert.throws(() => schemaStatements({ database: "x; DROP", retention: TEST_RETENTION }), /plain identifier/);
    assert.throws(() => schemaStatements({ database: "ok", retention: TEST_RETENTION, cluster: "a b" }), /plain identifier/);
  });
});
