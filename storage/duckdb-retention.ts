import type { DuckDBDatabase } from "./duckdb-database.js";
import { type BatchKind, duckdbDialect } from "./duckdb-sql.js";
import type { Retention } from "./schema.js";
import { Params } from "./sql.js";

/**
 * The embedded store's retention (Store.enforceRetention): what is older than each kind's days deleted in one
 * transaction, and the batch ledger's entries whose rows are all gone with it.
 */
export async function deleteExpired(db: DuckDBDatabase, r: Retention, nowMs: number): Promise<void> {
  // Cutoffs in whole seconds, as ClickHouse compares with toDateTime(...).
  const cutoffMs = (days: number) => Math.floor((nowMs - days * 86_400_000) / 1000) * 1000;
  const rollupsDays = Math.max(r.rollups_1m_days, r.rollups_1h_days);
  const deletes: [string, string, bigint | number][] = [
    ["logs", "timestamp_ns", BigInt(cutoffMs(r.logs_days)) * 1_000_000n],
    ["log_volume_1m", "bucket_ms", cutoffMs(r.logs_days)],
    ["samples", "timestamp_ms", cutoffMs(r.samples_days)],
    ["rollups_1m", "bucket_ms", cutoffMs(r.rollups_1m_days)],
    ["rollups_1h", "bucket_ms", cutoffMs(r.rollups_1h_days)],
    // Metadata lasts as long as any data of its family may.
    ["metric_metadata", "last_seen_ms", cutoffMs(Math.max(r.samples_days, rollupsDays))],
  ];
  const ledger: [BatchKind, number][] = [
    ["logs", cutoffMs(r.logs_days)],
    ["samples", cutoffMs(r.samples_days)],
    ["rollups", cutoffMs(rollupsDays)],
  ];
  await db.serial("retention", (c) =>
    db.transaction(c, async () => {
      for (const [table, column, cutoff] of deletes) {
        const params = new Params(duckdbDialect);
        await db.rows(c, `DELETE FROM ${table} WHERE ${column} < ${params.bind(cutoff, "Int64")}`, params);
      }
      for (const [kind, cutoff] of ledger) {
        const params = new Params(duckdbDialect);
        await db.rows(
          c,
          `DELETE FROM ingested_batches WHERE kind = ${params.bind(kind, "String")} AND max_time_ms < ${params.bind(cutoff, "Int64")}`,
          params,
        );
      }
    }),
  );
}
