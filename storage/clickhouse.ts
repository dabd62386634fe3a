import type { LogStream, MetricMetadata } from "../proto/batch.js";
import { type Labels, labelsOf } from "../proto/labels.js";
import {
  type ClickHouseConnectionOptions,
  ClickHouseDatabase,
  clickhouseDialect,
  jsonEachRow,
} from "./clickhouse-database.js";
import { appendOnce, writeEncodedLogs } from "./clickhouse-writes.js";
import { countClickHouseLogs } from "./clickhouse-log-count.js";
import { decodeLogRows, type EncodedLogBatch, type EncodedLogsStore, encodeLogBatch } from "./log-rowbinary.js";
import { type FleetRecord, type FleetRecordKind, fleetRecordsOf, fleetRecordsQuery } from "./fleet-records.js";
import { SAMPLE_COLUMNS, sampleRowBinary } from "./sample-rowbinary.js";
import { migrateClickHouse } from "./clickhouse-migrate.js";
import {
  probeSamples,
  readMetricMetadata,
  readRollups,
  readRollupSlices,
  readSamples,
  readSampleSlices,
} from "./clickhouse-metric-reads.js";
import type { Retention } from "./schema.js";
import { lineFilterConditions, Params, selectorsCondition } from "./sql.js";
import {
  type AppendResult,
  type IndexChanges,
  type IndexChangesSelect,
  type LabelMatcher,
  type LogBatch,
  type LogColumns,
  type LogCountSelect,
  type LogCountSeries,
  type LogSelect,
  type MetadataBatch,
  type MetadataSelect,
  type LogVolumeSelect,
  RESOLUTION_MS,
  type RollupBatch,
  type RollupPoints,
  type RollupSelect,
  type RollupSliceSelect,
  type RollupSliceSeries,
  type SampleProbe,
  type SampleProbeSeries,
  type SampleBatch,
  type SamplePoints,
  type SampleSelect,
  type SampleSliceSelect,
  type SampleSliceSeries,
  type SeriesSelect,
  type SignalKind,
  type WriteEpochs,
} from "./store.js";
import {
  checkVolumeSelect,
  countSeries,
  metadataRows,
  type RollupRow,
  rollupRows,
  rollupSlices,
  type SampleRow,
  sampleRows,
  sampleSlices,
} from "./rows.js";
import { logColumns, streamsOfColumns, rawLogRows, type RawLogRows, readWithoutRepeats } from "./log-columns.js";
import { readIndexChanges } from "./clickhouse-index-changes.js";
import { type IndexedStream, StreamsIndexReads } from "./streams-index.js";
import { dayOfMs, floatValue, monthOfMs, msText, nsToMsCeil, nsToMsFloor, StoreError } from "./values.js";

export interface ClickHouseStoreOptions extends ClickHouseConnectionOptions {
  retention: Retention;
  /** Cluster name: the schema is created ON CLUSTER with replicated tables. */
  cluster?: string;
}

/** The production store: ClickHouse 24.x or later through @clickhouse/client over HTTP(S). */
export class ClickHouseStore extends StreamsIndexReads implements EncodedLogsStore {
  private readonly db: ClickHouseDatabase;
  private readonly epochs: WriteEpochs = { logAppends: 0, retentionRuns: 0 };

  constructor(private readonly options: ClickHouseStoreOptions) {
    super();
    this.db = new ClickHouseDatabase(options);
  }

  migrate(): Promise<void> {
    return migrateClickHouse(this.db, this.options.retention, this.options.cluster, this.options.log);
  }

  async appendLogs(batches: LogBatch[]): Promise<AppendResult> {
    return this.appendEncodedLogs(batches.map(encodeLogBatch));
  }

  appendEncodedLogs(batches: EncodedLogBatch[]): Promise<AppendResult> {
    return writeEncodedLogs(this.db, batches).finally(() => this.epochs.logAppends++);
  }

  indexChanges(select: IndexChangesSelect): Promise<IndexChanges> {
    return readIndexChanges(this.db, select);
  }

  writeEpochs(): WriteEpochs {
    return { ...this.epochs };
  }

