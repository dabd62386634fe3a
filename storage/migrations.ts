import { FLEET_TABLES } from "./fleet-records.js";
import {
  alterStatements,
  LOG_ARRIVAL_COLUMNS,
  schemaStatements,
  type SchemaTarget,
  TABLES,
  WRITTEN_COLUMN,
  WRITTEN_INDEX,
} from "./schema.js";

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
  {
    // Rows written before it read as arrived together (0, 0): their ties keep the old, unspecified order.
    version: 5,
    name: "logs with their arrival order (batch creation time and entry index) for entries sharing a timestamp",
    statements: (target) =>
      alterStatements(target, "logs", {
        columns: LOG_ARRIVAL_COLUMNS.map((column) => `ADD COLUMN IF NOT EXISTS ${column}`),
      }),
  },
  {
    // Rows written before it are stamped when the mutation rewrites their parts: a catalog's first load reads them
    // all anyway, and until then they read as written now, which costs a catalog re-reads, not wrong answers.
    version: 6,
    name: "write times on the streams index and the log volume, which the query service's index catalog follows",
    statements: (target) => [
      ...["streams", "log_volume_1m"].flatMap((table) =>
        alterStatements(target, table, {
          columns: [`ADD COLUMN IF NOT EXISTS ${WRITTEN_COLUMN}`],
        }),
      ),
      ...["streams", "log_volume_1m"].flatMap((table) =>
        alterStatements(target, table, {
          data: [
            ...(table === "log_volume_1m" ? [`ADD ${WRITTEN_INDEX.replace(/^INDEX /, "INDEX IF NOT EXISTS ")}`] : []),
            "MATERIALIZE COLUMN written",
          ],
        }),
      ),
    ],
  },
];
