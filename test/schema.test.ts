import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createClient } from "@clickhouse/client";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { MIGRATIONS } from "../storage/migrations.js";
import { schemaStatements, TABLES, VIEWS } from "../storage/schema.js";
import { CLICKHOUSE_URL, uniqueName } from "./helpers/services.js";
import { TEST_RETENTION } from "./helpers/store-contract.js";
import { until } from "./helpers/wait.js";

const single = schemaStatements({ database: "bifrost", retention: TEST_RETENTION });
const cluster = schemaStatements({ database: "bifrost", retention: TEST_RETENTION, cluster: "edge_fleet" });

describe("ClickHouse DDL", () => {
  it("single-server layout: plain MergeTree engines, no ON CLUSTER, one statement per table and view", () => {
    assert.equal(single.length, 1 + TABLES.length + VIEWS.length);
    assert.ok(
      single.every((s) => !s.includes("ON CLUSTER") && !s.includes("Replicated") && !s.includes("Distributed")),
    );
    assert.ok(single.every((s) => s.includes("IF NOT EXISTS")));
  });

  it("cluster layout: replicated local tables, a Distributed table of the plain name in front of each, views on local tables", () => {
    assert.equal(cluster.length, 1 + 2 * TABLES.length + VIEWS.length);
    assert.ok(
      cluster.every((s) => s.includes(" ON CLUSTER edge_fleet")),
      "every statement runs ON CLUSTER",
    );
    for (const table of TABLES) {
      const local = cluster.find((s) =>
        s.startsWith(`CREATE TABLE IF NOT EXISTS bifrost.${table.name}_local ON CLUSTER`),
      );
      assert.ok(local, `${table.name}_local`);
      assert.match(
        local,
        new RegExp(
          `ENGINE = Replicated${table.engine}\\('/clickhouse/tables/\\{shard\\}/bifrost/${table.name}', '\\{replica\\}'\\)`,
        ),
      );
      const distributed = cluster.find((s) =>
        s.startsWith(`CREATE TABLE IF NOT EXISTS bifrost.${table.name} ON CLUSTER`),
      );
      assert.ok(distributed, table.name);
      assert.match(
        distributed,
        new RegExp(
          `AS bifrost\\.${table.name}_local\\nENGINE = Distributed\\(edge_fleet, bifrost, ${table.name}_local, `,
        ),
      );
    }
    for (const view of VIEWS) {
      const statement = cluster.find((s) =>
        s.includes(`MATERIALIZED VIEW IF NOT EXISTS bifrost.${view.name} ON CLUSTER`),
      );
      assert.ok(statement, view.name);
      assert.match(statement, new RegExp(`TO bifrost\\.${view.to}_local\\n`));
      assert.doesNotMatch(statement.split("FROM")[1]!, /bifrost\.\w+(?<!_local)\s/, "views read local tables");
    }
  });

  it("both layouts parse as ClickHouse SQL (the engine's own parser, via formatQuery)", async () => {
    const client = createClient({ url: CLICKHOUSE_URL });
    try {
      for (const statement of [...single, ...cluster]) {
        const result = await client.query({
          query: "SELECT formatQuery({q:String}) AS f",
          query_params: { q: statement },
          format: "JSONEachRow",
        });
        const [row] = await result.json<{ f: string }>();
        assert.ok(row!.f.length > 0, statement);
      }
    } finally {
      await client.close();
    }
  });

  it("puts the configured retention into the TTLs", () => {
    const ddl = schemaStatements({
      database: "b",
      retention: { logs_days: 7, samples_days: 14, rollups_1m_days: 60, rollups_1h_days: 365 },
    }).join("\n");
    assert.match(ddl, /CREATE TABLE IF NOT EXISTS b\.logs\n[\s\S]*?TTL toDateTime\(timestamp\) \+ INTERVAL 7 DAY/);
    assert.match(ddl, /CREATE TABLE IF NOT EXISTS b\.samples\n[\s\S]*?TTL toDateTime\(timestamp\) \+ INTERVAL 14 DAY/);
    assert.match(ddl, /CREATE TABLE IF NOT EXISTS b\.rollups_1m\n[\s\S]*?TTL bucket \+ INTERVAL 60 DAY/);
    assert.match(ddl, /CREATE TABLE IF NOT EXISTS b\.rollups_1h\n[\s\S]*?TTL bucket \+ INTERVAL 365 DAY/);
  });

  it("refuses a database or cluster name that is not a plain identifier", () => {
    assert.throws(() => schemaStatements({ database: "x; DROP", retention: TEST_RETENTION }), /plain identifier/);
    assert.throws(
      () => schemaStatements({ database: "ok", retention: TEST_RETENTION, cluster: "a b" }),
      /plain identifier/,
    );
  });

  it("migration 2 takes the per-row labels and the n-gram index off a logs table made by version 1, on one server and ON CLUSTER", async () => {
    const v2 = MIGRATIONS.find((m) => m.version === 2)!;
    assert.deepEqual(v2.statements({ database: "b", retention: TEST_RETENTION, cluster: "c" }), [
      "ALTER TABLE b.logs_local ON CLUSTER c DROP INDEX IF EXISTS line_ngrams",
      "ALTER TABLE b.logs_local ON CLUSTER c DROP COLUMN IF EXISTS labels",
      "ALTER TABLE b.logs ON CLUSTER c DROP COLUMN IF EXISTS labels",
    ]);
    const database = uniqueName("migrate_v1");
    const client = createClient({ url: CLICKHOUSE_URL });
    const store = new ClickHouseStore({
      url: CLICKHOUSE_URL,
      username: "default",
      password: "",
      database,
      retention: TEST_RETENTION,
    });
    try {
      // The logs table as version 1 was released, recorded as applied.
      for (const statement of schemaStatements({ database, retention: TEST_RETENTION }))
        await client.command({ query: statement });
      await client.command({
        query: `ALTER TABLE ${database}.logs ADD COLUMN labels Map(LowCardinality(String), String) AFTER timestamp`,
      });
      await client.command({
        query: `ALTER TABLE ${database}.logs ADD INDEX line_ngrams line TYPE ngrambf_v1(3, 65536, 2, 0) GRANULARITY 2`,
      });
      await client.insert({
        table: `${database}.schema_migrations`,
        values: [{ version: 1, name: "v1" }],
        format: "JSONEachRow",
      });
      await store.migrate();
      const shape = async (query: string) =>
        (await (await client.query({ query, format: "JSONEachRow" })).json<{ name: string }>()).map((r) => r.name);
      assert.ok(
        !(await shape(`SELECT name FROM system.columns WHERE database = '${database}' AND table = 'logs'`)).includes(
          "labels",
        ),
      );
      assert.deepEqual(
        await shape(`SELECT name FROM system.data_skipping_indices WHERE database = '${database}' AND table = 'logs'`),
        ["batch_ids"],
      );
      assert.deepEqual(
        await shape(`SELECT toString(version) AS name FROM ${database}.schema_migrations ORDER BY version`),
        ["1", "2", "3", "4", "5", "6"],
      );
      // Version 3 adds the fleet server's table beside what version 1 made.
      assert.deepEqual(
        await shape(`SELECT name FROM system.tables WHERE database = '${database}' AND name = 'fleet_records'`),
        ["fleet_records"],
      );
    } finally {
      await store.close();
      await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await client.close();
    }
  });

  it("migration 5 adds the arrival order columns to a logs table made before it, rows already there read as arrived together", async () => {
    const v5 = MIGRATIONS.find((m) => m.version === 5)!;
    assert.deepEqual(v5.statements({ database: "b", retention: TEST_RETENTION, cluster: "c" }), [
      "ALTER TABLE b.logs_local ON CLUSTER c ADD COLUMN IF NOT EXISTS arrival Int64 CODEC(Delta(8), ZSTD(1))",
      "ALTER TABLE b.logs_local ON CLUSTER c ADD COLUMN IF NOT EXISTS entry UInt32 CODEC(ZSTD(1))",
      "ALTER TABLE b.logs ON CLUSTER c ADD COLUMN IF NOT EXISTS arrival Int64 CODEC(Delta(8), ZSTD(1))",
      "ALTER TABLE b.logs ON CLUSTER c ADD COLUMN IF NOT EXISTS entry UInt32 CODEC(ZSTD(1))",
    ]);
    const database = uniqueName("migrate_v4");
    const client = createClient({ url: CLICKHOUSE_URL });
    const store = new ClickHouseStore({
      url: CLICKHOUSE_URL,
      username: "default",
      password: "",
      database,
      retention: TEST_RETENTION,
    });
    try {
      for (const statement of schemaStatements({ database, retention: TEST_RETENTION }))
        await client.command({ query: statement });
      await client.command({ query: `ALTER TABLE ${database}.logs DROP COLUMN arrival, DROP COLUMN entry` });
      await client.insert({
        table: `${database}.logs`,
        values: [
          { tenant: "t", fingerprint: "1", timestamp: Math.floor(Date.now() / 1000), line: "old", batch_id: "b:1" },
        ],
        format: "JSONEachRow",
      });
      await client.insert({
        table: `${database}.schema_migrations`,
        values: [1, 2, 3, 4].map((version) => ({ version, name: `v${version}` })),
        format: "JSONEachRow",
      });
      await store.migrate();
      const rows = await (
        await client.query({ query: `SELECT line, arrival, entry FROM ${database}.logs`, format: "JSONEachRow" })
      ).json();
      assert.deepEqual(rows, [{ line: "old", arrival: 0, entry: 0 }]);
    } finally {
      await store.close();
      await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await client.close();
    }
  });

  it("migration 6 stamps the streams index and log volume of a schema made before it with a write time, once", async () => {
    const database = uniqueName("migrate_v5");
    const client = createClient({ url: CLICKHOUSE_URL });
    const store = new ClickHouseStore({
      url: CLICKHOUSE_URL,
      username: "default",
      password: "",
      database,
      retention: TEST_RETENTION,
    });
    try {
      for (const statement of schemaStatements({ database, retention: TEST_RETENTION }))
        await client.command({ query: statement });
      await client.command({ query: `ALTER TABLE ${database}.log_volume_1m DROP INDEX written_minmax` });
      for (const table of ["streams", "log_volume_1m"])
        await client.command({ query: `ALTER TABLE ${database}.${table} DROP COLUMN written` });
      const minute = Math.floor(Date.now() / 60_000) * 60;
      await client.insert({
        table: `${database}.streams`,
        values: [
          {
            tenant: "t",
            signal: "logs",
            fingerprint: "1",
            labels: { app: "old" },
            kind: 0,
            first_seen: minute,
            last_seen: minute,
          },
        ],
        format: "JSONEachRow",
      });
      await client.insert({
        table: `${database}.log_volume_1m`,
        values: [{ tenant: "t", fingerprint: "1", bucket: minute, entries: 2, bytes: 10 }],
        format: "JSONEachRow",
      });
      await client.insert({
        table: `${database}.schema_migrations`,
        values: [1, 2, 3, 4, 5].map((version) => ({ version, name: `v${version}` })),
        format: "JSONEachRow",
      });
      await store.migrate();
      await until("the write times written into the parts", async () => {
        const [row] = await (
          await client.query({
            query: `SELECT count() AS n FROM system.mutations WHERE database = {d:String} AND NOT is_done`,
            query_params: { d: database },
            format: "JSONEachRow",
          })
        ).json<{ n: string }>();
        return Number(row!.n) === 0;
      });
      const select = { tenant: "t", signal: "logs" as const, volumeFromMs: minute * 1000 - 3_600_000, limit: 10 };
      const all = await store.indexChanges(select);
      assert.deepEqual(
        all.streams.map((s) => ({ ...s.labels })),
        [{ app: "old" }],
      );
      assert.deepEqual(all.volume, [{ fingerprint: "1", minuteMs: minute * 1000, entries: 2, bytes: 10 }]);
      // Stamped once, by the migration's mutation, not at every read: a read finds nothing written since then.
      const serverMs = async () => {
        const [row] = await (
          await client.query({ query: "SELECT toUnixTimestamp64Milli(now64(3)) AS ms", format: "JSONEachRow" })
        ).json<{ ms: string }>();
        return Number(row!.ms);
      };
      const stamped = await serverMs();
      await until("the server's clock to move on", async () => (await serverMs()) > stamped);
      const since = await store.indexChanges({ ...select, sinceMs: stamped + 1 });
      assert.deepEqual([since.streams, since.volume], [[], []]);
    } finally {
      await store.close();
      await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await client.close();
    }
  });

  it("migration 4 adds the metric metadata table to a schema made before it, on one server and ON CLUSTER", async () => {
    const v4 = MIGRATIONS.find((m) => m.version === 4)!;
    const onCluster = v4.statements({ database: "b", retention: TEST_RETENTION, cluster: "c" });
    assert.equal(onCluster.length, 2);
    assert.match(
      onCluster[0]!,
      /^CREATE TABLE IF NOT EXISTS b\.metric_metadata_local ON CLUSTER c\n[\s\S]*ReplicatedAggregatingMergeTree/,
    );
    assert.match(
      onCluster[1]!,
      /^CREATE TABLE IF NOT EXISTS b\.metric_metadata ON CLUSTER c AS b\.metric_metadata_local\nENGINE = Distributed/,
    );
    const database = uniqueName("migrate_v3");
    const client = createClient({ url: CLICKHOUSE_URL });
    const store = new ClickHouseStore({
      url: CLICKHOUSE_URL,
      username: "default",
      password: "",
      database,
      retention: TEST_RETENTION,
    });
    try {
      for (const statement of schemaStatements({ database, retention: TEST_RETENTION }))
        if (!statement.includes(".metric_metadata\n")) await client.command({ query: statement });
      await client.insert({
        table: `${database}.schema_migrations`,
        values: [
          { version: 1, name: "v1" },
          { version: 2, name: "v2" },
          { version: 3, name: "v3" },
        ],
        format: "JSONEachRow",
      });
      await store.migrate();
      await store.appendMetadata([
        { tenant: "t", seenMs: Date.now(), metadata: [{ name: "up", type: "gauge", help: "Target up", unit: "" }] },
      ]);
      assert.deepEqual(await store.metricMetadata({ tenant: "t", startMs: 0, endMs: Date.now() + 1000 }), [
        { name: "up", type: "gauge", help: "Target up", unit: "" },
      ]);
    } finally {
      await store.close();
      await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await client.close();
    }
  });
});