  async appendSamples(batches: SampleBatch[]): Promise<AppendResult> {
    return appendOnce<SampleRow>(
      this.db,
      "samples",
      { expr: "toDate(timestamp)", of: (row) => dayOfMs(row.timeMs) },
      { column: "timestamp", toSql: (params, row) => `fromUnixTimestamp64Milli(${params.bind(row.timeMs, "Int64")})` },
      batches.map((batch) => ({ id: batch.id, rows: sampleRows(batch) })),
      // RowBinary rather than JSON: it carries a NaN's bits, which a staleness marker is made of.
      (rows) => ({ format: `(${SAMPLE_COLUMNS.join(", ")}) FORMAT RowBinary`, body: [sampleRowBinary(rows)] }),
    );
  }

  async appendRollups(batches: RollupBatch[]): Promise<AppendResult> {
    return appendOnce<RollupRow>(
      this.db,
      "rollup_partials",
      { expr: "toYYYYMM(bucket)", of: (row) => monthOfMs(row.timeMs).replace("-", "") },
      {
        column: "bucket",
        toSql: (params, row) => `toDateTime(${params.bind(Math.floor(row.timeMs / 1000), "Int64")})`,
      },
      batches.map((batch) => ({ id: batch.id, rows: rollupRows(batch) })),
      (rows) => ({
        format: "FORMAT JSONEachRow",
        body: jsonEachRow(
          rows.map((row) => ({
            tenant: row.tenant,
            resolution: row.resolution,
            fingerprint: row.fingerprint,
            bucket: Math.floor(row.timeMs / 1000),
            min: floatValue(row.min),
            max: floatValue(row.max),
            sum: floatValue(row.sum),
            count: row.count,
            last: floatValue(row.last),
            last_time: msText(row.lastTimeMs),
            increase: floatValue(row.increase),
            batch_id: row.batchId,
          })),
        ),
      }),
    );
  }

  async appendMetadata(batches: MetadataBatch[]): Promise<void> {
    // Rows merge to the latest last_seen, so writing one again is harmless; no dedup token needed.
    await this.db.insert(
      "metric_metadata",
      metadataRows(batches).map((row) => ({
        tenant: row.tenant,
        metric_family: row.name,
        type: row.type,
        help: row.help,
        unit: row.unit,
        last_seen: msText(row.seenMs),
      })),
    );
  }

  metricMetadata(select: MetadataSelect): Promise<MetricMetadata[]> {
    return readMetricMetadata(this.db, select);
  }

  /**
   * The streams or series of a signal matching the selectors and seen in [startMs, endMs), as SQL selecting
   * `columns` per fingerprint: data reads filter on it as a subquery, which costs less than binding every
   * fingerprint found (GLOBAL IN: in the cluster layout the subquery runs once, not on every shard).
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
    return `SELECT ${columns} FROM ${this.db.name}.streams
       WHERE tenant = ${params.bind(tenant, "String")} AND signal = ${params.bind(signal, "String")}
         AND (${selectorsCondition(clickhouseDialect, params, "labels", selectors)})
       GROUP BY fingerprint
       -- The span over all of a stream's index rows, merged or not: one row alone may miss the range.
       HAVING max(last_seen) >= fromUnixTimestamp64Milli(${params.bind(startMs, "Int64")})
          AND min(first_seen) < fromUnixTimestamp64Milli(${params.bind(endMs, "Int64")})`;
  }

  private async findStreams(
    tenant: string,
    signal: SignalKind,
    selectors: LabelMatcher[][],
    startMs: number,
    endMs: number,
  ): Promise<IndexedStream[]> {
    const params = new Params(clickhouseDialect);
    const columns = "toString(fingerprint) AS fp, any(labels) AS stream_labels, any(kind) AS stream_kind";
    const rows = await this.db.rows<{ fp: string; stream_labels: Labels; stream_kind: number }>(
      "stream lookup",
      this.streamsQuery(params, columns, tenant, signal, selectors, startMs, endMs),
      params,
    );
    return rows.map((r) => ({ fingerprint: r.fp, labels: labelsOf(r.stream_labels), kind: Number(r.stream_kind) }));
  }

  /** The fingerprints findStreams finds for a log read, as a subquery. */
  private logStreams(params: Params, select: LogSelect | LogCountSelect): string {
    const startMs = nsToMsFloor(select.startNs);
    return this.streamsQuery(
      params,
      "fingerprint",
      select.tenant,
      "logs",
      [select.matchers],
      startMs,
      nsToMsCeil(select.endNs),
    );
  }

  protected override lookupStreams(select: SeriesSelect): Promise<IndexedStream[]> {
    return this.findStreams(select.tenant, select.signal, select.selectors, select.startMs, select.endMs);
  }

