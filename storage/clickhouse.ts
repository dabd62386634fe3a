import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { type ClickHouseClient, ClickHouseError, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import type { Labels, LogStream } from "../proto/batch.js";
import type { Logger } from "../common/log.js";
import { type EncodedLogBatch, encodeLogBatch, LOG_COLUMNS } from "./log-rowbinary.js";
import { type FleetRecord, type FleetRecordKind, fleetRecordsOf, fleetRecordsQuery } from "./fleet-records.js";
import { SAMPLE_COLUMNS, sampleRowBinary } from "./sample-rowbinary.js";
import { MIGRATIONS } from "./migrations.js";
import { INEXACT_BOUND } from "./rows.js";
import type { Retention } from "./schema.js";
import { type Dialect, lineFilterConditions, Params, selectorsCondition } from "./sql.js";
import {
  type AppendResult,
  type LabelMatcher,
  type LogBatch,
  type LogCountSelect,
  type LogCountSeries,
  type LogSelect,
  RESOLUTION_MS,
  type RollupBatch,
  type RollupPoints,
  type RollupSelect,
  type SampleProbe,
  type SampleProbeSeries,
  type SampleBatch,
  type SamplePoints,
  type SampleSelect,
  type SeriesSelect,
  type SignalKind,
  type Store,
} from "./store.js";
import {
  groupByStream,
  countSeries,
  groupedCountSeries,
  type IndexedStream,
  type RollupRow,
  rollupPoints,
  rollupRows,
  samplePoints,
  SeriesColumns,
  type SampleRow,
  sampleRows,
  type StreamRef,
  type StreamSpan,
  streamSpans,
  streamLabelArrays,
  StreamsIndexReads,
} from "./rows.js";
import {
  dayOfMs,
  floatValue,
  monthOfMs,
  msText,
  nsToMsCeil,
  nsToMsFloor,
  parseFloatText,
  StoreError,
  toLabels,
} from "./values.js";
import { backoffDelay } from "../common/backoff.js";

export interface ClickHouseStoreOptions {
  url: string;
  username: string;
  password: string;
  database: string;
  retention: Retention;
  tls?: { ca_file?: string; cert_file?: string; key_file?: string };
  /** Cluster name: the schema is created ON CLUSTER with replicated tables. */
  cluster?: string;
  /** Attempts for a transient failure before the error is returned (default 6). */
  attempts?: number;
  log?: Logger;
}

const clickhouseDialect: Dialect = {
  placeholder: (index, type) => `{p${index}:${type}}`,
  label: (column, name) => `${column}[${name}]`,
  regexMatch: (subject, pattern) => `match(${subject}, ${pattern})`,
  contains: (subject, needle) => `position(${subject}, ${needle}) > 0`,
};

// Errors worth retrying: the server or network is briefly unable, not the request wrong.
const TRANSIENT_CODES = new Set(["159", "164", "202", "203", "209", "210", "241", "242", "252", "319", "425", "999"]);
const TRANSIENT_NETWORK =
  /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|socket hang up|Timeout error|other side closed/i;

function isTransient(err: unknown): boolean {
  if (err instanceof ClickHouseError) return TRANSIENT_CODES.has(err.code);
  const text = `${(err as Error)?.message ?? ""} ${(err as { code?: string })?.code ?? ""}`;
  return TRANSIENT_NETWORK.test(text);
}

/** Rows as one JSONEachRow body (a single chunk: the client's own insert() writes one per row). */
function jsonEachRow(values: object[]): Uint8Array[] {
  return [Buffer.from(values.map((v) => JSON.stringify(v)).join("\n") + "\n")];
}

/** The production store: ClickHouse 24.x or later through @clickhouse/client over HTTP(S). */
export class ClickHouseStore extends StreamsIndexReads implements Store {
  private readonly client: ClickHouseClient;
  private readonly db: string;
  private readonly attempts: number;

  constructor(private readonly options: ClickHouseStoreOptions) {
    super();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.database))
      throw new StoreError(`database name ${options.database} is not a plain identifier`);
    this.db = options.database;
    this.attempts = options.attempts ?? 6;
    const tls = options.tls;
    this.client = createClient({
      url: options.url,
      username: options.username,
      password: options.password,
      request_timeout: 120_000,
      compression: { request: false, response: true },
      log: { level: ClickHouseLogLevel.OFF },
      ...(tls?.ca_file
        ? {
            tls:
              tls.cert_file && tls.key_file
                ? {
                    ca_cert: readFileSync(tls.ca_file),
                    cert: readFileSync(tls.cert_file),
                    key: readFileSync(tls.key_file),
                  }
                : { ca_cert: readFileSync(tls.ca_file) },
          }
        : {}),
    });
  }

  private async withRetry<T>(what: string, run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (err) {
        if (!isTransient(err) || attempt >= this.attempts) {
          throw new StoreError(
            `ClickHouse ${what} failed${attempt > 1 ? ` after ${attempt} attempts` : ""}: ${(err as Error).message}`,
            {
              cause: err,
              transient: isTransient(err),
            },
          );
        }
        const delay = backoffDelay(attempt, 200, 10_000);
        this.options.log?.warn({ err, attempt, delay_ms: Math.round(delay) }, `ClickHouse ${what} failed, retrying`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private async rows<T>(what: string, query: string, params: Params): Promise<T[]> {
    return this.withRetry(what, () => this.rowsOnce<T>(query, params));
  }

  private async rowsOnce<T>(query: string, params: Params): Promise<T[]> {
    const result = await this.client.query({ query, query_params: params.named(), format: "JSONEachRow" });
    return result.json<T>();
  }

  /**
   * A query's rows, each a UInt64 fingerprint and `width` Float64 columns, as RowBinary (storage/rows.ts
   * SeriesColumns says why). The server buffers the whole answer (wait_end_of_query), so an error that strikes
   * mid-query is an HTTP error and never trailing text in the binary body.
   */
  private async seriesColumns(what: string, query: string, params: Params, width: number): Promise<SeriesColumns> {
    const body = await this.withRetry(what, async () => {
      const result = await this.client.exec({
        query: `${query} FORMAT RowBinary`,
        query_params: params.named(),
        clickhouse_settings: { wait_end_of_query: 1 },
      });
      const chunks: Buffer[] = [];
      for await (const chunk of result.stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    });
    const rowBytes = 8 * (1 + width);
    if (body.length % rowBytes !== 0)
      throw new StoreError(`ClickHouse ${what} returned ${body.length} bytes, not rows of ${rowBytes}`);
    const rows = body.length / rowBytes;
    const data = new SeriesColumns(rows, width);
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    let low = 0;
    let high = 0;
    for (let row = 0, at = 0; row < rows; row++, at += rowBytes) {
      const l = view.getUint32(at, true);
      const h = view.getUint32(at + 4, true);
      if (row === 0 || l !== low || h !== high) {
        [low, high] = [l, h];
        data.startSeries(view.getBigUint64(at, true).toString(), row);
      }
      for (let c = 0; c < width; c++) data.columns[c]![row] = view.getFloat64(at + 8 * (1 + c), true);
    }
    return data;
  }

  /** The (batch, partition) pairs a replay check (`SELECT DISTINCT batch_id, ... AS part`) finds stored, as `batch\0part`. */
  private async storedParts(check: string, params: Params): Promise<Set<string>> {
    return new Set(
      (await this.rowsOnce<{ batch_id: string; part: string }>(check, params)).map(
        (r) => `${r.batch_id}\u0000${r.part}`,
      ),
    );
  }

  private async command(query: string): Promise<void> {
    await this.withRetry("DDL", () => this.client.command({ query }));
  }

  /**
   * One INSERT of `values` as a single JSONEachRow body. The client's own insert() writes one chunk per row,
   * which costs a quarter of the throughput on large batches; the body is encoded once here and reused by
   * every retry.
   */
  private async insert(table: string, values: object[], token?: string): Promise<void> {
    if (values.length === 0) return;
    const body = jsonEachRow(values);
    await this.withRetry(`insert into ${table}`, () => this.insertOnce(table, "FORMAT JSONEachRow", body, token));
  }

  /** One INSERT whose data is `body`, chunk after chunk; `format` is the statement's tail. */
  private async insertOnce(table: string, format: string, body: Uint8Array[], token?: string): Promise<void> {
    const result = await this.client.exec({
      query: `INSERT INTO ${this.db}.${table} ${format}`,
      values: Readable.from(body),
      clickhouse_settings: {
        date_time_input_format: "basic",
        ...(token === undefined ? {} : { insert_deduplication_token: token }),
      },
    });
    result.stream.resume();
    await finished(result.stream);
  }

  async migrate(): Promise<void> {
    await this.command(
      `CREATE DATABASE IF NOT EXISTS ${this.db}${this.options.cluster ? ` ON CLUSTER ${this.options.cluster}` : ""}`,
    );
    const target = { database: this.db, retention: this.options.retention, cluster: this.options.cluster };
    let applied = new Set<number>();
    try {
      const params = new Params(clickhouseDialect);
      applied = new Set(
        (
          await this.rows<{ version: number }>(
            "migration lookup",
            `SELECT DISTINCT version FROM ${this.db}.schema_migrations`,
            params,
          )
        ).map((r) => Number(r.version)),
      );
    } catch (err) {
      const unknownTable = err instanceof StoreError && err.cause instanceof ClickHouseError && err.cause.code === "60";
      if (!unknownTable) throw err;
    }
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      for (const statement of migration.statements(target)) await this.command(statement);
      await this.insert(
        "schema_migrations",
        [{ version: migration.version, name: migration.name }],
        `migration-${migration.version}`,
      );
      this.options.log?.info({ version: migration.version, name: migration.name }, "applied schema migration");
    }
  }

  /**
   * Writes the rows of these batches that the table does not hold yet. A batch is written with one insert,
   * and ClickHouse commits an insert per partition atomically, so each (batch, partition) is either wholly
   * stored or not: one query on the batch_id bloom index finds which, only the missing partitions are written,
   * and a replay changes nothing however long after the first write it comes (insert_deduplication_token,
   * also set, only remembers a bounded window of inserts). A failed attempt is retried from the check: an insert
   * whose answer was lost (the engine killed after it committed) is then found stored, not written again.
   */
  private async appendOnce<Row extends StreamRef>(
    table: string,
    partition: { expr: string; of: (row: Row) => string },
    time: { column: string; toSql: (params: Params, row: Row) => string },
    batches: { id: string; rows: Row[] }[],
    encode: (rows: Row[]) => { format: string; body: Uint8Array[] },
  ): Promise<AppendResult> {
    // A batch listed twice in one call is written once; the second copy counts as a duplicate.
    const unique = new Map<string, { id: string; rows: Row[] }>();
    let repeated = 0;
    for (const batch of batches) {
      if (!unique.has(batch.id)) unique.set(batch.id, batch);
      else if (batch.rows.length > 0) repeated++;
    }
    batches = [...unique.values()];
    const all = batches.flatMap((b) => b.rows);
    if (all.length === 0) return { written: 0, duplicates: repeated, rows: 0 };
    let [earliest, latest] = [all[0]!, all[0]!];
    for (const row of all) {
      if (row.timeMs < earliest.timeMs) earliest = row;
      if (row.timeMs > latest.timeMs) latest = row;
    }
    const params = new Params(clickhouseDialect);
    const check = `SELECT DISTINCT batch_id, toString(${partition.expr}) AS part FROM ${this.db}.${table}
       WHERE batch_id IN ${params.bind(
         batches.map((b) => b.id),
         "Array(String)",
       )}
         AND ${time.column} >= ${time.toSql(params, earliest)} AND ${time.column} <= ${time.toSql(params, latest)}`;
    const { inserted, written, duplicates } = await this.withRetry(`${table} write`, async () => {
      const present = await this.storedParts(check, params);
      const inserted: Row[] = [];
      let written = 0;
      let duplicates = 0;
      for (const batch of batches) {
        const missing = batch.rows.filter((row) => !present.has(`${batch.id}\u0000${partition.of(row)}`));
        if (missing.length > 0) written++;
        else if (batch.rows.length > 0) duplicates++;
        inserted.push(...missing);
      }
      const token = `${table}:${[...new Set(inserted.map((r) => r.batchId))].sort().join(",")}`;
      if (inserted.length > 0) {
        const { format, body } = encode(inserted);
        await this.insertOnce(table, format, body, token);
      }
      return { inserted, written, duplicates };
    });
    await this.indexStreams("metrics", streamSpans(inserted));
    return { written, duplicates: duplicates + repeated, rows: inserted.length };
  }

  private async indexStreams(signal: SignalKind, spans: StreamSpan[]): Promise<void> {
    if (spans.length === 0) return;
    // Index rows merge by min/max, so writing one again is harmless; no dedup token needed.
    await this.insert(
      "streams",
      spans.map((s) => ({
        tenant: s.tenant,
        signal,
        fingerprint: s.fingerprint,
        labels: s.labels,
        kind: s.kind,
        first_seen: msText(s.minMs),
        last_seen: msText(s.maxMs),
      })),
    );
  }

  async appendLogs(batches: LogBatch[]): Promise<AppendResult> {
    return this.appendEncodedLogs(batches.map(encodeLogBatch));
  }

  /** appendOnce for logs, whose rows come encoded per (batch, day) already. */
  async appendEncodedLogs(batches: EncodedLogBatch[]): Promise<AppendResult> {
    const unique = new Map<string, EncodedLogBatch>();
    let repeated = 0;
    for (const batch of batches) {
      if (!unique.has(batch.id)) unique.set(batch.id, batch);
      else if (batch.rows > 0) repeated++;
    }
    const parts = [...unique.values()].flatMap((batch) => batch.parts.map((part) => ({ batch, part })));
    if (parts.length === 0) return { written: 0, duplicates: repeated, rows: 0 };
    let [earliest, latest] = [parts[0]!.part.minNs, parts[0]!.part.maxNs];
    for (const { part } of parts) {
      if (part.minNs < earliest) earliest = part.minNs;
      if (part.maxNs > latest) latest = part.maxNs;
    }
    const params = new Params(clickhouseDialect);
    const check = `SELECT DISTINCT batch_id, toString(toDate(timestamp)) AS part FROM ${this.db}.logs
       WHERE batch_id IN ${params.bind([...unique.keys()], "Array(String)")}
         AND timestamp >= fromUnixTimestamp64Nano(${params.bind(earliest.toString(), "Int64")})
         AND timestamp <= fromUnixTimestamp64Nano(${params.bind(latest.toString(), "Int64")})`;
    // Retried from the check, as in appendOnce.
    const { missing, writtenIds } = await this.withRetry("logs write", async () => {
      const present = await this.storedParts(check, params);
      const missing = parts.filter(({ batch, part }) => !present.has(`${batch.id}\u0000${part.day}`));
      const writtenIds = new Set(missing.map(({ batch }) => batch.id));
      if (missing.length > 0) {
        await this.insertOnce(
          "logs",
          `(${LOG_COLUMNS.join(", ")}) FORMAT RowBinary`,
          missing.map(({ batch, part }) => batch.buffer.subarray(part.offset, part.offset + part.length)),
          `logs:${[...writtenIds].sort().join(",")}`,
        );
      }
      return { missing, writtenIds };
    });
    const duplicates = [...unique.values()].filter((b) => b.rows > 0 && !writtenIds.has(b.id)).length;
    // One index row per stream of the whole write, as streamSpans makes for the other signals.
    const spans = new Map<string, StreamSpan>();
    for (const { batch, part } of missing) {
      for (const s of part.streams) {
        const key = `${batch.tenant}\u0000${s.fingerprint}`;
        const span = spans.get(key);
        if (span === undefined)
          spans.set(key, {
            tenant: batch.tenant,
            fingerprint: s.fingerprint,
            labels: s.labels,
            kind: 0,
            minMs: s.minMs,
            maxMs: s.maxMs,
          });
        else {
          span.minMs = Math.min(span.minMs, s.minMs);
          span.maxMs = Math.max(span.maxMs, s.maxMs);
        }
      }
    }
    await this.indexStreams("logs", [...spans.values()]);
    return {
      written: writtenIds.size,
      duplicates: duplicates + repeated,
      rows: missing.reduce((n, { part }) => n + part.rows, 0),
    };
  }

  async appendSamples(batches: SampleBatch[]): Promise<AppendResult> {
    return this.appendOnce<SampleRow>(
      "samples",
      { expr: "toDate(timestamp)", of: (row) => dayOfMs(row.timeMs) },
      { column: "timestamp", toSql: (params, row) => `fromUnixTimestamp64Milli(${params.bind(row.timeMs, "Int64")})` },
      batches.map((batch) => ({ id: batch.id, rows: sampleRows(batch) })),
      // RowBinary rather than JSON: it carries a NaN's bits, which a staleness marker is made of.
      (rows) => ({ format: `(${SAMPLE_COLUMNS.join(", ")}) FORMAT RowBinary`, body: [sampleRowBinary(rows)] }),
    );
  }

  async appendRollups(batches: RollupBatch[]): Promise<AppendResult> {
    return this.appendOnce<RollupRow>(
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

  /** The streams or series of a signal matching the selectors and seen in [startMs, endMs). */
  private async findStreams(
    tenant: string,
    signal: SignalKind,
    selectors: LabelMatcher[][],
    startMs: number,
    endMs: number,
  ): Promise<IndexedStream[]> {
    const params = new Params(clickhouseDialect);
    const rows = await this.rows<{ fp: string; stream_labels: Labels; stream_kind: number }>(
      "stream lookup",
      `SELECT toString(fingerprint) AS fp, any(labels) AS stream_labels, any(kind) AS stream_kind FROM ${this.db}.streams
       WHERE tenant = ${params.bind(tenant, "String")} AND signal = ${params.bind(signal, "String")}
         AND (${selectorsCondition(clickhouseDialect, params, "labels", selectors)})
       GROUP BY fingerprint
       -- The span over all of a stream's index rows, merged or not: one row alone may miss the range.
       HAVING max(last_seen) >= fromUnixTimestamp64Milli(${params.bind(startMs, "Int64")})
          AND min(first_seen) < fromUnixTimestamp64Milli(${params.bind(endMs, "Int64")})`,
      params,
    );
    return rows.map((r) => ({ fingerprint: r.fp, labels: toLabels(r.stream_labels), kind: Number(r.stream_kind) }));
  }

  protected override lookupStreams(select: SeriesSelect): Promise<IndexedStream[]> {
    return this.findStreams(select.tenant, select.signal, select.selectors, select.startMs, select.endMs);
  }

  async selectLogs(select: LogSelect): Promise<LogStream[]> {
    const streams = await this.findStreams(
      select.tenant,
      "logs",
      [select.matchers],
      nsToMsFloor(select.startNs),
      nsToMsCeil(select.endNs),
    );
    if (streams.length === 0 || select.limit <= 0) return [];
    const params = new Params(clickhouseDialect);
    const order = select.direction === "forward" ? "ASC" : "DESC";
    const conditions = [
      `tenant = ${params.bind(select.tenant, "String")}`,
      `fingerprint IN ${params.bind(
        streams.map((s) => BigInt(s.fingerprint)),
        "Array(UInt64)",
      )}`,
      `timestamp >= fromUnixTimestamp64Nano(${params.bind(select.startNs.toString(), "Int64")})`,
      `timestamp < fromUnixTimestamp64Nano(${params.bind(select.endNs.toString(), "Int64")})`,
      ...lineFilterConditions(clickhouseDialect, params, "line", select.lineFilters ?? []),
    ];
    const rows = await this.rows<{ fp: string; ts: string; line: string; metadata: Labels }>(
      "log select",
      `SELECT toString(fingerprint) AS fp, toString(toUnixTimestamp64Nano(timestamp)) AS ts, line, metadata
       FROM ${this.db}.logs WHERE ${conditions.join(" AND ")}
       ORDER BY timestamp ${order}, fingerprint ${order}, line ${order}
       LIMIT ${params.bind(select.limit, "UInt64")}`,
      params,
    );
    return groupByStream(
      streams,
      rows,
      (row) => row.fp,
      (stream, rows): LogStream => ({
        labels: stream.labels,
        entries: rows.map((row) => ({
          timeUnixNano: BigInt(row.ts),
          line: row.line,
          metadata: toLabels(row.metadata),
        })),
      }),
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
      `fingerprint IN ${params.bind(
        streams.map((s) => BigInt(s.fingerprint)),
        "Array(UInt64)",
      )}`,
      `timestamp >= fromUnixTimestamp64Nano(${start})`,
      `timestamp < fromUnixTimestamp64Nano(${params.bind(select.endNs.toString(), "Int64")})`,
      ...lineFilterConditions(clickhouseDialect, params, "line", select.lineFilters ?? []),
    ];
    const stepIndex = `intDiv(toUnixTimestamp64Nano(timestamp) - ${start}, ${params.bind(select.stepNs.toString(), "Int64")}) AS step_index`;
    const bytes = select.bytes === false ? "'0'" : "toString(sum(length(line)))";
    const counts = `toString(step_index) AS k, toString(count()) AS entries, ${bytes} AS bytes`;
    const pointOf = (row: { k: string; entries: string; bytes: string }): LogCountSeries["points"][number] => ({
      startNs: select.startNs + BigInt(row.k) * select.stepNs,
      count: Number(row.entries),
      bytes: Number(row.bytes),
    });
    if (select.groupBy !== undefined) {
      const names = select.groupBy;
      const groups = this.groupColumns(params, streams, names);
      const rows = await this.rows<Record<string, string | number> & { k: string; entries: string; bytes: string }>(
        "grouped log count",
        `SELECT ${[...groups.columns, stepIndex, counts].join(", ")}
         FROM ${this.db}.logs WHERE ${conditions.join(" AND ")}
         GROUP BY ${[...groups.keys, "step_index"].join(", ")} ORDER BY step_index`,
        params,
      );
      return groupedCountSeries(names, rows, groups.valuesOf, pointOf);
    }
    const metadata = select.byMetadata ? "metadata" : "map()";
    const rows = await this.rows<{ fp: string; md: Labels; k: string; entries: string; bytes: string }>(
      "log count",
      `SELECT toString(fingerprint) AS fp, ${metadata} AS md, ${stepIndex}, ${counts}
       FROM ${this.db}.logs WHERE ${conditions.join(" AND ")}
       GROUP BY fingerprint, md, step_index ORDER BY fingerprint, step_index`,
      params,
    );
    return countSeries(
      streams,
      rows,
      (row) => row.fp,
      (row) => row.md,
      pointOf,
    );
  }

  /**
   * The columns that group rows by the value of each label of `names`, and how to read the values back. The
   * stream's label is looked up by fingerprint in bound arrays (a hash lookup in transform) as a number, which
   * groups much faster than a string does; only streams without the label read the entry's structured metadata.
   */
  private groupColumns(
    params: Params,
    streams: IndexedStream[],
    names: string[],
  ): { columns: string[]; keys: string[]; valuesOf: (row: Record<string, string | number>) => string[] } {
    const columns: string[] = [];
    const keys: string[] = [];
    const decoders = streamLabelArrays(streams, names).map(({ fingerprints, values }, i) => {
      const metadata = `metadata[${params.bind(names[i], "String")}]`;
      if (fingerprints.length === 0) {
        columns.push(`${metadata} AS m${i}`);
        keys.push(`m${i}`);
        return (row: Record<string, string | number>) => String(row[`m${i}`]);
      }
      const distinct = [...new Set(values)];
      const ids = new Map(distinct.map((value, id) => [value, id + 1]));
      const id = `transform(fingerprint, ${params.bind(fingerprints, "Array(UInt64)")}, ${params.bind(
        values.map((value) => ids.get(value)!),
        "Array(UInt32)",
      )}, toUInt32(0))`;
      columns.push(`${id} AS g${i}`);
      keys.push(`g${i}`);
      if (fingerprints.length < streams.length) {
        columns.push(`if(g${i} = 0, ${metadata}, '') AS m${i}`);
        keys.push(`m${i}`);
      }
      return (row: Record<string, string | number>) => {
        const stream = Number(row[`g${i}`]);
        return stream > 0 ? distinct[stream - 1]! : String(row[`m${i}`]);
      };
    });
    return { columns, keys, valuesOf: (row) => decoders.map((decode) => decode(row)) };
  }

  async selectSamples(select: SampleSelect): Promise<SamplePoints[]> {
    const series = await this.findStreams(select.tenant, "metrics", [select.matchers], select.startMs, select.endMs);
    if (series.length === 0) return [];
    const params = new Params(clickhouseDialect);
    const data = await this.seriesColumns(
      "sample select",
      `SELECT fingerprint, toFloat64(toUnixTimestamp64Milli(timestamp)), value
       FROM ${this.db}.samples
       WHERE tenant = ${params.bind(select.tenant, "String")} AND fingerprint IN ${params.bind(
         series.map((s) => BigInt(s.fingerprint)),
         "Array(UInt64)",
       )}
         AND timestamp >= fromUnixTimestamp64Milli(${params.bind(select.startMs, "Int64")})
         AND timestamp < fromUnixTimestamp64Milli(${params.bind(select.endMs, "Int64")})
       ORDER BY fingerprint, timestamp`,
      params,
      2,
    );
    return samplePoints(series, data);
  }

  async selectRollups(select: RollupSelect): Promise<RollupPoints[]> {
    const series = await this.findStreams(
      select.tenant,
      "metrics",
      [select.matchers],
      select.startMs,
      select.endMs + RESOLUTION_MS[select.resolution],
    );
    if (series.length === 0) return [];
    const params = new Params(clickhouseDialect);
    const data = await this.seriesColumns(
      "rollup select",
      `SELECT fingerprint, toFloat64(toUnixTimestamp(bucket) * 1000), toFloat64(min(min)), toFloat64(max(max)), toFloat64(sum(sum)),
              toFloat64(sum(count)), toFloat64(argMaxMerge(last)), toFloat64(sum(increase))
       FROM ${this.db}.rollups_${select.resolution}
       WHERE tenant = ${params.bind(select.tenant, "String")} AND fingerprint IN ${params.bind(
         series.map((s) => BigInt(s.fingerprint)),
         "Array(UInt64)",
       )}
         AND bucket >= toDateTime(intDiv(${params.bind(select.startMs, "Int64")}, 1000))
         AND bucket < toDateTime(intDiv(${params.bind(select.endMs, "Int64")}, 1000))
       GROUP BY fingerprint, bucket ORDER BY fingerprint, bucket`,
      params,
      7,
    );
    return rollupPoints(series, data);
  }

  async probeSamples(select: SampleProbe): Promise<SampleProbeSeries[]> {
    const series = await this.findStreams(select.tenant, "metrics", [select.matchers], select.startMs, select.endMs);
    if (series.length === 0) return [];
    const params = new Params(clickhouseDialect);
    const onBoundary = `toUnixTimestamp64Milli(timestamp) % ${params.bind(select.alignMs, "Int64")} = 0`;
    const rows = await this.rows<{ fp: string; boundary: string[]; nan: string; inexact: string }>(
      "sample probe",
      `SELECT toString(fingerprint) AS fp,
              groupArrayIf(concat(toString(toUnixTimestamp64Milli(timestamp)), ' ', toString(value)), ${onBoundary}) AS boundary,
              toString(countIf(isNaN(value))) AS nan,
              toString(countIf(NOT isNaN(value) AND (value != floor(value) OR abs(value) >= ${INEXACT_BOUND}))) AS inexact
       FROM ${this.db}.samples
       WHERE tenant = ${params.bind(select.tenant, "String")} AND fingerprint IN ${params.bind(
         series.map((s) => BigInt(s.fingerprint)),
         "Array(UInt64)",
       )}
         AND timestamp >= fromUnixTimestamp64Milli(${params.bind(select.startMs, "Int64")})
         AND timestamp < fromUnixTimestamp64Milli(${params.bind(select.endMs, "Int64")})
       GROUP BY fingerprint`,
      params,
    );
    return groupByStream(
      series,
      rows,
      (row) => row.fp,
      (s, [row]): SampleProbeSeries => ({
        labels: s.labels,
        boundary: row!.boundary.map((text) => {
          const [t, v] = text.split(" ");
          return { timeMs: Number(t), value: parseFloatText(v!) };
        }),
        nan: Number(row!.nan),
        inexact: Number(row!.inexact),
      }),
    );
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
    ];
    for (const [table, column, days] of cutoffs) {
      const params = new Params(clickhouseDialect);
      const cutoff = params.bind(Math.floor((nowMs - days * 86_400_000) / 1000), "Int64");
      await this.withRetry(`retention on ${table}`, () =>
        this.client.command({
          query: `DELETE FROM ${this.db}.${table} WHERE ${column} < toDateTime(${cutoff})`,
          query_params: params.named(),
          clickhouse_settings: { mutations_sync: "2" },
        }),
      );
    }
  }

  async putFleetRecords(records: FleetRecord[]): Promise<void> {
    await this.insert(
      "fleet_records",
      records.map((r) => ({ kind: r.kind, id: r.id, updated_ms: r.updatedMs, body: r.body })),
    );
  }

  async fleetRecords(kind: FleetRecordKind, id?: string): Promise<FleetRecord[]> {
    const params = new Params(clickhouseDialect);
    const query = fleetRecordsQuery(
      `${this.db}.fleet_records`,
      params.bind(kind, "String"),
      id === undefined ? undefined : params.bind(id, "String"),
    );
    return fleetRecordsOf(kind, await this.rows("fleet record read", query, params));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
