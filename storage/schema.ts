// Bifrost's ClickHouse tables, defined once and rendered either for a single server or for a cluster
// (Replicated* engines ON CLUSTER, with a Distributed table of the plain name in front of each local table, so
// queries read the same names in both layouts). Migrations (storage/migrations.ts) apply them in order.

export interface Retention {
  logs_days: number;
  samples_days: number;
  rollups_1m_days: number;
  rollups_1h_days: number;
}

export interface SchemaTarget {
  database: string;
  retention: Retention;
  /** Cluster name for the replicated layout; absent for a single server. */
  cluster?: string;
}

type Engine = "MergeTree" | "AggregatingMergeTree" | "SummingMergeTree" | "ReplacingMergeTree";

export interface TableDef {
  name: string;
  columns: string[];
  indexes?: string[];
  engine: Engine;
  /** The engine's parameters, such as ReplacingMergeTree's version column. */
  engineArgs?: string[];
  partitionBy?: string;
  orderBy: string;
  ttl?: (r: Retention) => string;
  settings?: string[];
  /** Sharding key of the Distributed table in the cluster layout. */
  shardBy: string;
}

interface ViewDef {
  name: string;
  to: string;
  select: (db: string, table: (name: string) => string) => string;
}

const DEDUP = "non_replicated_deduplication_window = 10000";

/**
 * When a streams index or log volume row was written, by the server's clock (migration 6 adds it to tables made
 * before): the query service's index catalog reads the entries and cells written since its last read. Merges keep
 * the latest, so a merged row still tells that it changed.
 */
export const WRITTEN_COLUMN = "written SimpleAggregateFunction(max, DateTime64(3)) DEFAULT now64(3)";

/** Skips the parts and granules of log_volume_1m that nothing was written to since a time. */
export const WRITTEN_INDEX = "INDEX written_minmax written TYPE minmax GRANULARITY 1";

/** The logs table's arrival order columns (migration 5 adds them to a table made before). */
export const LOG_ARRIVAL_COLUMNS = ["arrival Int64 CODEC(Delta(8), ZSTD(1))", "entry UInt32 CODEC(ZSTD(1))"];

