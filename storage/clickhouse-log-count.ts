import { TupleParam } from "@clickhouse/client";
import type { Labels } from "../proto/labels.js";
import type { ClickHouseDatabase } from "./clickhouse-database.js";
import { type CountRow, MAX_RECOUNTED_CELLS, sumCountRows } from "./log-dedup.js";
import { countSeries, groupedCountSeries, streamLabelArrays } from "./rows.js";
import type { Params } from "./sql.js";
import type { LogCountSelect, LogCountSeries } from "./store.js";
import type { IndexedStream } from "./streams-index.js";

// The ClickHouse store's log counts (count_over_time and bytes_over_time pushed down, volume, drilldown).
// Each entry counts once, as Loki's reads merge identical entries (storage/log-dedup.ts). Comparing every
// line with every other of its stream and timestamp (LIMIT 1 BY fingerprint, timestamp, line) cost ten times
// the count itself; instead one scan counts each (stream, step) cell as stored and, from the cell's sorted
// timestamps, tells whether any timestamp repeats in it. Only an entry whose timestamp repeats can be a
// duplicate, so the cells without repeats are exact as counted, and only the cells with repeats (none, unless
// a push was stored twice or its source stamps entries coarsely) are counted again with lines compared.

/** The row-level grouping columns and how the final count groups by them and by the stream's labels. */
interface CountShape {
  /** Columns computed from each row (its structured metadata), with their aliases. */
  rowColumns: { expr: string; alias: string }[];
  /** The final SELECT's columns and GROUP BY keys over fingerprint, step_index and the row columns' aliases. */
  columns: string[];
  keys: string[];
  order: string;
  series: (rows: ResultRow[]) => LogCountSeries[];
}

type ResultRow = Record<string, string | number | Labels> & CountRow & { k: string };

/**
 * The counts of `select` over the log rows passing `conditions` (tenant, streams, time range and line filters
 * of the select), for the select's `streams`; `start` is the bound start of the range.
 */
export async function countClickHouseLogs(
  db: ClickHouseDatabase,
  params: Params,
  select: LogCountSelect,
  streams: IndexedStream[],
  conditions: string[],
  start: string,
): Promise<LogCountSeries[]> {
  const stepIndex = `intDiv(toUnixTimestamp64Nano(timestamp) - ${start}, ${params.bind(select.stepNs.toString(), "Int64")})`;
  const shape = countShape(params, select, streams);
  const rowColumns = shape.rowColumns.map((c) => `${c.expr} AS ${c.alias}`);
  const aliases = shape.rowColumns.map((c) => c.alias);
  const bytes = select.bytes === false ? "toUInt64(0)" : "length(line)";
  const final = (from: string, cellColumns: string[] = [], cellKeys: string[] = []) =>
    `SELECT ${[...shape.columns, ...cellColumns].join(", ")} FROM ${from}
     GROUP BY ${[...shape.keys, ...cellKeys].join(", ")} ORDER BY ${shape.order}`;
  // One scan: per stream, step and row grouping the entries, bytes and timestamps; per (stream, step) cell
  // whether a timestamp repeats (the sorted timestamps differ by 0 somewhere after the first, which is 0).
  const cells = `(SELECT fingerprint, step_index, part.1 AS n, part.2 AS b${aliases.map((a, i) => `, part.${i + 3} AS ${a}`).join("")}, repeats
     FROM (SELECT fingerprint, step_index, groupArray(tuple(n, b${aliases.map((a) => `, ${a}`).join("")})) AS parts,
                  countEqual(arrayDifference(arraySort(groupArrayArray(ts))), 0) > 1 AS repeats
           FROM (SELECT fingerprint, ${stepIndex} AS step_index, ${[...rowColumns, `count() AS n, sum(${bytes}) AS b`].join(", ")},
                        groupArray(toUnixTimestamp64Nano(timestamp)) AS ts
                 FROM ${db.name}.logs WHERE ${conditions.join(" AND ")}
                 GROUP BY ${["fingerprint", "step_index", ...aliases].join(", ")})
           GROUP BY fingerprint, step_index)
     ARRAY JOIN parts AS part)`;
  const counted = await db.rows<ResultRow & { repeats: boolean | number; cell_fp: string }>(
    "log count",
    // Cells with repeats come back one row per stream (cell_fp), to be counted again.
    final(cells, ["repeats", "toString(if(repeats, fingerprint, 0)) AS cell_fp"], ["repeats", "cell_fp"]),
    params,
  );
  // Without the cell columns, so that these rows and the recount's sum by the same keys.
  const exact = counted.filter((row) => !row.repeats).map(({ repeats: _, cell_fp: __, ...row }): ResultRow => row);
  const repeated = [
    ...new Map(
      counted
        .filter((row) => row.repeats)
        .map((row): [string, [bigint, bigint]] => [`${row.cell_fp}/${row.k}`, [BigInt(row.cell_fp), BigInt(row.k)]]),
    ).values(),
  ];
  if (repeated.length === 0) return shape.series(exact);
  // The cells with repeated timestamps again, each entry once (LIMIT 1 BY); with many such cells, every cell.
  const recounted = [`(${conditions.join(" AND ")})`];
  if (repeated.length <= MAX_RECOUNTED_CELLS)
    recounted.push(
      `fingerprint IN ${params.bind([...new Set(repeated.map(([fp]) => fp))], "Array(UInt64)")}`,
      `(fingerprint, ${stepIndex}) IN ${params.bind(
        repeated.map((cell) => new TupleParam(cell)),
        "Array(Tuple(UInt64, Int64))",
      )}`,
    );
  const entries = `(SELECT fingerprint, ${stepIndex} AS step_index, ${[...rowColumns, `1 AS n, ${bytes} AS b`].join(", ")}
     FROM (SELECT fingerprint, timestamp, line, metadata FROM ${db.name}.logs WHERE ${recounted.join(" AND ")}
           LIMIT 1 BY fingerprint, timestamp, line))`;
  const again = await db.rows<ResultRow>("log recount", final(entries), params);
  return shape.series(sumCountRows(repeated.length <= MAX_RECOUNTED_CELLS ? [exact, again] : [again]));
}

