import type { DuckDBConnection, JS } from "@duckdb/node-api";
import type { LogStream, MetricMetadata } from "../proto/batch.js";
import type { Logger } from "../common/log.js";
import { DuckDBDatabase } from "./duckdb-database.js";
import {
  type FleetRecord,
  type FleetRecordKind,
  fleetRecordsOf,
  fleetRecordsQuery,
  newestFleetRecords,
} from "./fleet-records.js";
import { duckdbDialect, mapLabels, rollupTable } from "./duckdb-sql.js";
import {
  probeSamples,
  readMetricMetadata,
  readRollups,
  readRollupSlices,
  readSamples,
  readSampleSlices,
} from "./duckdb-metric-reads.js";
import { appendOnce, writeLogs, writeRollups, writeSamples } from "./duckdb-writes.js";
import type { Retention } from "./schema.js";
import { lineFilterConditions, Params, selectorsCondition } from "./sql.js";
import type {
  AppendResult,
  IndexChanges,
  IndexChangesSelect,
  LabelMatcher,
  LogBatch,
  LogCountSelect,
  LogVolumeSelect,
  LogColumns,
  LogCountSeries,
  LogSelect,
  MetadataBatch,
  MetadataSelect,
  RollupBatch,
  RollupPoints,
  RollupSelect,
  RollupSliceSelect,
  RollupSliceSeries,
  SampleProbe,
  SampleProbeSeries,
  SampleBatch,
  SamplePoints,
  SampleSelect,
  SampleSliceSelect,
  SampleSliceSeries,
  SeriesSelect,
  SignalKind,
  Store,
  WriteEpochs,
} from "./store.js";
import { RESOLUTION_MS } from "./store.js";
import type { LogRow, RollupRow, SampleRow } from "./rows.js";
import { checkVolumeSelect, countSeries, logRows, metadataRows, rollupRows, sampleRows } from "./rows.js";
import { countLogRows } from "./duckdb-log-count.js";
import { logColumns, streamsOfColumns, rawLogRows, readWithoutRepeats } from "./log-columns.js";
import { readIndexChanges } from "./duckdb-index-changes.js";
import { deleteExpired } from "./duckdb-retention.js";
import { type IndexedStream, StreamsIndexReads } from "./streams-index.js";
import { nsToMsCeil, nsToMsFloor, StoreError } from "./values.js";

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

/** The embedded store: DuckDB through @duckdb/node-api, in one process with no other service. */
export class DuckDBStore extends StreamsIndexReads implements Store {
  private readonly db: DuckDBDatabase;
  private readonly epochs: WriteEpochs = { logAppends: 0, retentionRuns: 0 };

  constructor(private readonly options: DuckDBStoreOptions) {
    super();
    this.db = new DuckDBDatabase(options.path, options.log);
  }

  migrate(): Promise<void> {
    return this.db.migrate();
  }

  async appendLogs(batches: LogBatch[]): Promise<AppendResult> {
    try {
      return await appendOnce<LogRow>(
        this.db,
        "logs",
        batches.map((batch) => ({ id: batch.id, rows: logRows(batch) })),
        (c, rows) => writeLogs(this.db, c, rows),
      );
    } finally {
      this.epochs.logAppends++;
    }
  }

  indexChanges(select: IndexChangesSelect): Promise<IndexChanges> {
    return this.db.serial("index changes", (c) => readIndexChanges(this.db, c, select));
  }

  writeEpochs(): WriteEpochs {
    return { ...this.epochs };
  }

  async appendSamples(batches: SampleBatch[]): Promise<AppendResult> {
    return appendOnce<SampleRow>(
      this.db,
      "samples",
      batches.map((batch) => ({ id: batch.id, rows: sampleRows(batch) })),
      (c, rows) => writeSamples(c, rows),
    );
  }

  async appendRollups(batches: RollupBatch[]): Promise<AppendResult> {
    for (const batch of batches) for (const partial of batch.partials) rollupTable(partial.resolution);
    return appendOnce<RollupRow>(
      this.db,
      "rollups",
      batches.map((batch) => ({ id: batch.id, rows: rollupRows(batch) })),
      (c, rows) => writeRollups(this.db, c, rows),
    );
  }

  async appendMetadata(batches: MetadataBatch[]): Promise<void> {
    const rows = metadataRows(batches);
    if (rows.length === 0) return;
    await this.db.serial("metadata append", async (c) => {
      const params = new Params(duckdbDialect);
      const list = (of: (row: (typeof rows)[number]) => unknown, type = "Array(String)") =>
        `unnest(${params.bind(rows.map(of), type)})`;
      await this.db.rows(
        c,
        `INSERT INTO metric_metadata AS m (tenant, metric_family, type, help, unit, last_seen_ms)
         SELECT ${list((r) => r.tenant)}, ${list((r) => r.name)}, ${list((r) => r.type)}, ${list((r) => r.help)},
                ${list((r) => r.unit)}, ${list((r) => r.seenMs, "Array(Int64)")}
         ON CONFLICT (tenant, metric_family, type, help, unit) DO UPDATE SET
           last_seen_ms = greatest(m.last_seen_ms, excluded.last_seen_ms)`,
        params,
      );
    });
  }

