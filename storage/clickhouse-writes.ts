import { type EncodedLogBatch, LOG_COLUMNS } from "./log-rowbinary.js";
import { type ClickHouseDatabase, clickhouseDialect } from "./clickhouse-database.js";
import { type StreamRef, type StreamSpan, streamSpans } from "./rows.js";
import { Params } from "./sql.js";
import type { AppendResult, SignalKind } from "./store.js";
import { msText } from "./values.js";

// The ClickHouse store's writes (storage/clickhouse.ts): each (batch, partition) once, and the streams index.

/**
 * Writes the rows of these batches that the table does not hold yet. A batch is written with one insert,
 * and ClickHouse commits an insert per partition atomically, so each (batch, partition) is either wholly
 * stored or not: one query on the batch_id bloom index finds which, only the missing partitions are written,
 * and a replay changes nothing however long after the first write it comes (insert_deduplication_token,
 * also set, only remembers a bounded window of inserts). A failed attempt is retried from the check: an insert
 * whose answer was lost (the engine killed after it committed) is then found stored, not written again.
 */
export async function appendOnce<Row extends StreamRef>(
  db: ClickHouseDatabase,
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
  const check = `SELECT DISTINCT batch_id, toString(${partition.expr}) AS part FROM ${db.name}.${table}
     WHERE batch_id IN ${params.bind(
       batches.map((b) => b.id),
       "Array(String)",
     )}
       AND ${time.column} >= ${time.toSql(params, earliest)} AND ${time.column} <= ${time.toSql(params, latest)}`;
  const { inserted, written, duplicates } = await db.withRetry(`${table} write`, async () => {
    const present = await db.storedParts(check, params);
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
      await db.insertOnce(table, format, body, token);
    }
    return { inserted, written, duplicates };
  });
  await indexStreams(db, "metrics", streamSpans(inserted));
  return { written, duplicates: duplicates + repeated, rows: inserted.length };
}

async function indexStreams(db: ClickHouseDatabase, signal: SignalKind, spans: StreamSpan[]): Promise<void> {
  if (spans.length === 0) return;
  // Index rows merge by min/max, so writing one again is harmless; no dedup token needed.
  await db.insert(
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

/** appendOnce for logs, whose rows come encoded per (batch, day) already. */
export async function writeEncodedLogs(db: ClickHouseDatabase, batches: EncodedLogBatch[]): Promise<AppendResult> {
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
  const check = `SELECT DISTINCT batch_id, toString(toDate(timestamp)) AS part FROM ${db.name}.logs
     WHERE batch_id IN ${params.bind([...unique.keys()], "Array(String)")}
       AND timestamp >= fromUnixTimestamp64Nano(${params.bind(earliest.toString(), "Int64")})
       AND timestamp <= fromUnixTimestamp64Nano(${params.bind(latest.toString(), "Int64")})`;
  // Retried from the check, as in appendOnce.
  const { missing, writtenIds } = await db.withRetry("logs write", async () => {
    const present = await db.storedParts(check, params);
    const missing = parts.filter(({ batch, part }) => !present.has(`${batch.id}\u0000${part.day}`));
    const writtenIds = new Set(missing.map(({ batch }) => batch.id));
    if (missing.length > 0) {
      await db.insertOnce(
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
  await indexStreams(db, "logs", [...spans.values()]);
  return {
    written: writtenIds.size,
    duplicates: duplicates + repeated,
    rows: missing.reduce((n, { part }) => n + part.rows, 0),
  };
}
