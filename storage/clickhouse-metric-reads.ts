import type { MetricMetadata } from "../proto/batch.js";
import { type ClickHouseDatabase, clickhouseDialect } from "./clickhouse-database.js";
import {
  groupByStream,
  INEXACT_BOUND,
  rollupPoints,
  samplePoints,
  type SeriesColumns,
  storedMetadata,
} from "./rows.js";
import { Params } from "./sql.js";
import type { IndexedStream } from "./streams-index.js";
import {
  type MetadataSelect,
  type RollupPoints,
  type RollupSelect,
  type RollupSliceSelect,
  type SampleProbe,
  type SampleProbeSeries,
  type SamplePoints,
  type SampleSelect,
  type SampleSliceSelect,
} from "./store.js";
import { parseFloatText } from "./values.js";

// The metric reads of the ClickHouse store, once it has looked the series up in the streams index.

/** The raw samples of `series` in [startMs, endMs), by series in time order. */
export async function readSamples(
  db: ClickHouseDatabase,
  series: IndexedStream[],
  select: SampleSelect,
): Promise<SamplePoints[]> {
  const params = new Params(clickhouseDialect);
  const data = await db.seriesColumns(
    "sample select",
    `SELECT fingerprint, toFloat64(toUnixTimestamp64Milli(timestamp)), value
     FROM ${db.name}.samples
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

/**
 * The raw samples of the series `streams` finds (a lookup as a subquery, which the caller runs beside this read
 * rather than before it) summed up per slice by the engine: one row per series and slice that holds samples,
 * instead of one per sample. A staleness marker is a NaN and counts as special, as negative zero does (its bits).
 */
export async function readSampleSlices(
  db: ClickHouseDatabase,
  streams: (params: Params) => string,
  select: SampleSliceSelect,
): Promise<SeriesColumns> {
  const params = new Params(clickhouseDialect);
  const figure = (name: "sum" | "min" | "max", sql: string) => (select.figures.includes(name) ? sql : "toFloat64(0)");
  return db.seriesColumns(
    "sample slices",
    `SELECT fingerprint,
            toFloat64(intDiv(toUnixTimestamp64Milli(timestamp) - ${params.bind(select.baseMs + 1, "Int64")}, ${params.bind(select.widthMs, "Int64")})) AS slice,
            toFloat64(count()), ${figure("sum", "sum(value)")}, ${figure("min", "min(value)")}, ${figure("max", "max(value)")},
            toFloat64(countIf(isNaN(value) OR (value = 0 AND reinterpretAsUInt64(value) != 0))),
            ${figure("sum", `toFloat64(countIf(NOT isNaN(value) AND (value != floor(value) OR abs(value) >= ${INEXACT_BOUND})))`)}
     FROM ${db.name}.samples
     WHERE tenant = ${params.bind(select.tenant, "String")} AND fingerprint IN (${streams(params)})
       AND timestamp >= fromUnixTimestamp64Milli(${params.bind(select.baseMs + 1, "Int64")})
       AND timestamp < fromUnixTimestamp64Milli(${params.bind(select.baseMs + select.slices * select.widthMs + 1, "Int64")})
     GROUP BY fingerprint, slice ORDER BY fingerprint, slice`,
    params,
    7,
  );
}

/** The merged rollup buckets of `series` at the selected resolution. */
export async function readRollups(
  db: ClickHouseDatabase,
  series: IndexedStream[],
  select: RollupSelect,
): Promise<RollupPoints[]> {
  const params = new Params(clickhouseDialect);
  const data = await db.seriesColumns(
    "rollup select",
    `SELECT fingerprint, toFloat64(toUnixTimestamp(bucket) * 1000), toFloat64(min(min)), toFloat64(max(max)), toFloat64(sum(sum)),
            toFloat64(sum(count)), toFloat64(argMaxMerge(last)), toFloat64(sum(increase))
     FROM ${db.name}.rollups_${select.resolution}
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

/**
 * The merged rollup buckets of the series `streams` finds (as readSampleSlices) merged again per slice, reading
 * only the columns the pushdown uses.
 */
export async function readRollupSlices(
  db: ClickHouseDatabase,
  streams: (params: Params) => string,
  select: RollupSliceSelect,
): Promise<SeriesColumns> {
  const params = new Params(clickhouseDialect);
  const base = params.bind(select.baseMs, "Int64");
  const width = params.bind(select.widthMs, "Int64");
  return db.seriesColumns(
    "rollup slices",
    // Every figure merges across a bucket's unmerged rows as across buckets: one GROUP BY, not one per bucket first.
    `WITH toInt64(toUnixTimestamp(bucket)) * 1000 AS ms, (ms - ${base}) % ${width} = 0 AS head
     SELECT fingerprint, toFloat64(intDiv(ms - ${base}, ${width})) AS slice, toFloat64(sum(count)), sum(sum),
            toFloat64(sumIf(count, head)), minIf(min, head), maxIf(max, head), minIf(min, NOT head), maxIf(max, NOT head)
     FROM ${db.name}.rollups_${select.resolution}
     WHERE tenant = ${params.bind(select.tenant, "String")} AND fingerprint IN (${streams(params)})
       AND bucket >= toDateTime(intDiv(${base}, 1000))
       AND bucket < toDateTime(intDiv(${params.bind(select.baseMs + select.slices * select.widthMs, "Int64")}, 1000))
     GROUP BY fingerprint, slice ORDER BY fingerprint, slice`,
    params,
    8,
  );
}

/** What the PromQL pushdown must know of `series` before it trusts rollups: boundary samples, NaNs, inexact values. */
export async function probeSamples(
  db: ClickHouseDatabase,
  series: IndexedStream[],
  select: SampleProbe,
): Promise<SampleProbeSeries[]> {
  const params = new Params(clickhouseDialect);
  const onBoundary = `toUnixTimestamp64Milli(timestamp) % ${params.bind(select.alignMs, "Int64")} = 0`;
  const rows = await db.rows<{ fp: string; boundary: string[]; nan: string; inexact: string }>(
    "sample probe",
    `SELECT toString(fingerprint) AS fp,
            groupArrayIf(concat(toString(toUnixTimestamp64Milli(timestamp)), ' ', toString(value)), ${onBoundary}) AS boundary,
            toString(countIf(isNaN(value))) AS nan,
            ${select.sums ? `toString(countIf(NOT isNaN(value) AND (value != floor(value) OR abs(value) >= ${INEXACT_BOUND})))` : "'0'"} AS inexact
     FROM ${db.name}.samples
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

/** The latest metadata of each metric family seen in [startMs, endMs). */
export async function readMetricMetadata(db: ClickHouseDatabase, select: MetadataSelect): Promise<MetricMetadata[]> {
  const params = new Params(clickhouseDialect);
  const metric = select.metric === undefined ? "" : `AND metric_family = ${params.bind(select.metric, "String")}`;
  const rows = await db.rows<{ metric_family: string; type: string; help: string; unit: string }>(
    "metric metadata",
    `SELECT metric_family, type, help, unit, toUnixTimestamp64Milli(max(last_seen)) AS seen
     FROM ${db.name}.metric_metadata
     WHERE tenant = ${params.bind(select.tenant, "String")} ${metric}
     GROUP BY metric_family, type, help, unit
     HAVING seen >= ${params.bind(select.startMs, "Int64")} AND seen < ${params.bind(select.endMs, "Int64")}
     ORDER BY metric_family, seen DESC`,
    params,
  );
  return rows.map(storedMetadata);
}
