import { ClickHouseError } from "@clickhouse/client";
import type { Logger } from "../common/log.js";
import { type ClickHouseDatabase, clickhouseDialect } from "./clickhouse-database.js";
import { MIGRATIONS } from "./migrations.js";
import type { Retention } from "./schema.js";
import { Params } from "./sql.js";
import { StoreError } from "./values.js";

/**
 * Creates the database and applies the migrations it has not recorded yet. Each applied version is recorded
 * under a dedup token, so two processes migrating at once record it once.
 */
export async function migrateClickHouse(
  db: ClickHouseDatabase,
  retention: Retention,
  cluster: string | undefined,
  log: Logger | undefined,
): Promise<void> {
  await db.command(`CREATE DATABASE IF NOT EXISTS ${db.name}${cluster ? ` ON CLUSTER ${cluster}` : ""}`);
  const target = { database: db.name, retention, cluster };
  let applied = new Set<number>();
  try {
    const params = new Params(clickhouseDialect);
    applied = new Set(
      (
        await db.rows<{ version: number }>(
          "migration lookup",
          `SELECT DISTINCT version FROM ${db.name}.schema_migrations`,
          params,
        )
      ).map((r) => Number(r.version)),
    );
  } catch (err) {
    const unknownTable = err instanceof StoreError && err.cause instanceof ClickHouseError && err.cause.code === "60";
    if (!unknownTable) throw err;
  }
  for (const migration of MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    for (const statement of migration.statements(target)) await db.command(statement);
    await db.insert(
      "schema_migrations",
      [{ version: migration.version, name: migration.name }],
      `migration-${migration.version}`,
    );
    log?.info({ version: migration.version, name: migration.name }, "applied schema migration");
  }
}
