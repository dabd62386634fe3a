import { FLEET_TABLES } from "./fleet-records.js";
import { alterStatements, schemaStatements, type SchemaTarget, TABLES } from "./schema.js";

/**
 * Schema versions in order. A migration's statements are idempotent, so a start that died half way through
 * one simply runs it again; `schema_migrations` records each version once it is complete. Never edit a
 * released migration: add the next version (ALTER ... ADD COLUMN IF NOT EXISTS and the like).
 */
export interface Migration {
  version: number;
  name: string;
  statements(target: SchemaTarget): string[];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "logs, streams index, samples, rollup partials, 1m and 1h rollups, log volume",
    statements: (target) => schemaStatements(target).slice(1),
  },
  {
    // Version 1 as first released created both; a schema created since (from the current TABLES) lacks them
    // already, and IF EXISTS makes this a no-op there.
    version: 2,
    name: "logs without the per-row copy of the stream labels and without the n-gram line index",
    statements: (target) =>
      alterStatements(target, "logs", {
        data: ["DROP INDEX IF EXISTS line_ngrams"],
        columns: ["DROP COLUMN IF EXISTS labels"],
      }),
  },
  {
    version: 3,
    name: "fleet records: the fleet server's inventory, revisions and rollouts",
    statements: (target) => schemaStatements(target, FLEET_TABLES, []).slice(1),
  },
  {
    version: 4,
    name: "metric family metadata (type, help, unit)",
    statements: (target) =>
      schemaStatements(
        target,
        TABLES.filter((table) => table.name === "metric_metadata"),
        [],
      ).slice(1),
  },
];
