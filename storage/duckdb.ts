import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  BIGINT,
  DOUBLE,
  type DuckDBConnection,
  DuckDBDataChunkWriter,
  DuckDBInstance,
  type DuckDBType,
  type DuckDBValue,
  type JS,
  jsToDuckDBValue,
  JSToDuckDBValueConverter,
  LIST,
  MAP,
  UBIGINT,
  UTINYINT,
  VARCHAR,
} from "@duckdb/node-api";
import type { Labels, LogStream } from "../proto/batch.js";
import type { Logger } from "../common/log.js";
import {
  DUCKDB_FLEET_DDL,
  type FleetRecord,
  type FleetRecordKind,
  fleetRecordsOf,
  fleetRecordsQuery,
  newestFleetRecords,
} from "./fleet-records.js";
import type { Retention } from "./schema.js";
import { type Dialect, lineFilterConditions, Params, selectorsCondition } from "./sql.js";
import type {
  AppendResult,
  LabelMatcher,
  LogBatch,
  LogCountSelect,
  LogCountSeries,
  LogSelect,
  Resolution,
  RollupBatch,
  RollupPoints,
  RollupSelect,
  SampleProbe,
  SampleProbeSeries,
  SampleBatch,
  SamplePoints,
  SampleSelect,
  SeriesSelect,
  SignalKind,
  Store,
} from "./store.js";
import { RESOLUTION_MS } from "./store.js";
import type { IndexedStream, LogRow, RollupRow, SampleRow, StreamRef } from "./rows.js";
import {
  countSeries,
  groupByStream,
  INEXACT_BOUND,
  groupedCountSeries,
  logRows,
  rollupPoints,
  rollupRows,
  samplePoints,
  sampleRows,
  SeriesColumns,
  streamLabelArrays,
  streamSpans,
  StreamsIndexReads,
} from "./rows.js";
import { nsToMsCeil, nsToMsFloor, StoreError, toLabels } from "./values.js";

// The embedded store for `bifrost all`: one DuckDB database file (or memory), one connection, every operation
// run one after the other. It answers every call as the ClickHouse store does (storage/clickhouse.ts); what
// ClickHouse does with materialized views and merges, it does on write:
//
// - a ledger of written batch ids per kind makes appends idempotent: the check and the writes are one
//   transaction, so a replayed batch changes nothing;
// - the streams index, the 1m and 1h rollups and the per-minute log volume are upserted (min/max, sums, the
//   last value by time), which is what ClickHouse's merges converge to.
//
// Times are integers: nanoseconds for log timestamps, milliseconds everywhere else (rollup and volume buckets
// aligned as ClickHouse's DateTime columns align them).

export interface DuckDBStoreOptions {
  /** ':memory:' or a database file; its directory is created if missing. */
  path: string;
  retention: Retention;
  log?: Logger;
}

const duckdbDialect: Dialect = {
  placeholder: (index) => `$${index + 1}`,
  // A missing key reads as NULL.
  label: (column, name) => `coalesce(${column}[${name}], '')`,
  // Unanchored RE2 (matchers arrive anchored); `s` lets `.` match a line break, as ClickHouse's match() does.
  regexMatch: (subject, pattern) => `regexp_matches(${subject}, ${pattern}, 's')`,
  contains: (subject, needle) => `contains(${subject}, ${needle})`,
};

/** DuckDB types for the (ClickHouse-named) parameter types that statements bind. */
const PARAM_TYPES: Record<string, DuckDBType> = {
  String: VARCHAR,
  Int64: BIGINT,
  UInt64: UBIGINT,
  "Array(String)": LIST(VARCHAR),
  "Array(Int64)": LIST(BIGINT),
  "Array(UInt64)": LIST(UBIGINT),
  "Array(UInt8)": LIST(UTINYINT),
  "Array(Float64)": LIST(DOUBLE),
  "Array(Map(String, String))": LIST(MAP(VARCHAR, VARCHAR)),
};

const STRING_MAP = "MAP(VARCHAR, VARCHAR)";

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
const MIGRATIONS: { version: number; name: string; statements: string[] }[] = [
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
];

