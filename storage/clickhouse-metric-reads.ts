import type { MetricMetadata } from "../proto/batch.js";
import { type ClickHouseDatabase, clickhouseDialect } from "./clickhouse-database.js";
import { groupByStream, INEXACT_BOUND, rollupPoints, samplePoints, storedMetadata } from "./rows.js";
import { Params } from "./sql.js";
import type { IndexedStream } from "./streams-index.js";
import {
  type MetadataSelect,
  type RollupPoints,
  type RollupSelect,
  type SampleProbe,
  type SampleProbeSeries,
  type SamplePoints,
  type SampleSelect,
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
            toString(countIf(NOT isNaN(value) AND (value != floor(value) OR abs(value) >= ${INEXACT_BOUND}))) AS inexact
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
