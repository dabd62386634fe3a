import type { TableDef } from "./schema.js";

// The fleet server's persistent state (fleet/): its agents' inventory, the configuration revisions it has
// served, its rollouts and its own progress, as versioned JSON records. Each record is written whole; the newest
// version of a (kind, id) wins, and an empty body removes the record. Both stores keep them in one table,
// `fleet_records`, created by a migration of its own.

export type FleetRecordKind = "agent" | "revision" | "rollout" | "state";

export interface FleetRecord {
  kind: FleetRecordKind;
  id: string;
  /** Version: a write with an older updatedMs than the stored one does not replace it. */
  updatedMs: number;
  /** JSON text; "" removes the record. */
  body: string;
}

/** What a Store offers the fleet server (storage/store.ts). */
export interface FleetRecords {
  putFleetRecords(records: FleetRecord[]): Promise<void>;
  /** The newest version of each record of `kind` (of the one `id`, when given) that is not removed. */
  fleetRecords(kind: FleetRecordKind, id?: string): Promise<FleetRecord[]>;
}

export const FLEET_RECORD_KINDS: FleetRecordKind[] = ["agent", "revision", "rollout", "state"];

/**
 * The ClickHouse table: merges keep the newest version per (kind, id); reads take argMax per id over what is not
 * merged yet, so they need no FINAL and work through a Distributed table too.
 */
export const FLEET_TABLES: TableDef[] = [
  {
    name: "fleet_records",
    columns: ["kind LowCardinality(String)", "id String", "updated_ms Int64", "body String CODEC(ZSTD(1))"],
    engine: "ReplacingMergeTree",
    engineArgs: ["updated_ms"],
    orderBy: "(kind, id)",
    shardBy: "cityHash64(kind, id)",
  },
];

export const DUCKDB_FLEET_DDL = `CREATE TABLE IF NOT EXISTS fleet_records (
  kind VARCHAR NOT NULL,
  id VARCHAR NOT NULL,
  updated_ms BIGINT NOT NULL,
  body VARCHAR NOT NULL,
  PRIMARY KEY (kind, id)
)`;

/** The newest version per id of one kind, on either store (both accept this SQL). */
export function fleetRecordsQuery(table: string, kindPlaceholder: string, idPlaceholder?: string): string {
  return `SELECT id, argMax(body, updated_ms) AS newest, max(updated_ms) AS version FROM ${table}
WHERE kind = ${kindPlaceholder}${idPlaceholder === undefined ? "" : ` AND id = ${idPlaceholder}`}
GROUP BY id ORDER BY id`;
}

/** One version per (kind, id), the newest: a store's single write may not update one row twice. */
export function newestFleetRecords(records: FleetRecord[]): FleetRecord[] {
  const newest = new Map<string, FleetRecord>();
  for (const record of records) {
    const key = `${record.kind}\u0000${record.id}`;
    const seen = newest.get(key);
    if (seen === undefined || record.updatedMs >= seen.updatedMs) newest.set(key, record);
  }
  return [...newest.values()];
}

/** Rows as either store returns them (ClickHouse quotes 64-bit integers in JSON) as records, removed ones left out. */
export function fleetRecordsOf(
  kind: FleetRecordKind,
  rows: { id: string; version: number | string | bigint; newest: string }[],
): FleetRecord[] {
  return rows
    .filter((r) => r.newest !== "")
    .map((r) => ({ kind, id: r.id, updatedMs: Number(r.version), body: r.newest }));
}
