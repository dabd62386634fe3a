import { DUCKDB_FLEET_DDL } from "./fleet-records.js";
// The embedded store's tables (storage/duckdb.ts), as ClickHouse's (storage/schema.ts) but with upserted
// aggregates instead of materialized views and merges, and a ledger of written batches for idempotent appends.

export const STRING_MAP = "MAP(VARCHAR, VARCHAR)";

const ROLLUP_COLUMNS = `tenant VARCHAR NOT NULL,
  fingerprint UBIGINT NOT NULL,
  bucket_ms BIGINT NOT NULL,
  min DOUBLE NOT NULL,
  max DOUBLE NOT NULL,
  sum DOUBLE NOT NULL,
  count UBIGINT NOT NULL,
  last DOUBLE NOT NULL,
  last_time_ms BIGINT NOT NULL,
  increase DOUBLE NOT NULL,
  PRIMARY KEY (tenant, fingerprint, bucket_ms)`;

/** Schema versions in order; like storage/migrations.ts, never edit a released one, add the next. */
export const DUCKDB_MIGRATIONS: { version: number; name: string; statements: string[] }[] = [
  {
    version: 1,
    name: "logs, streams index, samples, 1m and 1h rollups, log volume, batch ledger",
    statements: [
      `CREATE TABLE IF NOT EXISTS logs (
  tenant VARCHAR NOT NULL,
  fingerprint UBIGINT NOT NULL,
  timestamp_ns BIGINT NOT NULL,
  labels ${STRING_MAP} NOT NULL,
  line VARCHAR NOT NULL,
  metadata ${STRING_MAP} NOT NULL,
  batch_id VARCHAR NOT NULL
)`,
      `CREATE TABLE IF NOT EXISTS streams (
  tenant VARCHAR NOT NULL,
  signal VARCHAR NOT NULL,
  fingerprint UBIGINT NOT NULL,
  labels ${STRING_MAP} NOT NULL,
  kind UTINYINT NOT NULL,
  first_seen_ms BIGINT NOT NULL,
  last_seen_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant, signal, fingerprint)
)`,
      `CREATE TABLE IF NOT EXISTS samples (
  tenant VARCHAR NOT NULL,
  fingerprint UBIGINT NOT NULL,
  timestamp_ms BIGINT NOT NULL,
  value DOUBLE NOT NULL,
  batch_id VARCHAR NOT NULL
)`,
      `CREATE TABLE IF NOT EXISTS rollups_1m (\n  ${ROLLUP_COLUMNS}\n)`,
      `CREATE TABLE IF NOT EXISTS rollups_1h (\n  ${ROLLUP_COLUMNS}\n)`,
      `CREATE TABLE IF NOT EXISTS log_volume_1m (
  tenant VARCHAR NOT NULL,
  fingerprint UBIGINT NOT NULL,
  bucket_ms BIGINT NOT NULL,
  entries UBIGINT NOT NULL,
  bytes UBIGINT NOT NULL,
  PRIMARY KEY (tenant, fingerprint, bucket_ms)
)`,
      // One row per batch written, with the newest time among its rows: retention forgets a batch once all
      // of its rows are gone (as ClickHouse, whose replay check looks for the rows themselves).
      `CREATE TABLE IF NOT EXISTS ingested_batches (
  kind VARCHAR NOT NULL,
  batch_id VARCHAR NOT NULL,
  max_time_ms BIGINT NOT NULL,
  PRIMARY KEY (kind, batch_id)
)`,
    ],
  },
  {
    version: 2,
    name: "fleet records: the fleet server's inventory, revisions and rollouts",
    statements: [DUCKDB_FLEET_DDL],
  },
  {
    version: 3,
    name: "metric family metadata (type, help, unit)",
    statements: [
      `CREATE TABLE IF NOT EXISTS metric_metadata (
  tenant VARCHAR NOT NULL,
  metric_family VARCHAR NOT NULL,
  type VARCHAR NOT NULL,
  help VARCHAR NOT NULL,
  unit VARCHAR NOT NULL,
  last_seen_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant, metric_family, type, help, unit)
)`,
    ],
  },
  {
    // As ClickHouse's migration 5; rows written before it read as arrived together.
    version: 4,
    name: "logs with their arrival order (batch creation time and entry index) for entries sharing a timestamp",
    statements: [
      "ALTER TABLE logs ADD COLUMN IF NOT EXISTS arrival BIGINT DEFAULT 0",
      "ALTER TABLE logs ADD COLUMN IF NOT EXISTS entry UINTEGER DEFAULT 0",
    ],
  },
  {
    // As ClickHouse's migration 6; rows written before it read as written at 0, which a catalog's first load reads.
    version: 5,
    name: "write times on the streams index and the log volume, which the query service's index catalog follows",
    statements: [
      "ALTER TABLE streams ADD COLUMN IF NOT EXISTS written_ms BIGINT DEFAULT 0",
      "ALTER TABLE log_volume_1m ADD COLUMN IF NOT EXISTS written_ms BIGINT DEFAULT 0",
    ],
  },
];
