import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  type DuckDBConnection,
  DuckDBInstance,
  type DuckDBMapValue,
  type DuckDBType,
  type DuckDBValue,
  jsToDuckDBValue,
} from "@duckdb/node-api";
import type { Logger } from "../common/log.js";
import { DUCKDB_MIGRATIONS } from "./duckdb-schema.js";
import { duckdbDialect, PARAM_TYPES } from "./duckdb-sql.js";
import { type Labels, labelsOf, NO_LABELS } from "../proto/labels.js";
import { rawLogRows, type RawLogRows } from "./log-columns.js";
import { SeriesColumns } from "./rows.js";
import { Params } from "./sql.js";
import { StoreError } from "./values.js";

/**
 * DuckDB's errors about the data of a write (a constraint, a value it cannot convert or hold, an appender that
 * cannot take a value); other errors (I/O, a missing table, a closed database) fail every row alike.
 */
const ROWS_REJECTED =
  /^(Constraint Error|Conversion Error|Invalid Input Error|Out of Range Error)|Failed to (append|set column)|CHECK constraint failed/;

interface Database {
  instance: DuckDBInstance;
  connection: DuckDBConnection;
}

/**
 * One DuckDB database file (or memory) with one connection, opened on first use; every operation runs after the
 * one before it, so transactions never interleave.
 */
export class DuckDBDatabase {
  private db: Promise<Database> | undefined;
  /** Every operation waits for the one before: one connection, and transactions never interleave. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly log?: Logger,
  ) {}

  private open(): Promise<Database> {
    this.db ??= (async () => {
      if (this.path !== ":memory:") mkdirSync(dirname(resolve(this.path)), { recursive: true });
      const instance = await DuckDBInstance.create(this.path);
      return { instance, connection: await instance.connect() };
    })().catch((err: unknown) => {
      this.db = undefined;
      throw err;
    });
    return this.db;
  }

  /** Runs `run` after every operation queued before it, with errors as StoreErrors. */
  serial<T>(what: string, run: (c: DuckDBConnection) => Promise<T>): Promise<T> {
    const result = this.queue.then(async () => {
      if (this.closed) throw new StoreError("DuckDB store is closed");
      try {
        return await run((await this.open()).connection);
      } catch (err) {
        if (err instanceof StoreError) throw err;
        const message = (err as Error).message;
        throw new StoreError(`DuckDB ${what} failed: ${message}`, {
          cause: err,
          rowsRejected: ROWS_REJECTED.test(message),
        });
      }
    });
    this.queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async transaction<T>(c: DuckDBConnection, run: () => Promise<T>): Promise<T> {
    await c.run("BEGIN TRANSACTION");
    try {
      const result = await run();
      await c.run("COMMIT");
      return result;
    } catch (err) {
      try {
        await c.run("ROLLBACK");
      } catch (rollbackErr) {
        // After a failed COMMIT there may be no transaction left to roll back.
        this.log?.warn({ err: rollbackErr }, "DuckDB rollback failed");
      }
      throw err;
    }
  }

  private bound(params: Params): { values: DuckDBValue[]; types: DuckDBType[] } {
    const types = params.types.map((name) => {
      const type = PARAM_TYPES[name];
      if (!type) throw new StoreError(`no DuckDB type for parameter type ${name}`);
      return type;
    });
    return { values: params.values.map((value, i) => jsToDuckDBValue(value as never, types[i]!)), types };
  }

  async rows<T>(c: DuckDBConnection, sql: string, params: Params): Promise<T[]> {
    const { values, types } = this.bound(params);
    const reader = await c.runAndReadAll(sql, values, types);
    return reader.getRowObjectsJS() as T[];
  }

  /**
   * A query's rows, each a UBIGINT fingerprint and `width` DOUBLE columns, read from the result's column vectors
   * (storage/rows.ts SeriesColumns says why).
   */
  async seriesColumns(c: DuckDBConnection, sql: string, params: Params, width: number): Promise<SeriesColumns> {
    const { values, types } = this.bound(params);
    const result = await c.run(sql, values, types);
    const data = new SeriesColumns(result.rowCount, width);
    let previous: bigint | undefined;
    let row = 0;
    for (let i = 0; i < result.chunkCount; i++) {
      const chunk = result.getChunk(i);
      const fingerprints = chunk.getColumnVector(0);
      const vectors = data.columns.map((_, c) => chunk.getColumnVector(1 + c));
      // rowCount is a native call: read once per chunk, not once per row.
      const rows = chunk.rowCount;
      for (let j = 0; j < rows; j++, row++) {
        const fingerprint = fingerprints.getItem(j) as bigint;
        if (fingerprint !== previous) {
          previous = fingerprint;
          data.startSeries(fingerprint.toString(), row);
        }
        for (let c = 0; c < width; c++) data.columns[c]![row] = vectors[c]!.getItem(j) as number;
      }
    }
    return data;
  }

  /**
   * A log read's rows from the result's column vectors (no object per row): its columns are the fingerprint, the
   * timestamp, the line, the metadata and the metadata's cardinality, which spares empty maps their conversion.
   */
  async logRows(c: DuckDBConnection, sql: string, params: Params): Promise<RawLogRows> {
    const { values, types } = this.bound(params);
    const result = await c.run(sql, values, types);
    const rows = rawLogRows();
    for (let i = 0; i < result.chunkCount; i++) {
      const chunk = result.getChunk(i);
      const [fingerprints, ts, lines, metadata, sizes] = [0, 1, 2, 3, 4].map((column) => chunk.getColumnVector(column));
      const count = chunk.rowCount;
      for (let j = 0; j < count; j++) {
        rows.fingerprints.push(fingerprints!.getItem(j) as bigint);
        rows.ts.push(ts!.getItem(j) as bigint);
        rows.lines.push(lines!.getItem(j) as string);
        rows.metadata.push(sizes!.getItem(j) === 0n ? NO_LABELS : mapRecord(metadata!.getItem(j) as DuckDBMapValue));
      }
    }
    return rows;
  }

  async migrate(): Promise<void> {
    await this.serial("migration", async (c) => {
      await c.run(
        `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)`,
      );
      const applied = new Set(
        (
          await this.rows<{ version: number }>(c, "SELECT version FROM schema_migrations", new Params(duckdbDialect))
        ).map((r) => Number(r.version)),
      );
      for (const migration of DUCKDB_MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        await this.transaction(c, async () => {
          for (const statement of migration.statements) await c.run(statement);
          const params = new Params(duckdbDialect);
          await this.rows(
            c,
            `INSERT INTO schema_migrations (version, name) VALUES (${params.bind(migration.version, "Int64")}, ${params.bind(migration.name, "String")})`,
            params,
          );
        });
        this.log?.info({ version: migration.version, name: migration.name }, "applied schema migration");
      }
    });
  }

  async close(): Promise<void> {
    const done = this.queue.then(async () => {
      if (this.closed) return;
      this.closed = true;
      const db = this.db;
      this.db = undefined;
      if (!db) return;
      let opened: Database;
      try {
        opened = await db;
      } catch {
        return;
      }
      opened.connection.closeSync();
      opened.instance.closeSync();
    });
    this.queue = done.catch(() => undefined);
    await done;
  }
}

function mapRecord(map: DuckDBMapValue): Labels {
  return labelsOf(map.entries.map((entry): [string, string] => [String(entry.key), String(entry.value)]));
}
