import { BIGINT, DOUBLE, type DuckDBType, type JS, LIST, MAP, UBIGINT, UTINYINT, VARCHAR } from "@duckdb/node-api";
import type { Labels } from "../proto/labels.js";
import type { Dialect } from "./sql.js";
import { RESOLUTION_MS, type Resolution } from "./store.js";
import { StoreError } from "./values.js";
import { labelsOf } from "../proto/labels.js";

// How the embedded store speaks SQL: the dialect of storage/sql.ts's shared conditions, the DuckDB types of bound
// parameters, and the conversions between Bifrost's values and DuckDB's (label maps, rollup tables, second-aligned
// times as ClickHouse aligns them).

export const duckdbDialect: Dialect = {
  placeholder: (index) => `$${index + 1}`,
  // A missing key reads as NULL.
  label: (column, name) => `coalesce(${column}[${name}], '')`,
  // Unanchored RE2 (matchers arrive anchored); `s` lets `.` match a line break, as ClickHouse's match() does.
  regexMatch: (subject, pattern) => `regexp_matches(${subject}, ${pattern}, 's')`,
  contains: (subject, needle) => `contains(${subject}, ${needle})`,
};

/** DuckDB types for the (ClickHouse-named) parameter types that statements bind. */
export const PARAM_TYPES: Record<string, DuckDBType> = {
  String: VARCHAR,
  Int64: BIGINT,
  UInt64: UBIGINT,
  "Array(String)": LIST(VARCHAR),
  "Array(Int64)": LIST(BIGINT),
  "Array(UInt64)": LIST(UBIGINT),
  "Array(UInt8)": LIST(UTINYINT),
  "Array(Float64)": LIST(DOUBLE),
  "Array(Map(String, String))": LIST(MAP(VARCHAR, VARCHAR)),
};

export type BatchKind = "logs" | "samples" | "rollups";

export type MapEntries = { key: string; value: string }[];

const NO_ENTRIES: MapEntries = [];

export function mapEntries(labels: Labels): MapEntries {
  const entries: MapEntries = [];
  for (const key in labels) entries.push({ key, value: labels[key]! });
  return entries.length === 0 ? NO_ENTRIES : entries;
}

/** A MAP column as read back (an array of key/value entries), as prototype-free Labels. */
export function mapLabels(value: JS): Labels {
  return labelsOf((value as MapEntries).map((e): [string, string] => [e.key, e.value]));
}

/** The rollup table of a resolution; anything else is refused (as ClickHouse's Enum column refuses it). */
export function rollupTable(resolution: Resolution): string {
  if (!Object.hasOwn(RESOLUTION_MS, resolution))
    throw new StoreError(`unknown rollup resolution ${JSON.stringify(resolution)}`);
  return `rollups_${resolution}`;
}

/** Milliseconds floored to whole seconds, as ClickHouse stores a DateTime bucket. */
export function secondMs(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/** A millisecond bound as ClickHouse's toDateTime(intDiv(ms, 1000)) compares it, in milliseconds. */
export function secondBoundMs(ms: number): number {
  return Math.trunc(ms / 1000) * 1000;
}
