import { type DuckDBConnection, DuckDBDataChunkWriter, type JS, JSToDuckDBValueConverter } from "@duckdb/node-api";
import type { Labels } from "../proto/labels.js";
import type { DuckDBDatabase } from "./duckdb-database.js";
import { type BatchKind, duckdbDialect, type MapEntries, mapEntries, rollupTable, secondMs } from "./duckdb-sql.js";
import { type LogRow, type RollupRow, type SampleRow, type StreamRef, streamSpans } from "./rows.js";
import { Params } from "./sql.js";
import { type AppendResult, RESOLUTION_MS, type Resolution, type SignalKind } from "./store.js";

// The embedded store's writes (storage/duckdb.ts): each batch once, checked against the ledger of written batch
// ids in the same transaction as its rows, the streams index and the aggregates upserted beside them.

/**
 * Writes the batches that the ledger does not hold yet, and records them, in one transaction. Counts as
 * the ClickHouse store does: a batch with rows written now is written, a non-empty batch already stored (or
 * earlier in the same call) is a duplicate, an empty batch is neither.
 */
export function appendOnce<Row extends StreamRef>(
  db: DuckDBDatabase,
  kind: BatchKind,
  batches: { id: string; rows: Row[] }[],
  write: (c: DuckDBConnection, rows: Row[]) => Promise<void>,
): Promise<AppendResult> {
  const nonEmpty = batches.filter((b) => b.rows.length > 0);
  if (nonEmpty.length === 0) return Promise.resolve({ written: 0, duplicates: 0, rows: 0 });
  return db.serial(`${kind} append`, (c) =>
    db.transaction(c, async () => {
      const params = new Params(duckdbDialect);
      const stored = new Set(
        (
          await db.rows<{ batch_id: string }>(
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
      await indexStreams(db, c, kind === "logs" ? "logs" : "metrics", rows);
      await recordBatches(db, c, kind, fresh);
      return { written: fresh.length, duplicates, rows: rows.length };
    }),
  );
}

async function recordBatches(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  kind: BatchKind,
  batches: { id: string; rows: StreamRef[] }[],
): Promise<void> {
  const params = new Params(duckdbDialect);
  const newest = batches.map((b) => b.rows.reduce((max, row) => Math.max(max, row.timeMs), -Infinity));
  await db.rows(
    c,
    `INSERT INTO ingested_batches (kind, batch_id, max_time_ms)
     SELECT ${params.bind(kind, "String")}, unnest(${params.bind(
       batches.map((b) => b.id),
       "Array(String)",
     )}), unnest(${params.bind(newest, "Array(Int64)")})`,
    params,
  );
}

/**
 * The write time of index and volume rows (storage/duckdb-index-changes.ts reads what changed since a time): taken
 * inside the serial queue, so that no read runs between it and the commit.
 */
function writtenNow(params: Params): string {
  return params.bind(Date.now(), "Int64");
}

/** Upserts one index entry per stream of the rows, widening its [first_seen, last_seen] span. */
async function indexStreams(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  signal: SignalKind,
  rows: StreamRef[],
): Promise<void> {
  const spans = streamSpans(rows);
  if (spans.length === 0) return;
  const params = new Params(duckdbDialect);
  await db.rows(
    c,
    `INSERT INTO streams AS s (tenant, signal, fingerprint, labels, kind, first_seen_ms, last_seen_ms, written_ms)
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
            )}), ${writtenNow(params)}
     ON CONFLICT (tenant, signal, fingerprint) DO UPDATE SET
       first_seen_ms = least(s.first_seen_ms, excluded.first_seen_ms), last_seen_ms = greatest(s.last_seen_ms, excluded.last_seen_ms),
       written_ms = excluded.written_ms`,
    params,
  );
}

/** Appends rows to `table` through an appender, inside the open transaction. */
async function appendRows(c: DuckDBConnection, table: string, rows: JS[][]): Promise<void> {
  const appender = await c.createAppender(table);
  try {
    const writer = DuckDBDataChunkWriter.forAppender(appender, { converter: JSToDuckDBValueConverter });
    for (const row of rows) writer.appendRow(row);
    writer.flush();
  } finally {
    appender.closeSync();
  }
}

/** Log rows through an appender, and their per-minute volume upserted. */
export async function writeLogs(db: DuckDBDatabase, c: DuckDBConnection, rows: LogRow[]): Promise<void> {
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
      row.arrival,
      row.entry,
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
  await appendRows(c, "logs", out);
  const buckets = [...volume.values()];
  const params = new Params(duckdbDialect);
  await db.rows(
    c,
    `INSERT INTO log_volume_1m AS v (tenant, fingerprint, bucket_ms, entries, bytes, written_ms)
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
            )}), ${writtenNow(params)}
     ON CONFLICT (tenant, fingerprint, bucket_ms) DO UPDATE SET entries = v.entries + excluded.entries, bytes = v.bytes + excluded.bytes,
       written_ms = excluded.written_ms`,
    params,
  );
}

/** Sample rows through an appender. */
export async function writeSamples(c: DuckDBConnection, rows: SampleRow[]): Promise<void> {
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
  await appendRows(c, "samples", out);
}

/** Rollup partials merged into their 1m and 1h buckets. */
export async function writeRollups(db: DuckDBDatabase, c: DuckDBConnection, rows: RollupRow[]): Promise<void> {
  for (const resolution of Object.keys(RESOLUTION_MS) as Resolution[]) {
    const partials = rows.filter((row) => row.resolution === resolution);
    if (partials.length === 0) continue;
    const params = new Params(duckdbDialect);
    const list = (type: string, of: (row: RollupRow) => unknown) => `unnest(${params.bind(partials.map(of), type)})`;
    // Partials of one bucket in this call merge first (an upsert may touch a row only once), then into
    // the stored bucket: the last value is the one with the greatest time, the earlier one on a tie.
    await db.rows(
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
}