  async selectLogs(select: LogSelect): Promise<LogStream[]> {
    return streamsOfColumns(await this.selectLogColumns(select));
  }

  async selectLogColumns(select: LogSelect): Promise<LogColumns> {
    if (select.limit <= 0) return logColumns([], rawLogRows());
    // The rows' query finds the streams itself: the lookup of their labels runs beside it, not before it.
    const [streams, rows] = await Promise.all([
      this.findStreams(select.tenant, "logs", [select.matchers], nsToMsFloor(select.startNs), nsToMsCeil(select.endNs)),
      this.logRows(select),
    ]);
    return logColumns(streams, rows);
  }

  private logRows(select: LogSelect): Promise<RawLogRows> {
    const params = new Params(clickhouseDialect);
    const order = select.direction === "forward" ? "ASC" : "DESC";
    const conditions = [
      `tenant = ${params.bind(select.tenant, "String")}`,
      `fingerprint GLOBAL IN (${this.logStreams(params, select)})`,
      `timestamp >= fromUnixTimestamp64Nano(${params.bind(select.startNs.toString(), "Int64")})`,
      `timestamp < fromUnixTimestamp64Nano(${params.bind(select.endNs.toString(), "Int64")})`,
      ...lineFilterConditions(clickhouseDialect, params, "line", select.lineFilters ?? []),
    ];
    // Entries sharing a timestamp in arrival order (backward: the reverse of it, as Loki).
    return readWithoutRepeats(select.limit, async (n) =>
      decodeLogRows(
        await this.db.rowBinary(
          "log select",
          `SELECT fingerprint, toUnixTimestamp64Nano(timestamp), line, metadata
           FROM ${this.db.name}.logs WHERE ${conditions.join(" AND ")}
           ORDER BY timestamp ${order}, fingerprint ${order}, arrival ${order}, entry ${order}
           LIMIT ${n}`,
          params,
        ),
      ),
    );
  }

  async countLogs(select: LogCountSelect): Promise<LogCountSeries[]> {
    if (select.stepNs <= 0n) throw new StoreError("step must be positive");
    const streams = await this.findStreams(
      select.tenant,
      "logs",
      [select.matchers],
      nsToMsFloor(select.startNs),
      nsToMsCeil(select.endNs),
    );
    if (streams.length === 0) return [];
    const params = new Params(clickhouseDialect);
    const start = params.bind(select.startNs.toString(), "Int64");
    const conditions = [
      `tenant = ${params.bind(select.tenant, "String")}`,
      `fingerprint GLOBAL IN (${this.logStreams(params, select)})`,
      `timestamp >= fromUnixTimestamp64Nano(${start})`,
      `timestamp < fromUnixTimestamp64Nano(${params.bind(select.endNs.toString(), "Int64")})`,
      ...lineFilterConditions(clickhouseDialect, params, "line", select.lineFilters ?? []),
    ];
    return countClickHouseLogs(this.db, params, select, streams, conditions, start);
  }

  async logVolume(select: LogVolumeSelect): Promise<LogCountSeries[]> {
    checkVolumeSelect(select);
    const streams = await this.findStreams(select.tenant, "logs", [select.matchers], select.startMs, select.endMs);
    if (streams.length === 0) return [];
    const params = new Params(clickhouseDialect);
    const start = params.bind(String(select.startMs / 1000), "Int64");
    const rows = await this.db.rows<{ fp: string; k: string; entries: string; bytes: string }>(
      "log volume",
      `SELECT toString(fingerprint) AS fp,
              toString(intDiv(toUnixTimestamp(bucket) - ${start}, ${params.bind(String(select.stepMs / 1000), "Int64")})) AS k,
              toString(sum(entries)) AS entries, toString(sum(bytes)) AS bytes
       FROM ${this.db.name}.log_volume_1m
       WHERE tenant = ${params.bind(select.tenant, "String")}
         AND fingerprint GLOBAL IN (${this.streamsQuery(params, "fingerprint", select.tenant, "logs", [select.matchers], select.startMs, select.endMs)})
         AND bucket >= toDateTime(${start}) AND bucket < toDateTime(${params.bind(String(select.endMs / 1000), "Int64")})
       GROUP BY fingerprint, k ORDER BY fingerprint, k`,
      params,
    );
    return countSeries(
      streams,
      rows,
      (row) => row.fp,
      () => ({}),
      (row) => ({
        startNs: BigInt(select.startMs + Number(row.k) * select.stepMs) * 1_000_000n,
        count: Number(row.entries),
        bytes: Number(row.bytes),
      }),
    );
  }