  metricMetadata(select: MetadataSelect): Promise<MetricMetadata[]> {
    return this.db.serial("metadata read", (c) => readMetricMetadata(this.db, c, select));
  }

  /**
   * The streams or series of a signal matching the selectors and seen in [startMs, endMs), as SQL selecting
   * `columns`: data reads filter on it as a subquery, which costs less than binding every fingerprint found.
   */
  private streamsQuery(
    params: Params,
    columns: string,
    tenant: string,
    signal: SignalKind,
    selectors: LabelMatcher[][],
    startMs: number,
    endMs: number,
  ): string {
    return `SELECT ${columns} FROM streams
       WHERE tenant = ${params.bind(tenant, "String")} AND signal = ${params.bind(signal, "String")}
         AND last_seen_ms >= ${params.bind(startMs, "Int64")} AND first_seen_ms < ${params.bind(endMs, "Int64")}
         AND (${selectorsCondition(duckdbDialect, params, "labels", selectors)})`;
  }

  private async findStreams(
    c: DuckDBConnection,
    tenant: string,
    signal: SignalKind,
    selectors: LabelMatcher[][],
    startMs: number,
    endMs: number,
  ): Promise<IndexedStream[]> {
    const params = new Params(duckdbDialect);
    const rows = await this.db.rows<{ fp: bigint; labels: JS; kind: number }>(
      c,
      this.streamsQuery(params, "fingerprint AS fp, labels, kind", tenant, signal, selectors, startMs, endMs),
      params,
    );
    return rows.map((r) => ({ fingerprint: r.fp.toString(), labels: mapLabels(r.labels), kind: Number(r.kind) }));
  }

  protected override lookupStreams(select: SeriesSelect): Promise<IndexedStream[]> {
    return this.db.serial("stream lookup", (c) =>
      this.findStreams(c, select.tenant, select.signal, select.selectors, select.startMs, select.endMs),
    );
  }

  /**
   * The WHERE conditions for log rows of the streams findStreams finds for the select, in [startNs, endNs) and
   * passing the line filters.
   */
  private logConditions(params: Params, select: LogSelect | LogCountSelect, start: string): string[] {
    const streams = this.streamsQuery(
      params,
      "fingerprint",
      select.tenant,
      "logs",
      [select.matchers],
      nsToMsFloor(select.startNs),
      nsToMsCeil(select.endNs),
    );
    return [
      `tenant = ${params.bind(select.tenant, "String")}`,
      `fingerprint IN (${streams})`,
      `timestamp_ns >= ${start}`,
      `timestamp_ns < ${params.bind(select.endNs, "Int64")}`,
      ...lineFilterConditions(duckdbDialect, params, "line", select.lineFilters ?? []),
    ];
  }

  async selectLogs(select: LogSelect): Promise<LogStream[]> {
    return streamsOfColumns(await this.selectLogColumns(select));
  }

  selectLogColumns(select: LogSelect): Promise<LogColumns> {
    return this.db.serial("log select", async (c) => {
      const streams = await this.findStreams(
        c,
        select.tenant,
        "logs",
        [select.matchers],
        nsToMsFloor(select.startNs),
        nsToMsCeil(select.endNs),
      );
      if (streams.length === 0 || select.limit <= 0) return logColumns([], rawLogRows());
      const params = new Params(duckdbDialect);
      const order = select.direction === "forward" ? "ASC" : "DESC";
      const conditions = this.logConditions(params, select, params.bind(select.startNs, "Int64"));
      // Entries sharing a timestamp in arrival order (backward: the reverse of it, as Loki).
      const rows = await readWithoutRepeats(select.limit, (n) =>
        this.db.logRows(
          c,
          `SELECT fingerprint, timestamp_ns, line, metadata, cardinality(metadata) FROM logs
           WHERE ${conditions.join(" AND ")}
           ORDER BY timestamp_ns ${order}, fingerprint ${order}, arrival ${order}, entry ${order}
           LIMIT ${n}`,
          params,
        ),
      );
      return logColumns(streams, rows);
    });
  }

  async countLogs(select: LogCountSelect): Promise<LogCountSeries[]> {
    if (select.stepNs <= 0n) throw new StoreError("step must be positive");
    return this.db.serial("log count", async (c) => {
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
      return countLogRows(this.db, c, {
        select,
        streams,
        params,
        start,
        conditions: this.logConditions(params, select, start),
      });
    });
  }

