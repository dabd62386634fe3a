import type { DuckDBConnection } from "@duckdb/node-api";
import type { MetricMetadata } from "../proto/batch.js";
import type { DuckDBDatabase } from "./duckdb-database.js";
import { duckdbDialect, rollupTable, secondBoundMs } from "./duckdb-sql.js";
import {
  groupByStream,
  INEXACT_BOUND,
  rollupPoints,
  rollupSlices,
  samplePoints,
  sampleSlices,
  storedMetadata,
} from "./rows.js";
import { Params } from "./sql.js";
import type { IndexedStream } from "./streams-index.js";
import type {
  MetadataSelect,
  RollupPoints,
  RollupSelect,
  RollupSliceSelect,
  RollupSliceSeries,
  SampleProbe,
  SampleProbeSeries,
  SamplePoints,
  SampleSelect,
  SampleSliceSelect,
  SampleSliceSeries,
} from "./store.js";

// The metric reads of the embedded store, on its one connection, once it has looked the series up.

/** The raw samples of `series` in [startMs, endMs), by series in time order. */
export async function readSamples(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  series: IndexedStream[],
  select: SampleSelect,
): Promise<SamplePoints[]> {
  const params = new Params(duckdbDialect);
  const data = await db.seriesColumns(
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
}

/**
 * The raw samples of `series` summed up per slice by the engine: one row per series and slice that holds samples,
 * instead of one per sample. A staleness marker is a NaN and counts as special, as negative zero does.
 */
export async function readSampleSlices(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  series: IndexedStream[],
  select: SampleSliceSelect,
): Promise<SampleSliceSeries[]> {
  const params = new Params(duckdbDialect);
  const figure = (name: "sum" | "min" | "max", sql: string) => (select.figures.includes(name) ? sql : "0::DOUBLE");
  const data = await db.seriesColumns(
    c,
    `SELECT fingerprint,
            ((timestamp_ms - ${params.bind(select.baseMs + 1, "Int64")}) // ${params.bind(select.widthMs, "Int64")})::DOUBLE AS slice,
            count(*)::DOUBLE, ${figure("sum", "sum(value)")}, ${figure("min", "min(value)")}, ${figure("max", "max(value)")},
            (count(*) FILTER (WHERE isnan(value) OR (value = 0 AND signbit(value))))::DOUBLE,
            ${figure("sum", `(count(*) FILTER (WHERE NOT isnan(value) AND (value != floor(value) OR abs(value) >= ${INEXACT_BOUND})))::DOUBLE`)}
     FROM samples
     WHERE tenant = ${params.bind(select.tenant, "String")}
       AND fingerprint IN (SELECT unnest(${params.bind(
         series.map((s) => BigInt(s.fingerprint)),
         "Array(UInt64)",
       )}))
       AND timestamp_ms >= ${params.bind(select.baseMs + 1, "Int64")}
       AND timestamp_ms < ${params.bind(select.baseMs + select.slices * select.widthMs + 1, "Int64")}
     GROUP BY fingerprint, slice ORDER BY fingerprint, slice`,
    params,
    7,
  );
  return sampleSlices(series, data);
}

/** The rollup buckets of `series` at the selected resolution. */
export async function readRollups(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  series: IndexedStream[],
  select: RollupSelect,
): Promise<RollupPoints[]> {
  const table = rollupTable(select.resolution);
  const params = new Params(duckdbDialect);
  const data = await db.seriesColumns(
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
}

/** The rollup buckets of `series` merged per slice, reading only the columns the pushdown uses. */
export async function readRollupSlices(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  series: IndexedStream[],
  select: RollupSliceSelect,
): Promise<RollupSliceSeries[]> {
  const params = new Params(duckdbDialect);
  const base = params.bind(select.baseMs, "Int64");
  const width = params.bind(select.widthMs, "Int64");
  const head = `(bucket_ms - ${base}) % ${width} = 0`;
  const data = await db.seriesColumns(
    c,
    `SELECT fingerprint, ((bucket_ms - ${base}) // ${width})::DOUBLE AS slice, sum(count)::DOUBLE, sum(sum),
            coalesce(sum(count) FILTER (WHERE ${head}), 0)::DOUBLE,
            coalesce(min(min) FILTER (WHERE ${head}), 0), coalesce(max(max) FILTER (WHERE ${head}), 0),
            coalesce(min(min) FILTER (WHERE NOT ${head}), 0), coalesce(max(max) FILTER (WHERE NOT ${head}), 0)
     FROM ${rollupTable(select.resolution)}
     WHERE tenant = ${params.bind(select.tenant, "String")}
       AND fingerprint IN (SELECT unnest(${params.bind(
         series.map((s) => BigInt(s.fingerprint)),
         "Array(UInt64)",
       )}))
       AND bucket_ms >= ${params.bind(secondBoundMs(select.baseMs), "Int64")}
       AND bucket_ms < ${params.bind(secondBoundMs(select.baseMs + select.slices * select.widthMs), "Int64")}
     GROUP BY fingerprint, slice ORDER BY fingerprint, slice`,
    params,
    8,
  );
  return rollupSlices(series, data);
}

/** What the PromQL pushdown must know of `series` before it trusts rollups: boundary samples, NaNs, inexact values. */
export async function probeSamples(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  series: IndexedStream[],
  select: SampleProbe,
): Promise<SampleProbeSeries[]> {
  const params = new Params(duckdbDialect);
  const onBoundary = `timestamp_ms % ${params.bind(select.alignMs, "Int64")} = 0`;
  const rows = await db.rows<{ fp: bigint; times: bigint[]; values: number[]; nan: bigint; inexact: bigint }>(
    c,
    `SELECT fingerprint AS fp,
            coalesce(list(timestamp_ms ORDER BY timestamp_ms) FILTER (WHERE ${onBoundary}), []) AS times,
            coalesce(list(value ORDER BY timestamp_ms) FILTER (WHERE ${onBoundary}), []) AS values,
            count(*) FILTER (WHERE isnan(value)) AS nan,
            ${select.sums ? `count(*) FILTER (WHERE NOT isnan(value) AND (value != floor(value) OR abs(value) >= ${INEXACT_BOUND}))` : "0"} AS inexact
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
}

/** The latest metadata of each metric family seen in [startMs, endMs). */
export async function readMetricMetadata(
  db: DuckDBDatabase,
  c: DuckDBConnection,
  select: MetadataSelect,
): Promise<MetricMetadata[]> {
  const params = new Params(duckdbDialect);
  const metric = select.metric === undefined ? "" : `AND metric_family = ${params.bind(select.metric, "String")}`;
  const rows = await db.rows<{ metric_family: string; type: string; help: string; unit: string }>(
    c,
    `SELECT metric_family, type, help, unit FROM metric_metadata
     WHERE tenant = ${params.bind(select.tenant, "String")} ${metric}
       AND last_seen_ms >= ${params.bind(select.startMs, "Int64")} AND last_seen_ms < ${params.bind(select.endMs, "Int64")}
     ORDER BY metric_family, last_seen_ms DESC`,
    params,
  );
  return rows.map(storedMetadata);
}
