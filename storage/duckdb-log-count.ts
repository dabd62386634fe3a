import type { DuckDBConnection, JS } from "@duckdb/node-api";
import type { DuckDBDatabase } from "./duckdb-database.js";
import { mapLabels } from "./duckdb-sql.js";
import { MAX_RECOUNTED_CELLS } from "./log-dedup.js";
import { countSeries, groupedCountSeries, streamLabelArrays } from "./rows.js";
import type { Params } from "./sql.js";
import type { LogCountSelect, LogCountSeries } from "./store.js";
import type { IndexedStream } from "./streams-index.js";

// The embedded store's log counts (count_over_time and bytes_over_time pushed down, drilldown), each entry
// counted once as Loki's reads merge identical entries (storage/log-dedup.ts).

/** What a count reads: the streams its matchers found, and the bound conditions on their rows. */
export interface CountInput {
  select: LogCountSelect;
  streams: IndexedStream[];
  params: Params;
  /** The bound parameter holding select.startNs. */
  start: string;
  conditions: string[];
}

/** Counts per step (and per group or stream) of the rows passing the conditions, on the store's connection. */
export async function countLogRows(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  { select, streams, params, start, conditions }: CountInput,
): Promise<LogCountSeries[]> {
  const stepIndex = `(timestamp_ns - ${start}) // ${params.bind(select.stepNs, "Int64")}`;
  const entries = await countedEntries(db, c, params, conditions, stepIndex, select.lineFilters?.length ?? 0);
  // Bytes are UTF-8 bytes (strlen), as ClickHouse's length() of a String.
  const bytes = select.bytes === false ? "0::BIGINT" : "sum(strlen(line))";
  const counts = `${stepIndex} AS k, count(*) AS entries, ${bytes} AS bytes`;
  const pointOf = (row: { k: bigint; entries: bigint; bytes: bigint }): LogCountSeries["points"][number] => ({
    startNs: select.startNs + row.k * select.stepNs,
    count: Number(row.entries),
    bytes: Number(row.bytes),
  });
  if (select.groupBy !== undefined) {
    const names = select.groupBy;
    const groups = groupColumns(params, streams, names);
    const rows = await db.rows<Record<string, string> & { k: bigint; entries: bigint; bytes: bigint }>(
      c,
      `SELECT ${[...groups.columns, counts].join(", ")}
       FROM ${entries} AS logs ${groups.joins.join(" ")}
       GROUP BY ${[...names.map((_, i) => `g${i}`), "k"].join(", ")} ORDER BY k`,
      params,
    );
    return groupedCountSeries(names, rows, (row) => names.map((_, i) => row[`g${i}`]!), pointOf);
  }
  const metadata = select.byMetadata ? "metadata" : "NULL";
  const rows = await db.rows<{ fp: bigint; md: JS; k: bigint; entries: bigint; bytes: bigint }>(
    c,
    `SELECT fingerprint AS fp, ${metadata} AS md, ${counts}
     FROM ${entries} AS logs GROUP BY fingerprint, md, k ORDER BY fingerprint, k`,
    params,
  );
  return countSeries(
    streams,
    rows,
    (row) => row.fp.toString(),
    (row) => (row.md === null ? {} : mapLabels(row.md)),
    pointOf,
  );
}

/**
 * The log rows passing `conditions` as a subquery, each entry once (storage/log-dedup.ts). Only an entry whose
 * timestamp repeats in its stream can be a duplicate: a first query finds the (stream, step) cells where a
 * timestamp repeats (none, unless a push was stored twice or its source stamps entries coarsely), and only
 * their rows are compared line by line (DISTINCT ON), which over every row cost several times the count. The
 * store runs one operation at a time, so no write comes between the two queries. With line filters, the lines
 * are read anyway and a second scan filtering them again cost more than comparing the lines that pass.
 */
async function countedEntries(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  params: Params,
  conditions: string[],
  stepIndex: string,
  lineFilters: number,
): Promise<string> {
  const where = conditions.join(" AND ");
  const deduplicated = (among: string) =>
    `SELECT DISTINCT ON (fingerprint, timestamp_ns, line) fingerprint, timestamp_ns, line, metadata FROM logs
     WHERE ${where} AND ${among}`;
  if (lineFilters > 0) return `(${deduplicated("true")})`;
  const cells = await db.rows<{ fp: bigint; k: bigint }>(
    c,
    `SELECT fingerprint AS fp, k FROM (
       SELECT fingerprint, ${stepIndex} AS k, list_sort(list(timestamp_ns)) AS ts FROM logs WHERE ${where}
       GROUP BY fingerprint, k)
     WHERE list_bool_or(list_transform(range(1, len(ts)), i -> ts[i] = ts[i + 1]))`,
    params,
  );
  const rows = `SELECT fingerprint, timestamp_ns, line, metadata FROM logs WHERE ${where}`;
  if (cells.length === 0) return `(${rows})`;
  if (cells.length > MAX_RECOUNTED_CELLS) return `(${deduplicated("true")})`;
  const cell = `fingerprint::VARCHAR || '/' || (${stepIndex})::VARCHAR`;
  const keys = params.bind(
    cells.map((row) => `${row.fp}/${row.k}`),
    "Array(String)",
  );
  return `(${rows} AND ${cell} NOT IN (SELECT unnest(${keys})) UNION ALL ${deduplicated(`${cell} IN (SELECT unnest(${keys}))`)})`;
}

/**
 * `g<i>` columns with the value of label `names[i]` of each row: the stream's label, joined by fingerprint from
 * bound parallel arrays, else the entry's structured metadata.
 */
function groupColumns(
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