export const TABLES: TableDef[] = [
  {
    name: "logs",
    columns: [
      "tenant LowCardinality(String)",
      "fingerprint UInt64",
      "timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1))",
      // No copy of the stream's labels per row: reads take them from the streams index by fingerprint.
      "line String CODEC(ZSTD(1))",
      "metadata Map(LowCardinality(String), String) CODEC(ZSTD(1))",
      "batch_id String CODEC(ZSTD(1))",
      // Arrival order, for entries that share a timestamp: when the batch was cut, and the entry's place in it.
      ...LOG_ARRIVAL_COLUMNS,
    ],
    // No index on line: an n-gram bloom filter cost the engine more CPU per inserted row than everything else
    // together, and line filters run after the (tenant, fingerprint, timestamp) key has narrowed the scan.
    indexes: ["INDEX batch_ids batch_id TYPE bloom_filter(0.01) GRANULARITY 2"],
    engine: "MergeTree",
    partitionBy: "toDate(timestamp)",
    orderBy: "(tenant, fingerprint, timestamp)",
    ttl: (r) => `toDateTime(timestamp) + INTERVAL ${r.logs_days} DAY`,
    settings: ["ttl_only_drop_parts = 1", DEDUP],
    shardBy: "cityHash64(tenant, fingerprint)",
  },
  {
    name: "streams",
    columns: [
      "tenant LowCardinality(String)",
      "signal Enum8('logs' = 1, 'metrics' = 2)",
      "fingerprint UInt64",
      // Functions of the fingerprint, declared as aggregates so that merges keep them by rule (ClickHouse 26
      // refuses plain columns outside the sorting key of an AggregatingMergeTree).
      "labels SimpleAggregateFunction(any, Map(String, String))",
      "kind SimpleAggregateFunction(any, UInt8)",
      "first_seen SimpleAggregateFunction(min, DateTime64(3))",
      "last_seen SimpleAggregateFunction(max, DateTime64(3))",
      WRITTEN_COLUMN,
    ],
    engine: "AggregatingMergeTree",
    orderBy: "(tenant, signal, fingerprint)",
    shardBy: "cityHash64(tenant, fingerprint)",
  },
  {
    name: "samples",
    columns: [
      "tenant LowCardinality(String)",
      "fingerprint UInt64",
      "timestamp DateTime64(3) CODEC(DoubleDelta, ZSTD(1))",
      "value Float64 CODEC(Gorilla, ZSTD(1))",
      "batch_id String CODEC(ZSTD(1))",
    ],
    indexes: ["INDEX batch_ids batch_id TYPE bloom_filter(0.01) GRANULARITY 2"],
    engine: "MergeTree",
    partitionBy: "toDate(timestamp)",
    orderBy: "(tenant, fingerprint, timestamp)",
    ttl: (r) => `toDateTime(timestamp) + INTERVAL ${r.samples_days} DAY`,
    settings: ["ttl_only_drop_parts = 1", DEDUP],
    shardBy: "cityHash64(tenant, fingerprint)",
  },
  {
    // Every rollup partial as the aggregator wrote it, with its batch id: the record that makes rollup appends
    // idempotent, and the source the materialized views below merge into the rollup tables.
    name: "rollup_partials",
    columns: [
      "tenant LowCardinality(String)",
      "resolution Enum8('1m' = 1, '1h' = 2)",
      "fingerprint UInt64",
      "bucket DateTime",
      "min Float64",
      "max Float64",
      "sum Float64",
      "count UInt64",
      "last Float64",
      "last_time DateTime64(3)",
      "increase Float64",
      "batch_id String",
    ],
    indexes: ["INDEX batch_ids batch_id TYPE bloom_filter(0.01) GRANULARITY 2"],
    engine: "MergeTree",
    partitionBy: "toYYYYMM(bucket)",
    orderBy: "(tenant, resolution, fingerprint, bucket)",
    ttl: (r) => `bucket + INTERVAL ${Math.max(r.rollups_1m_days, r.rollups_1h_days)} DAY`,
    settings: ["ttl_only_drop_parts = 1", DEDUP],
    shardBy: "cityHash64(tenant, fingerprint)",
  },
  ...(["1m", "1h"] as const).map((resolution): TableDef => ({
    name: `rollups_${resolution}`,
    columns: [
      "tenant LowCardinality(String)",
      "fingerprint UInt64",
      "bucket DateTime CODEC(DoubleDelta, ZSTD(1))",
      "min SimpleAggregateFunction(min, Float64)",
      "max SimpleAggregateFunction(max, Float64)",
      "sum SimpleAggregateFunction(sum, Float64)",
      "count SimpleAggregateFunction(sum, UInt64)",
      "last AggregateFunction(argMax, Float64, DateTime64(3))",
      "increase SimpleAggregateFunction(sum, Float64)",
    ],
    engine: "AggregatingMergeTree",
    partitionBy: "toYYYYMM(bucket)",
    orderBy: "(tenant, fingerprint, bucket)",
    ttl: (r) => `bucket + INTERVAL ${resolution === "1m" ? r.rollups_1m_days : r.rollups_1h_days} DAY`,
    settings: ["ttl_only_drop_parts = 1"],
    shardBy: "cityHash64(tenant, fingerprint)",
  })),
  {
    name: "log_volume_1m",
    columns: [
      "tenant LowCardinality(String)",
      "fingerprint UInt64",
      "bucket DateTime CODEC(DoubleDelta, ZSTD(1))",
      "entries UInt64",
      "bytes UInt64",
      WRITTEN_COLUMN,
    ],
    indexes: [WRITTEN_INDEX],
    engine: "SummingMergeTree",
    partitionBy: "toYYYYMM(bucket)",
    orderBy: "(tenant, fingerprint, bucket)",
    ttl: (r) => `bucket + INTERVAL ${r.logs_days} DAY`,
    settings: ["ttl_only_drop_parts = 1"],
    shardBy: "cityHash64(tenant, fingerprint)",
  },
  {
    // Metric family metadata (type, help, unit) from receivers that know it (OTLP): one row per distinct value,
    // merged to when it was last seen; a family whose data has all expired goes with it.
    name: "metric_metadata",
    columns: [
      "tenant LowCardinality(String)",
      "metric_family String",
      "type LowCardinality(String)",
      "help String",
      "unit LowCardinality(String)",
      "last_seen SimpleAggregateFunction(max, DateTime64(3))",
    ],
    engine: "AggregatingMergeTree",
    orderBy: "(tenant, metric_family, type, help, unit)",
    ttl: (r) =>
      `toDateTime(last_seen) + INTERVAL ${Math.max(r.samples_days, r.rollups_1m_days, r.rollups_1h_days)} DAY`,
    shardBy: "cityHash64(tenant, metric_family)",
  },
  {
    name: "schema_migrations",
    columns: ["version UInt32", "name String", "applied_at DateTime64(3) DEFAULT now64(3)"],
    engine: "ReplacingMergeTree",
    orderBy: "version",
    shardBy: "version",
  },
];

