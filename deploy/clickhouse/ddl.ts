import { configSchema } from "../../config.js";
import { FLEET_TABLES } from "../../storage/fleet-records.js";
import { schemaStatements } from "../../storage/schema.js";

export interface DdlOptions {
  database?: string;
  /** Cluster name for the replicated layout; absent for a single server. */
  cluster?: string;
}

/**
 * Bifrost's ClickHouse schema as one SQL script (statements ending in `;`), for clickhouse-client
 * --multiquery. Bifrost applies the same statements itself at start-up; the script is for operators who
 * create the schema ahead, or review it. TTLs are the configuration's default retention.
 */
export function renderDdl(options: DdlOptions = {}): string {
  const defaults = configSchema().parse({});
  const target = {
    database: options.database ?? defaults.clickhouse.database,
    retention: defaults.storage.retention,
    ...(options.cluster === undefined ? {} : { cluster: options.cluster }),
  };
  const layout = options.cluster === undefined ? "a single server" : `the cluster ${options.cluster}`;
  const header = `-- Bifrost's ClickHouse schema for ${layout}, rendered by deploy/clickhouse/print-ddl from storage/schema.ts.\n`;
  return (
    header +
    [...schemaStatements(target), ...schemaStatements(target, FLEET_TABLES, []).slice(1)]
      .map((statement) => `\n${statement};\n`)
      .join("")
  );
}