function countShape(params: Params, select: LogCountSelect, streams: IndexedStream[]): CountShape {
  const sums = ["toString(step_index) AS k", "toString(sum(n)) AS entries", "toString(sum(b)) AS bytes"];
  const pointOf = (row: ResultRow): LogCountSeries["points"][number] => ({
    startNs: select.startNs + BigInt(row.k) * select.stepNs,
    count: Number(row.entries),
    bytes: Number(row.bytes),
  });
  if (select.groupBy !== undefined) {
    const names = select.groupBy;
    const groups = groupColumns(params, streams, names);
    return {
      rowColumns: groups.rowColumns,
      columns: [...groups.columns, ...sums],
      keys: [...groups.keys, "step_index"],
      order: "step_index",
      series: (rows) => groupedCountSeries(names, rows, groups.valuesOf, pointOf),
    };
  }
  return {
    rowColumns: [{ expr: select.byMetadata ? "metadata" : "map()", alias: "md" }],
    columns: ["toString(fingerprint) AS fp", "md", ...sums],
    keys: ["fingerprint", "md", "step_index"],
    order: "fingerprint, step_index",
    series: (rows) =>
      countSeries(
        streams,
        rows,
        (row) => String(row.fp),
        (row) => row.md as Labels,
        pointOf,
      ),
  };
}

/**
 * The columns that group rows by the value of each label of `names`, and how to read the values back. The
 * stream's label is looked up by fingerprint in bound arrays (a hash lookup in transform) as a number, which
 * groups much faster than a string does; only streams without the label read the entry's structured metadata.
 */
function groupColumns(
  params: Params,
  streams: IndexedStream[],
  names: string[],
): {
  rowColumns: { expr: string; alias: string }[];
  columns: string[];
  keys: string[];
  valuesOf: (row: ResultRow) => string[];
} {
  const rowColumns: { expr: string; alias: string }[] = [];
  const columns: string[] = [];
  const keys: string[] = [];
  const decoders = streamLabelArrays(streams, names).map(({ fingerprints, values }, i) => {
    const metadata = `metadata[${params.bind(names[i], "String")}]`;
    if (fingerprints.length === 0) {
      rowColumns.push({ expr: metadata, alias: `m${i}` });
      columns.push(`m${i}`);
      keys.push(`m${i}`);
      return (row: ResultRow) => String(row[`m${i}`]);
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
      rowColumns.push({ expr: `if(${id} = 0, ${metadata}, '')`, alias: `m${i}` });
      columns.push(`m${i}`);
      keys.push(`m${i}`);
    }
    return (row: ResultRow) => {
      const stream = Number(row[`g${i}`]);
      return stream > 0 ? distinct[stream - 1]! : String(row[`m${i}`]);
    };
  });
  return { rowColumns, columns, keys, valuesOf: (row) => decoders.map((decode) => decode(row)) };
}
