import type { DuckDBConnection, JS } from "@duckdb/node-api";
import type { DuckDBDatabase } from "./duckdb-database.js";
import { duckdbDialect, mapLabels } from "./duckdb-sql.js";
import { Params } from "./sql.js";
import type { IndexChanges, IndexChangesSelect } from "./store.js";
import { StoreError } from "./values.js";

// The embedded store's part of Store.indexChanges: streams index entries and log volume cells whose written_ms is at
// or after the watermark. Upserts replace written_ms, so a row read here is whole; writes run one at a time with
// reads (the serial queue), so every write after this read is stamped after its start.

/** A second, for a wall clock that steps back between this read and a later write. */
const CLOCK_STEP_MS = 1000;

function limitOf(select: IndexChangesSelect): number {
  if (!Number.isSafeInteger(select.limit) || select.limit < 0) throw new StoreError(`bad limit ${select.limit}`);
  return select.limit + 1;
}

export async function readIndexChanges(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  select: IndexChangesSelect,
): Promise<IndexChanges> {
  const watermarkMs = Date.now() - CLOCK_STEP_MS;
  const since = (params: Params) =>
    select.sinceMs === undefined ? "" : `AND written_ms >= ${params.bind(select.sinceMs, "Int64")}`;
  const streamParams = new Params(duckdbDialect);
  const streams = await db.rows<{ fp: bigint; labels: JS; kind: number; first_ms: bigint; last_ms: bigint }>(
    c,
    `SELECT fingerprint AS fp, labels, kind, first_seen_ms AS first_ms, last_seen_ms AS last_ms FROM streams
     WHERE tenant = ${streamParams.bind(select.tenant, "String")} AND signal = ${streamParams.bind(select.signal, "String")}
       ${since(streamParams)}
     LIMIT ${limitOf(select)}`,
    streamParams,
  );
  const volumeParams = new Params(duckdbDialect);
  const cells =
    select.signal !== "logs"
      ? []
      : await db.rows<{ fp: bigint; bucket_ms: bigint; entries: bigint; bytes: bigint }>(
          c,
          `SELECT fingerprint AS fp, bucket_ms, entries, bytes FROM log_volume_1m
           WHERE tenant = ${volumeParams.bind(select.tenant, "String")}
             AND bucket_ms >= ${volumeParams.bind(select.volumeFromMs, "Int64")} ${since(volumeParams)}
           LIMIT ${limitOf(select)}`,
          volumeParams,
        );
  return {
    watermarkMs,
    streams: streams.map((r) => ({
      fingerprint: r.fp.toString(),
      labels: mapLabels(r.labels),
      kind: Number(r.kind),
      firstSeenMs: Number(r.first_ms),
      lastSeenMs: Number(r.last_ms),
    })),
    volume: cells.map((r) => ({
      fingerprint: r.fp.toString(),
      minuteMs: Number(r.bucket_ms),
      entries: Number(r.entries),
      bytes: Number(r.bytes),
    })),
  };
}