type BatchKind = "logs" | "samples" | "rollups";

type MapEntries = { key: string; value: string }[];

const NO_ENTRIES: MapEntries = [];

function mapEntries(labels: Labels): MapEntries {
  const entries: MapEntries = [];
  for (const key in labels) entries.push({ key, value: labels[key]! });
  return entries.length === 0 ? NO_ENTRIES : entries;
}

/** A MAP column as read back (an array of key/value entries), as prototype-free Labels. */
function mapLabels(value: JS): Labels {
  return toLabels((value as MapEntries).map((e): [string, string] => [e.key, e.value]));
}

/** The rollup table of a resolution; anything else is refused (as ClickHouse's Enum column refuses it). */
function rollupTable(resolution: Resolution): string {
  if (!Object.hasOwn(RESOLUTION_MS, resolution))
    throw new StoreError(`unknown rollup resolution ${JSON.stringify(resolution)}`);
  return `rollups_${resolution}`;
}

/** Milliseconds floored to whole seconds, as ClickHouse stores a DateTime bucket. */
function secondMs(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/** A millisecond bound as ClickHouse's toDateTime(intDiv(ms, 1000)) compares it, in milliseconds. */
function secondBoundMs(ms: number): number {
  return Math.trunc(ms / 1000) * 1000;
}

interface Database {
  instance: DuckDBInstance;
  connection: DuckDBConnection;
}

/** The embedded store: DuckDB through @duckdb/node-api, in one process with no other service. */
export class DuckDBStore extends StreamsIndexReads implements Store {
  private db: Promise<Database> | undefined;
  /** Every operation waits for the one before: one connection, and transactions never interleave. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: DuckDBStoreOptions) {
    super();
  }

  private open(): Promise<Database> {
    this.db ??= (async () => {
      if (this.options.path !== ":memory:") mkdirSync(dirname(resolve(this.options.path)), { recursive: true });
      const instance = await DuckDBInstance.create(this.options.path);
      return { instance, connection: await instance.connect() };
    })().catch((err: unknown) => {
      this.db = undefined;
      throw err;
    });
    return this.db;
  }

  /** Runs `run` after every operation queued before it, with errors as StoreErrors. */
  private serial<T>(what: string, run: (c: DuckDBConnection) => Promise<T>): Promise<T> {
    const result = this.queue.then(async () => {
      if (this.closed) throw new StoreError("DuckDB store is closed");
      try {
        return await run((await this.open()).connection);
      } catch (err) {
        if (err instanceof StoreError) throw err;
        throw new StoreError(`DuckDB ${what} failed: ${(err as Error).message}`, { cause: err });
      }
    });
    this.queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  private async transaction<T>(c: DuckDBConnection, run: () => Promise<T>): Promise<T> {
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
        this.options.log?.warn({ err: rollbackErr }, "DuckDB rollback failed");
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

  private async rows<T>(c: DuckDBConnection, sql: string, params: Params): Promise<T[]> {
    const { values, types } = this.bound(params);
    const reader = await c.runAndReadAll(sql, values, types);
    return reader.getRowObjectsJS() as T[];
  }

  /**
   * A query's rows, each a UBIGINT fingerprint and `width` DOUBLE columns, read from the result's column vectors
   * (storage/rows.ts SeriesColumns says why).
   */
  private async seriesColumns(c: DuckDBConnection, sql: string, params: Params, width: number): Promise<SeriesColumns> {
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
      for (const migration of MIGRATIONS) {
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
        this.options.log?.info({ version: migration.version, name: migration.name }, "applied schema migration");
      }
    });
  }

  /**
   * Writes the batches that the ledger does not hold yet, and records them, in one transaction. Counts as
   * the ClickHouse store does: a batch with rows written now is written, a non-empty batch already stored (or
   * earlier in the same call) is a duplicate, an empty batch is neither.
   */
  private appendOnce<Row extends StreamRef>(
    kind: BatchKind,
    batches: { id: string; rows: Row[] }[],
    write: (c: DuckDBConnection, rows: Row[]) => Promise<void>,
  ): Promise<AppendResult> {
    const nonEmpty = batches.filter((b) => b.rows.length > 0);
    if (nonEmpty.length === 0) return Promise.resolve({ written: 0, duplicates: 0, rows: 0 });
    return this.serial(`${kind} append`, (c) =>
      this.transaction(c, async () => {
        const params = new Params(duckdbDialect);
        const stored = new Set(
          (
            await this.rows<{ batch_id: string }>(
              c,
              `SELECT batch_id FROM ingested_batches
               WHERE kind = ${params.bind(kind, "String")} AND batch_id IN (SELECT unnest(${params.bind(
                 nonEmpty.map((b) => b.id),
                 "Array(String)",
               )}))`,
              params,
            )
          ).map((r) => r.batch_id),
        );
        const fresh: { id: string; rows: Row[] }[] = [];
        let duplicates = 0;
        for (const batch of nonEmpty) {
          if (stored.has(batch.id)) {
            duplicates++;
          } else {
            stored.add(batch.id);
            fresh.push(batch);
          }
        }
        if (fresh.length === 0) return { written: 0, duplicates, rows: 0 };
        const rows = fresh.flatMap((b) => b.rows);
        await write(c, rows);
        await this.indexStreams(c, kind === "logs" ? "logs" : "metrics", rows);
        await this.recordBatches(c, kind, fresh);
        return { written: fresh.length, duplicates, rows: rows.length };
      }),
    );
  }

  private async recordBatches(
    c: DuckDBConnection,
    kind: BatchKind,
    batches: { id: string; rows: StreamRef[] }[],
  ): Promise<void> {
    const params = new Params(duckdbDialect);
    const newest = batches.map((b) => b.rows.reduce((max, row) => Math.max(max, row.timeMs), -Infinity));
    await this.rows(
      c,
      `INSERT INTO ingested_batches (kind, batch_id, max_time_ms)
       SELECT ${params.bind(kind, "String")}, unnest(${params.bind(
         batches.map((b) => b.id),
         "Array(String)",
       )}), unnest(${params.bind(newest, "Array(Int64)")})`,
      params,
    );
  }

  /** Upserts one index entry per stream of the rows, widening its [first_seen, last_seen] span. */
  private async indexStreams(c: DuckDBConnection, signal: SignalKind, rows: StreamRef[]): Promise<void> {
    const spans = streamSpans(rows);
    if (spans.length === 0) return;
    const params = new Params(duckdbDialect);
    await this.rows(
      c,
      `INSERT INTO streams AS s (tenant, signal, fingerprint, labels, kind, first_seen_ms, last_seen_ms)
       SELECT unnest(${params.bind(
         spans.map((s) => s.tenant),
         "Array(String)",
       )}), ${params.bind(signal, "String")},
              unnest(${params.bind(
                spans.map((s) => BigInt(s.fingerprint)),
                "Array(UInt64)",
              )}),
              unnest(${params.bind(
                spans.map((s) => mapEntries(s.labels)),
                "Array(Map(String, String))",
              )}),
              unnest(${params.bind(
                spans.map((s) => s.kind),
                "Array(UInt8)",
              )}),
              unnest(${params.bind(
                spans.map((s) => s.minMs),
                "Array(Int64)",
              )}), unnest(${params.bind(
                spans.map((s) => s.maxMs),
                "Array(Int64)",
              )})
       ON CONFLICT (tenant, signal, fingerprint) DO UPDATE SET
         first_seen_ms = least(s.first_seen_ms, excluded.first_seen_ms), last_seen_ms = greatest(s.last_seen_ms, excluded.last_seen_ms)`,
      params,
    );
  }

  /** Appends rows to `table` through an appender, inside the open transaction. */
  private async appendRows(c: DuckDBConnection, table: string, rows: JS[][]): Promise<void> {
    const appender = await c.createAppender(table);
    try {
      const writer = DuckDBDataChunkWriter.forAppender(appender, { converter: JSToDuckDBValueConverter });
      for (const row of rows) writer.appendRow(row);
      writer.flush();
    } finally {
      appender.closeSync();
    }
  }

  async appendLogs(batches: LogBatch[]): Promise<AppendResult> {
    return this.appendOnce<LogRow>(
      "logs",
      batches.map((batch) => ({ id: batch.id, rows: logRows(batch) })),
      async (c, rows) => {
        // Rows of one stream share their labels object: convert each stream's labels once.
        const streams = new Map<Labels, { fingerprint: bigint; labels: MapEntries }>();
        const volume = new Map<
          string,
          { tenant: string; fingerprint: bigint; bucketMs: number; entries: number; bytes: number }
        >();
        const out: JS[][] = [];
        for (const row of rows) {
          let stream = streams.get(row.labels);
          if (!stream) {
            stream = { fingerprint: BigInt(row.fingerprint), labels: mapEntries(row.labels) };
            streams.set(row.labels, stream);
          }
          out.push([
            row.tenant,
            stream.fingerprint,
            row.timeNs,
            stream.labels,
            row.line,
            mapEntries(row.metadata),
            row.batchId,
          ]);
          const bucketMs = Math.floor(row.timeMs / 60_000) * 60_000;
          const key = `${row.tenant}\u0000${row.fingerprint}\u0000${bucketMs}`;
          const bucket = volume.get(key) ?? {
            tenant: row.tenant,
            fingerprint: stream.fingerprint,
            bucketMs,
            entries: 0,
            bytes: 0,
          };
          bucket.entries++;
          bucket.bytes += Buffer.byteLength(row.line);
          volume.set(key, bucket);
        }
        await this.appendRows(c, "logs", out);
        const buckets = [...volume.values()];
        const params = new Params(duckdbDialect);
        await this.rows(
          c,
          `INSERT INTO log_volume_1m AS v (tenant, fingerprint, bucket_ms, entries, bytes)
           SELECT unnest(${params.bind(
             buckets.map((b) => b.tenant),
             "Array(String)",
           )}), unnest(${params.bind(
             buckets.map((b) => b.fingerprint),
             "Array(UInt64)",
           )}),
                  unnest(${params.bind(
                    buckets.map((b) => b.bucketMs),
                    "Array(Int64)",
                  )}), unnest(${params.bind(
                    buckets.map((b) => b.entries),
                    "Array(UInt64)",
                  )}),
                  unnest(${params.bind(
                    buckets.map((b) => b.bytes),
                    "Array(UInt64)",
                  )})
           ON CONFLICT (tenant, fingerprint, bucket_ms) DO UPDATE SET entries = v.entries + excluded.entries, bytes = v.bytes + excluded.bytes`,
          params,
        );
      },
    );
  }

  async appendSamples(batches: SampleBatch[]): Promise<AppendResult> {
    return this.appendOnce<SampleRow>(
      "samples",
      batches.map((batch) => ({ id: batch.id, rows: sampleRows(batch) })),
      async (c, rows) => {
        const fingerprints = new Map<string, bigint>();
        const out: JS[][] = [];
        for (const row of rows) {
          let fingerprint = fingerprints.get(row.fingerprint);
          if (fingerprint === undefined) {
            fingerprint = BigInt(row.fingerprint);
            fingerprints.set(row.fingerprint, fingerprint);
          }
          out.push([row.tenant, fingerprint, row.timeMs, row.value, row.batchId]);
        }
        await this.appendRows(c, "samples", out);
      },
    );
  }

  async appendRollups(batches: RollupBatch[]): Promise<AppendResult> {
    for (const batch of batches) for (const partial of batch.partials) rollupTable(partial.resolution);
    return this.appendOnce<RollupRow>(
      "rollups",
      batches.map((batch) => ({ id: batch.id, rows: rollupRows(batch) })),
      async (c, rows) => {
        for (const resolution of Object.keys(RESOLUTION_MS) as Resolution[]) {
          const partials = rows.filter((row) => row.resolution === resolution);
          if (partials.length === 0) continue;
          const params = new Params(duckdbDialect);
          const list = (type: string, of: (row: RollupRow) => unknown) =>
            `unnest(${params.bind(partials.map(of), type)})`;
          // Partials of one bucket in this call merge first (an upsert may touch a row only once), then into
          // the stored bucket: the last value is the one with the greatest time, the earlier one on a tie.
          await this.rows(
            c,
            `INSERT INTO ${rollupTable(resolution)} AS r (tenant, fingerprint, bucket_ms, min, max, sum, count, last, last_time_ms, increase)
             SELECT tenant, fingerprint, bucket_ms, min(p_min), max(p_max), sum(p_sum), sum(p_count)::UBIGINT, arg_max(p_last, p_last_time),
                    max(p_last_time), sum(p_increase)
             FROM (SELECT ${list("Array(String)", (r) => r.tenant)} AS tenant, ${list("Array(UInt64)", (r) => BigInt(r.fingerprint))} AS fingerprint,
                          ${list("Array(Int64)", (r) => secondMs(r.timeMs))} AS bucket_ms, ${list("Array(Float64)", (r) => r.min)} AS p_min,
                          ${list("Array(Float64)", (r) => r.max)} AS p_max, ${list("Array(Float64)", (r) => r.sum)} AS p_sum,
                          ${list("Array(UInt64)", (r) => r.count)} AS p_count, ${list("Array(Float64)", (r) => r.last)} AS p_last,
                          ${list("Array(Int64)", (r) => r.lastTimeMs)} AS p_last_time, ${list("Array(Float64)", (r) => r.increase)} AS p_increase)
             GROUP BY tenant, fingerprint, bucket_ms
             ON CONFLICT (tenant, fingerprint, bucket_ms) DO UPDATE SET
               min = least(r.min, excluded.min), max = greatest(r.max, excluded.max), sum = r.sum + excluded.sum, count = r.count + excluded.count,
               last = CASE WHEN excluded.last_time_ms > r.last_time_ms THEN excluded.last ELSE r.last END,
               last_time_ms = greatest(r.last_time_ms, excluded.last_time_ms), increase = r.increase + excluded.increase`,
            params,
          );
        }
      },
    );
  }

  /** The streams or series of a signal matching the selectors and seen in [startMs, endMs). */
  private async findStreams(
    c: DuckDBConnection,
    tenant: string,
    signal: SignalKind,
    selectors: LabelMatcher[][],
    startMs: number,
    endMs: number,
  ): Promise<IndexedStream[]> {
    const params = new Params(duckdbDialect);
    const rows = await this.rows<{ fp: bigint; labels: JS; kind: number }>(
      c,
      `SELECT fingerprint AS fp, labels, kind FROM streams
       WHERE tenant = ${params.bind(tenant, "String")} AND signal = ${params.bind(signal, "String")}
         AND last_seen_ms >= ${params.bind(startMs, "Int64")} AND first_seen_ms < ${params.bind(endMs, "Int64")}
         AND (${selectorsCondition(duckdbDialect, params, "labels", selectors)})`,
      params,
    );
    return rows.map((r) => ({ fingerprint: r.fp.toString(), labels: mapLabels(r.labels), kind: Number(r.kind) }));
  }

  protected override lookupStreams(select: SeriesSelect): Promise<IndexedStream[]> {
    return this.serial("stream lookup", (c) =>
      this.findStreams(c, select.tenant, select.signal, select.selectors, select.startMs, select.endMs),
    );
  }

  /** The WHERE conditions for log rows of these streams in [startNs, endNs) passing the line filters. */
  private logConditions(
    params: Params,
    select: LogSelect | LogCountSelect,
    streams: IndexedStream[],
    start: string,
  ): string[] {
    return [
      `tenant = ${params.bind(select.tenant, "String")}`,
      `fingerprint IN (SELECT unnest(${params.bind(
        streams.map((s) => BigInt(s.fingerprint)),
        "Array(UInt64)",
      )}))`,
      `timestamp_ns >= ${start}`,
      `timestamp_ns < ${params.bind(select.endNs, "Int64")}`,
      ...lineFilterConditions(duckdbDialect, params, "line", select.lineFilters ?? []),
    ];
  }

  async selectLogs(select: LogSelect): Promise<LogStream[]> {
    return this.serial("log select", async (c) => {
      const streams = await this.findStreams(
        c,
        select.tenant,
        "logs",
        [select.matchers],
        nsToMsFloor(select.startNs),
        nsToMsCeil(select.endNs),
      );
      if (streams.length === 0 || select.limit <= 0) return [];
      const params = new Params(duckdbDialect);
      const order = select.direction === "forward" ? "ASC" : "DESC";
      const conditions = this.logConditions(params, select, streams, params.bind(select.startNs, "Int64"));
      const rows = await this.rows<{ fp: bigint; ts: bigint; line: string; metadata: JS }>(
        c,
        `SELECT fingerprint AS fp, timestamp_ns AS ts, line, metadata FROM logs WHERE ${conditions.join(" AND ")}
         ORDER BY timestamp_ns ${order}, fingerprint ${order}, line ${order}
         LIMIT ${params.bind(select.limit, "UInt64")}`,
        params,
      );
      return groupByStream(
        streams,
        rows,
        (row) => row.fp.toString(),
        (stream, rows): LogStream => ({
          labels: stream.labels,
          entries: rows.map((row) => ({ timeUnixNano: row.ts, line: row.line, metadata: mapLabels(row.metadata) })),
        }),
      );
    });
  }

  async countLogs(select: LogCountSelect): Promise<LogCountSeries[]> {
    if (select.stepNs <= 0n) throw new StoreError("step must be positive");
    return this.serial("log count", async (c) => {
      const streams = await this.findStreams(
        c,
        select.tenant,
        "logs",
        [select.matchers],
        nsToMsFloor(select.startNs),
        nsToMsCeil(select.endNs),
      );
      if (streams.length === 0) return [];
      const params = new Params(duckdbDialect);
      const start = params.bind(select.startNs, "Int64");
      const conditions = this.logConditions(params, select, streams, start);
      // Bytes are UTF-8 bytes (strlen), as ClickHouse's length() of a String.
      const bytes = select.bytes === false ? "0::BIGINT" : "sum(strlen(line))";
      const counts = `(timestamp_ns - ${start}) // ${params.bind(select.stepNs, "Int64")} AS k, count(*) AS entries, ${bytes} AS bytes`;
      const pointOf = (row: { k: bigint; entries: bigint; bytes: bigint }): LogCountSeries["points"][number] => ({
        startNs: select.startNs + row.k * select.stepNs,
        count: Number(row.entries),
        bytes: Number(row.bytes),
      });
      if (select.groupBy !== undefined) {
        const names = select.groupBy;
        const groups = this.groupColumns(params, streams, names);
        const rows = await this.rows<Record<string, string> & { k: bigint; entries: bigint; bytes: bigint }>(
          c,
          `SELECT ${[...groups.columns, counts].join(", ")}
           FROM logs ${groups.joins.join(" ")} WHERE ${conditions.join(" AND ")}
           GROUP BY ${[...names.map((_, i) => `g${i}`), "k"].join(", ")} ORDER BY k`,
          params,
        );
        return groupedCountSeries(names, rows, (row) => names.map((_, i) => row[`g${i}`]!), pointOf);
      }
      const metadata = select.byMetadata ? "metadata" : "NULL";
      const rows = await this.rows<{ fp: bigint; md: JS; k: bigint; entries: bigint; bytes: bigint }>(
        c,
        `SELECT fingerprint AS fp, ${metadata} AS md, ${counts}
         FROM logs WHERE ${conditions.join(" AND ")}
         GROUP BY fingerprint, md, k ORDER BY fingerprint, k`,
        params,
      );
      return countSeries(
        streams,
        rows,
        (row) => row.fp.toString(),
        (row) => (row.md === null ? {} : mapLabels(row.md)),
        pointOf,
      );
    });
  }

  /**
   * `g<i>` columns with the value of label `names[i]` of each row: the stream's label, joined by fingerprint from
   * bound parallel arrays, else the entry's structured metadata.
   */
  private groupColumns(
    params: Params,
    streams: IndexedStream[],
    names: string[],
  ): { columns: string[]; joins: string[] } {
    const columns: string[] = [];
    const joins: string[] = [];
    streamLabelArrays(streams, names).forEach(({ fingerprints, values }, i) => {
      joins.push(
        `LEFT JOIN (SELECT unnest(${params.bind(fingerprints, "Array(UInt64)")}) AS fp, unnest(${params.bind(values, "Array(String)")}) AS v) AS s${i} ON s${i}.fp = logs.fingerprint`,
      );
      columns.push(`coalesce(s${i}.v, metadata[${params.bind(names[i], "String")}], '') AS g${i}`);
    });
    return { columns, joins };
  }

  async selectSamples(select: SampleSelect): Promise<SamplePoints[]> {
    return this.serial("sample select", async (c) => {
      const series = await this.findStreams(
        c,
        select.tenant,
        "metrics",
        [select.matchers],
        select.startMs,
        select.endMs,
      );
      if (series.length === 0) return [];
      const params = new Params(duckdbDialect);
      const data = await this.seriesColumns(
        c,
        `SELECT fingerprint, timestamp_ms::DOUBLE, value FROM samples
         WHERE tenant = ${params.bind(select.tenant, "String")}
           AND fingerprint IN (SELECT unnest(${params.bind(
             series.map((s) => BigInt(s.fingerprint)),
             "Array(UInt64)",
           )}))
           AND timestamp_ms >= ${params.bind(select.startMs, "Int64")} AND timestamp_ms < ${params.bind(select.endMs, "Int64")}
         ORDER BY fingerprint, timestamp_ms`,
        params,
        2,
      );
      return samplePoints(series, data);
    });
  }

  async selectRollups(select: RollupSelect): Promise<RollupPoints[]> {
    const table = rollupTable(select.resolution);
    return this.serial("rollup select", async (c) => {
      const series = await this.findStreams(
        c,
        select.tenant,
        "metrics",
        [select.matchers],
        select.startMs,
        select.endMs + RESOLUTION_MS[select.resolution],
      );
      if (series.length === 0) return [];
      const params = new Params(duckdbDialect);
      const data = await this.seriesColumns(
        c,
        `SELECT fingerprint, bucket_ms::DOUBLE, min, max, sum, count::DOUBLE, last, increase
         FROM ${table}
         WHERE tenant = ${params.bind(select.tenant, "String")}
           AND fingerprint IN (SELECT unnest(${params.bind(
             series.map((s) => BigInt(s.fingerprint)),
             "Array(UInt64)",
           )}))
           AND bucket_ms >= ${params.bind(secondBoundMs(select.startMs), "Int64")} AND bucket_ms < ${params.bind(secondBoundMs(select.endMs), "Int64")}
         ORDER BY fingerprint, bucket_ms`,
        params,
        7,
      );
      return rollupPoints(series, data);
    });
  }

  async probeSamples(select: SampleProbe): Promise<SampleProbeSeries[]> {
    return this.serial("sample probe", async (c) => {
      const series = await this.findStreams(
        c,
        select.tenant,
        "metrics",
        [select.matchers],
        select.startMs,
        select.endMs,
      );
      if (series.length === 0) return [];
      const params = new Params(duckdbDialect);
      const onBoundary = `timestamp_ms % ${params.bind(select.alignMs, "Int64")} = 0`;
      const rows = await this.rows<{ fp: bigint; times: bigint[]; values: number[]; nan: bigint; inexact: bigint }>(
        c,
        `SELECT fingerprint AS fp,
                coalesce(list(timestamp_ms ORDER BY timestamp_ms) FILTER (WHERE ${onBoundary}), []) AS times,
                coalesce(list(value ORDER BY timestamp_ms) FILTER (WHERE ${onBoundary}), []) AS values,
                count(*) FILTER (WHERE isnan(value)) AS nan,
                count(*) FILTER (WHERE NOT isnan(value) AND (value != floor(value) OR abs(value) >= ${INEXACT_BOUND})) AS inexact
         FROM samples
         WHERE tenant = ${params.bind(select.tenant, "String")}
           AND fingerprint IN (SELECT unnest(${params.bind(
             series.map((s) => BigInt(s.fingerprint)),
             "Array(UInt64)",
           )}))
           AND timestamp_ms >= ${params.bind(select.startMs, "Int64")} AND timestamp_ms < ${params.bind(select.endMs, "Int64")}
         GROUP BY fingerprint`,
        params,
      );
      return groupByStream(
        series,
        rows,
        (row) => row.fp.toString(),
        (s, [row]): SampleProbeSeries => ({
          labels: s.labels,
          boundary: row!.times.map((t, i) => ({ timeMs: Number(t), value: row!.values[i]! })),
          nan: Number(row!.nan),
          inexact: Number(row!.inexact),
        }),
      );
    });
  }

  async enforceRetention(nowMs: number): Promise<void> {
    const r = this.options.retention;
    // Cutoffs in whole seconds, as ClickHouse compares with toDateTime(...).
    const cutoffMs = (days: number) => Math.floor((nowMs - days * 86_400_000) / 1000) * 1000;
    const rollupsDays = Math.max(r.rollups_1m_days, r.rollups_1h_days);
    const deletes: [string, string, bigint | number][] = [
      ["logs", "timestamp_ns", BigInt(cutoffMs(r.logs_days)) * 1_000_000n],
      ["log_volume_1m", "bucket_ms", cutoffMs(r.logs_days)],
      ["samples", "timestamp_ms", cutoffMs(r.samples_days)],
      ["rollups_1m", "bucket_ms", cutoffMs(r.rollups_1m_days)],
      ["rollups_1h", "bucket_ms", cutoffMs(r.rollups_1h_days)],
    ];
    const ledger: [BatchKind, number][] = [
      ["logs", cutoffMs(r.logs_days)],
      ["samples", cutoffMs(r.samples_days)],
      ["rollups", cutoffMs(rollupsDays)],
    ];
    await this.serial("retention", (c) =>
      this.transaction(c, async () => {
        for (const [table, column, cutoff] of deletes) {
          const params = new Params(duckdbDialect);
          await this.rows(c, `DELETE FROM ${table} WHERE ${column} < ${params.bind(cutoff, "Int64")}`, params);
        }
        for (const [kind, cutoff] of ledger) {
          const params = new Params(duckdbDialect);
          await this.rows(
            c,
            `DELETE FROM ingested_batches WHERE kind = ${params.bind(kind, "String")} AND max_time_ms < ${params.bind(cutoff, "Int64")}`,
            params,
          );
        }
      }),
    );
  }

  async putFleetRecords(records: FleetRecord[]): Promise<void> {
    const newest = newestFleetRecords(records);
    await this.serial("fleet record write", async (c) => {
      for (let at = 0; at < newest.length; at += 500) {
        const params = new Params(duckdbDialect);
        const values = newest
          .slice(at, at + 500)
          .map(
            (r) =>
              `(${params.bind(r.kind, "String")}, ${params.bind(r.id, "String")}, ${params.bind(r.updatedMs, "Int64")}, ${params.bind(r.body, "String")})`,
          );
        // As ClickHouse's merges: the newer version of a record replaces the older, never the other way.
        await this.rows(
          c,
          `INSERT INTO fleet_records VALUES ${values.join(", ")} ON CONFLICT (kind, id) DO UPDATE SET
  updated_ms = excluded.updated_ms, body = excluded.body WHERE excluded.updated_ms >= fleet_records.updated_ms`,
          params,
        );
      }
    });
  }

  async fleetRecords(kind: FleetRecordKind, id?: string): Promise<FleetRecord[]> {
    return this.serial("fleet record read", async (c) => {
      const params = new Params(duckdbDialect);
      const query = fleetRecordsQuery(
        "fleet_records",
        params.bind(kind, "String"),
        id === undefined ? undefined : params.bind(id, "String"),
      );
      return fleetRecordsOf(kind, await this.rows(c, query, params));
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