  async selectSamples(select: SampleSelect): Promise<SamplePoints[]> {
    const series = await this.findStreams(select.tenant, "metrics", [select.matchers], select.startMs, select.endMs);
    return series.length === 0 ? [] : readSamples(this.db, series, select);
  }

  async selectRollups(select: RollupSelect): Promise<RollupPoints[]> {
    const series = await this.findStreams(
      select.tenant,
      "metrics",
      [select.matchers],
      select.startMs,
      select.endMs + RESOLUTION_MS[select.resolution],
    );
    return series.length === 0 ? [] : readRollups(this.db, series, select);
  }

  async probeSamples(select: SampleProbe): Promise<SampleProbeSeries[]> {
    const series = await this.findStreams(select.tenant, "metrics", [select.matchers], select.startMs, select.endMs);
    return series.length === 0 ? [] : probeSamples(this.db, series, select);
  }

  async selectRollupSlices(select: RollupSliceSelect): Promise<RollupSliceSeries[]> {
    const endMs = select.baseMs + select.slices * select.widthMs + RESOLUTION_MS[select.resolution];
    const streams = (params: Params) =>
      this.streamsQuery(params, "fingerprint", select.tenant, "metrics", [select.matchers], select.baseMs, endMs);
    const [series, data] = await Promise.all([
      this.findStreams(select.tenant, "metrics", [select.matchers], select.baseMs, endMs),
      readRollupSlices(this.db, streams, select),
    ]);
    return rollupSlices(series, data);
  }

  async selectSampleSlices(select: SampleSliceSelect): Promise<SampleSliceSeries[]> {
    const startMs = select.baseMs + 1;
    const endMs = select.baseMs + select.slices * select.widthMs + 1;
    // The lookup beside the read rather than before it: the read finds the same fingerprints as a subquery.
    const streams = (params: Params) =>
      this.streamsQuery(params, "fingerprint", select.tenant, "metrics", [select.matchers], startMs, endMs);
    const [series, data] = await Promise.all([
      this.findStreams(select.tenant, "metrics", [select.matchers], startMs, endMs),
      readSampleSlices(this.db, streams, select),
    ]);
    return sampleSlices(series, data);
  }

  async enforceRetention(nowMs: number): Promise<void> {
    const r = this.options.retention;
    const cutoffs: [string, string, number][] = [
      ["logs", "timestamp", r.logs_days],
      ["log_volume_1m", "bucket", r.logs_days],
      ["samples", "timestamp", r.samples_days],
      ["rollups_1m", "bucket", r.rollups_1m_days],
      ["rollups_1h", "bucket", r.rollups_1h_days],
      ["rollup_partials", "bucket", Math.max(r.rollups_1m_days, r.rollups_1h_days)],
      ["metric_metadata", "last_seen", Math.max(r.samples_days, r.rollups_1m_days, r.rollups_1h_days)],
    ];
    try {
      for (const [table, column, days] of cutoffs) {
        const params = new Params(clickhouseDialect);
        const cutoff = params.bind(Math.floor((nowMs - days * 86_400_000) / 1000), "Int64");
        await this.db.mutate(
          `retention on ${table}`,
          `DELETE FROM ${this.db.name}.${table} WHERE ${column} < toDateTime(${cutoff})`,
          params,
        );
      }
    } finally {
      // Counted once done (or failed), so that a catalog refreshing after it reads what is left.
      this.epochs.retentionRuns++;
    }
  }

  async putFleetRecords(records: FleetRecord[]): Promise<void> {
    await this.db.insert(
      "fleet_records",
      records.map((r) => ({ kind: r.kind, id: r.id, updated_ms: r.updatedMs, body: r.body })),
    );
  }

  async fleetRecords(kind: FleetRecordKind, id?: string): Promise<FleetRecord[]> {
    const params = new Params(clickhouseDialect);
    const query = fleetRecordsQuery(
      `${this.db.name}.fleet_records`,
      params.bind(kind, "String"),
      id === undefined ? undefined : params.bind(id, "String"),
    );
    return fleetRecordsOf(kind, await this.db.rows("fleet record read", query, params));
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
