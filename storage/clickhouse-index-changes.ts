import type { Labels } from "../proto/labels.js";
import { labelsOf } from "../proto/labels.js";
import { type ClickHouseDatabase, clickhouseDialect } from "./clickhouse-database.js";
import { Params } from "./sql.js";
import type { IndexChanges, IndexChangesSelect } from "./store.js";
import { StoreError } from "./values.js";

// The ClickHouse store's part of Store.indexChanges: the streams index entries and log volume cells with a row
// whose `written` (schema.ts WRITTEN_COLUMN, the server's clock when the insert began) is at or after the
// watermark, each read whole: summed or merged over all of its rows, merged or not.

/**
 * An insert is stamped when the server begins it and seen once it commits, so the next read goes back this far
 * before the server's clock at this one: an insert that takes longer to commit is missed until its stream or
 * minute is written again.
 */
const INSERT_MARGIN_MS = 60_000;

export async function readIndexChanges(db: ClickHouseDatabase, select: IndexChangesSelect): Promise<IndexChanges> {
  if (!Number.isSafeInteger(select.limit) || select.limit < 0) throw new StoreError(`bad limit ${select.limit}`);
  const limit = select.limit + 1;
  const since = (params: Params) =>
    select.sinceMs === undefined ? undefined : `fromUnixTimestamp64Milli(${params.bind(select.sinceMs, "Int64")})`;

  const streamParams = new Params(clickhouseDialect);
  const streamsSince = since(streamParams);
  const streams = db.rows<{
    fp: string;
    stream_labels: Labels;
    stream_kind: number;
    first_ms: string;
    last_ms: string;
  }>(
    "index changes",
    `SELECT toString(fingerprint) AS fp, any(labels) AS stream_labels, any(kind) AS stream_kind,
            toString(toUnixTimestamp64Milli(min(first_seen))) AS first_ms,
            toString(toUnixTimestamp64Milli(max(last_seen))) AS last_ms
     FROM ${db.name}.streams
     WHERE tenant = ${streamParams.bind(select.tenant, "String")} AND signal = ${streamParams.bind(select.signal, "String")}
     GROUP BY fingerprint
     ${streamsSince === undefined ? "" : `HAVING max(written) >= ${streamsSince}`}
     LIMIT ${limit}`,
    streamParams,
  );

  const volumeParams = new Params(clickhouseDialect);
  const tenant = volumeParams.bind(select.tenant, "String");
  const from = `toDateTime(${volumeParams.bind(Math.floor(select.volumeFromMs / 1000), "Int64")})`;
  const volumeSince = since(volumeParams);
  // The cells written since are found first (the minmax index on `written` skips the rest), then summed whole.
  const written =
    volumeSince === undefined
      ? ""
      : `AND (fingerprint, bucket) GLOBAL IN (SELECT fingerprint, bucket FROM ${db.name}.log_volume_1m
           WHERE tenant = ${tenant} AND bucket >= ${from} AND written >= ${volumeSince})`;
  const volume =
    select.signal !== "logs"
      ? Promise.resolve([])
      : db.rows<{ fp: string; minute_s: string; entries: string; bytes: string }>(
          "index changes",
          `SELECT toString(fingerprint) AS fp, toString(toUnixTimestamp(bucket)) AS minute_s,
                  toString(sum(entries)) AS entries, toString(sum(bytes)) AS bytes
           FROM ${db.name}.log_volume_1m
           WHERE tenant = ${tenant} AND bucket >= ${from} ${written}
           GROUP BY fingerprint, bucket
           LIMIT ${limit}`,
          volumeParams,
        );

  const now = db.rows<{ now_ms: string }>(
    "index changes",
    "SELECT toString(toUnixTimestamp64Milli(now64(3))) AS now_ms",
    new Params(clickhouseDialect),
  );
  const [nowRows, streamRows, volumeRows] = await Promise.all([now, streams, volume]);
  return {
    watermarkMs: Number(nowRows[0]!.now_ms) - INSERT_MARGIN_MS,
    streams: streamRows.map((r) => ({
      fingerprint: r.fp,
      labels: labelsOf(r.stream_labels),
      kind: Number(r.stream_kind),
      firstSeenMs: Number(r.first_ms),
      lastSeenMs: Number(r.last_ms),
    })),
    volume: volumeRows.map((r) => ({
      fingerprint: r.fp,
      minuteMs: Number(r.minute_s) * 1000,
      entries: Number(r.entries),
      bytes: Number(r.bytes),
    })),
  };
}