  async logVolume(select: LogVolumeSelect): Promise<LogCountSeries[]> {
    checkVolumeSelect(select);
    return this.db.serial("log volume", async (c) => {
      const streams = await this.findStreams(c, select.tenant, "logs", [select.matchers], select.startMs, select.endMs);
      if (streams.length === 0) return [];
      const params = new Params(duckdbDialect);
      const start = params.bind(BigInt(select.startMs), "Int64");
      const rows = await this.db.rows<{ fp: bigint; k: bigint; entries: bigint; bytes: bigint }>(
        c,
        `SELECT fingerprint AS fp, (bucket_ms - ${start}) // ${params.bind(BigInt(select.stepMs), "Int64")} AS k,
                sum(entries)::BIGINT AS entries, sum(bytes)::BIGINT AS bytes
         FROM log_volume_1m
         WHERE tenant = ${params.bind(select.tenant, "String")}
           AND fingerprint IN (${this.streamsQuery(params, "fingerprint", select.tenant, "logs", [select.matchers], select.startMs, select.endMs)})
           AND bucket_ms >= ${start} AND bucket_ms < ${params.bind(BigInt(select.endMs), "Int64")}
         GROUP BY fingerprint, k ORDER BY fingerprint, k`,
        params,
      );
      return countSeries(
        streams,
        rows,
        (row) => row.fp.toString(),
        () => ({}),
        (row) => ({
          startNs: BigInt(select.startMs + Number(row.k) * select.stepMs) * 1_000_000n,
          count: Number(row.entries),
          bytes: Number(row.bytes),
        }),
      );
    });
  }

  async selectSamples(select: SampleSelect): Promise<SamplePoints[]> {
    return this.db.serial("sample select", async (c) => {
      const series = await this.findStreams(
        c,
        select.tenant,
        "metrics",
        [select.matchers],
        select.startMs,
        select.endMs,
      );
      return series.length === 0 ? [] : readSamples(this.db, c, series, select);
    });
  }

  async selectRollups(select: RollupSelect): Promise<RollupPoints[]> {
    return this.db.serial("rollup select", async (c) => {
      const series = await this.findStreams(
        c,
        select.tenant,
        "metrics",
        [select.matchers],
        select.startMs,
        select.endMs + RESOLUTION_MS[select.resolution],
      );
      return series.length === 0 ? [] : readRollups(this.db, c, series, select);
    });
  }

  async probeSamples(select: SampleProbe): Promise<SampleProbeSeries[]> {
    return this.db.serial("sample probe", async (c) => {
      const series = await this.findStreams(
        c,
        select.tenant,
        "metrics",
        [select.matchers],
        select.startMs,
        select.endMs,
      );
      return series.length === 0 ? [] : probeSamples(this.db, c, series, select);
    });
  }

  async selectRollupSlices(select: RollupSliceSelect): Promise<RollupSliceSeries[]> {
    return this.db.serial("rollup slices", async (c) => {
      const endMs = select.baseMs + select.slices * select.widthMs;
      const series = await this.findStreams(
        c,
        select.tenant,
        "metrics",
        [select.matchers],
        select.baseMs,
        endMs + RESOLUTION_MS[select.resolution],
      );
      return series.length === 0 ? [] : readRollupSlices(this.db, c, series, select);
    });
  }

  async selectSampleSlices(select: SampleSliceSelect): Promise<SampleSliceSeries[]> {
    return this.db.serial("sample slices", async (c) => {
      const endMs = select.baseMs + select.slices * select.widthMs + 1;
      const series = await this.findStreams(c, select.tenant, "metrics", [select.matchers], select.baseMs + 1, endMs);
      return series.length === 0 ? [] : readSampleSlices(this.db, c, series, select);
    });
  }

  async enforceRetention(nowMs: number): Promise<void> {
    // Counted once done (or failed), so that a catalog refreshing after it reads what is left.
    await deleteExpired(this.db, this.options.retention, nowMs).finally(() => this.epochs.retentionRuns++);
  }

  async putFleetRecords(records: FleetRecord[]): Promise<void> {
    const newest = newestFleetRecords(records);
    await this.db.serial("fleet record write", async (c) => {
      for (let at = 0; at < newest.length; at += 500) {
        const params = new Params(duckdbDialect);
        const values = newest
          .slice(at, at + 500)
          .map(
            (r) =>
              `(${params.bind(r.kind, "String")}, ${params.bind(r.id, "String")}, ${params.bind(r.updatedMs, "Int64")}, ${params.bind(r.body, "String")})`,
          );
        // As ClickHouse's merges: the newer version of a record replaces the older, never the other way.
        await this.db.rows(
          c,
          `INSERT INTO fleet_records VALUES ${values.join(", ")} ON CONFLICT (kind, id) DO UPDATE SET
  updated_ms = excluded.updated_ms, body = excluded.body WHERE excluded.updated_ms >= fleet_records.updated_ms`,
          params,
        );
      }
    });
  }

  async fleetRecords(kind: FleetRecordKind, id?: string): Promise<FleetRecord[]> {
    return this.db.serial("fleet record read", async (c) => {
      const params = new Params(duckdbDialect);
      const query = fleetRecordsQuery(
        "fleet_records",
        params.bind(kind, "String"),
        id === undefined ? undefined : params.bind(id, "String"),
      );
      return fleetRecordsOf(kind, await this.db.rows(c, query, params));
    });
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