export const VIEWS: ViewDef[] = [
  ...(["1m", "1h"] as const).map((resolution): ViewDef => ({
    name: `rollups_${resolution}_mv`,
    to: `rollups_${resolution}`,
    select: (_db, table) =>
      `SELECT tenant, fingerprint, bucket, min(min) AS min, max(max) AS max, sum(sum) AS sum, sum(count) AS count,
       argMaxState(last, last_time) AS last, sum(increase) AS increase
FROM ${table("rollup_partials")} WHERE resolution = '${resolution}' GROUP BY tenant, fingerprint, bucket`,
  })),
  {
    name: "log_volume_1m_mv",
    to: "log_volume_1m",
    select: (_db, table) =>
      `SELECT tenant, fingerprint, toStartOfMinute(timestamp) AS bucket, count() AS entries, sum(length(line)) AS bytes
FROM ${table("logs")} GROUP BY tenant, fingerprint, bucket`,
  },
];

function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a plain identifier: ${name}`);
  return name;
}

/**
 * ALTER statements for one table: `data` clauses (indexes and the like) apply to the table holding the rows,
 * `columns` clauses to it and, in the cluster layout, to the Distributed table in front of it as well.
 */
export function alterStatements(
  target: SchemaTarget,
  table: string,
  changes: { data?: string[]; columns?: string[] },
): string[] {
  const db = quoteIdent(target.database);
  const name = quoteIdent(table);
  if (target.cluster === undefined)
    return [...(changes.data ?? []), ...(changes.columns ?? [])].map((c) => `ALTER TABLE ${db}.${name} ${c}`);
  const cluster = ` ON CLUSTER ${quoteIdent(target.cluster)}`;
  return [
    ...[...(changes.data ?? []), ...(changes.columns ?? [])].map(
      (c) => `ALTER TABLE ${db}.${name}_local${cluster} ${c}`,
    ),
    ...(changes.columns ?? []).map((c) => `ALTER TABLE ${db}.${name}${cluster} ${c}`),
  ];
}

/** The DDL statements that create every table and view, in order, each idempotent (IF NOT EXISTS). */
export function schemaStatements(target: SchemaTarget, tables = TABLES, views = VIEWS): string[] {
  const db = quoteIdent(target.database);
  const cluster = target.cluster === undefined ? "" : ` ON CLUSTER ${quoteIdent(target.cluster)}`;
  const local = (name: string) => (target.cluster === undefined ? name : `${name}_local`);
  const statements = [`CREATE DATABASE IF NOT EXISTS ${db}${cluster}`];
  for (const table of tables) {
    const args = table.engineArgs ?? [];
    const engine =
      target.cluster === undefined
        ? `${table.engine}${args.length > 0 ? `(${args.join(", ")})` : ""}`
        : `Replicated${table.engine}(${[`'/clickhouse/tables/{shard}/${db}/${table.name}'`, "'{replica}'", ...args].join(", ")})`;
    const clauses = [
      `ENGINE = ${engine}`,
      table.partitionBy ? `PARTITION BY ${table.partitionBy}` : "",
      `ORDER BY ${table.orderBy}`,
      table.ttl ? `TTL ${table.ttl(target.retention)}` : "",
      table.settings ? `SETTINGS ${table.settings.join(", ")}` : "",
    ].filter(Boolean);
    const body = [...table.columns, ...(table.indexes ?? [])].map((c) => `  ${c}`).join(",\n");
    statements.push(
      `CREATE TABLE IF NOT EXISTS ${db}.${local(table.name)}${cluster}\n(\n${body}\n)\n${clauses.join("\n")}`,
    );
    if (target.cluster !== undefined) {
      statements.push(
        `CREATE TABLE IF NOT EXISTS ${db}.${table.name}${cluster} AS ${db}.${local(table.name)}\n` +
          `ENGINE = Distributed(${quoteIdent(target.cluster)}, ${db}, ${local(table.name)}, ${table.shardBy})`,
      );
    }
  }
  for (const view of views) {
    // Views read and write the local tables: each shard rolls up the rows it stores.
    statements.push(
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${view.name}${cluster} TO ${db}.${local(view.to)}\nAS ${view.select(db, (name) => `${db}.${local(name)}`)}`,
    );
  }
  return statements;
}
