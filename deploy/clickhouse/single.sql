-- Bifrost's ClickHouse schema for a single server, rendered by deploy/clickhouse/print-ddl from storage/schema.ts.

CREATE DATABASE IF NOT EXISTS bifrost;

CREATE TABLE IF NOT EXISTS bifrost.logs
(
  tenant LowCardinality(String),
  fingerprint UInt64,
  timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
  line String CODEC(ZSTD(1)),
  metadata Map(LowCardinality(String), String) CODEC(ZSTD(1)),
  batch_id String CODEC(ZSTD(1)),
  arrival Int64 CODEC(Delta(8), ZSTD(1)),
  entry UInt32 CODEC(ZSTD(1)),
  INDEX batch_ids batch_id TYPE bloom_filter(0.01) GRANULARITY 2
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (tenant, fingerprint, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS bifrost.streams
(
  tenant LowCardinality(String),
  signal Enum8('logs' = 1, 'metrics' = 2),
  fingerprint UInt64,
  labels SimpleAggregateFunction(any, Map(String, String)),
  kind SimpleAggregateFunction(any, UInt8),
  first_seen SimpleAggregateFunction(min, DateTime64(3)),
  last_seen SimpleAggregateFunction(max, DateTime64(3)),
  written SimpleAggregateFunction(max, DateTime64(3)) DEFAULT now64(3)
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant, signal, fingerprint);

CREATE TABLE IF NOT EXISTS bifrost.samples
(
  tenant LowCardinality(String),
  fingerprint UInt64,
  timestamp DateTime64(3) CODEC(DoubleDelta, ZSTD(1)),
  value Float64 CODEC(Gorilla, ZSTD(1)),
  batch_id String CODEC(ZSTD(1)),
  INDEX batch_ids batch_id TYPE bloom_filter(0.01) GRANULARITY 2
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (tenant, fingerprint, timestamp)
TTL toDateTime(timestamp) + INTERVAL 15 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS bifrost.rollup_partials
(
  tenant LowCardinality(String),
  resolution Enum8('1m' = 1, '1h' = 2),
  fingerprint UInt64,
  bucket DateTime,
  min Float64,
  max Float64,
  sum Float64,
  count UInt64,
  last Float64,
  last_time DateTime64(3),
  increase Float64,
  batch_id String,
  INDEX batch_ids batch_id TYPE bloom_filter(0.01) GRANULARITY 2
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, resolution, fingerprint, bucket)
TTL bucket + INTERVAL 730 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS bifrost.rollups_1m
(
  tenant LowCardinality(String),
  fingerprint UInt64,
  bucket DateTime CODEC(DoubleDelta, ZSTD(1)),
  min SimpleAggregateFunction(min, Float64),
  max SimpleAggregateFunction(max, Float64),
  sum SimpleAggregateFunction(sum, Float64),
  count SimpleAggregateFunction(sum, UInt64),
  last AggregateFunction(argMax, Float64, DateTime64(3)),
  increase SimpleAggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, fingerprint, bucket)
TTL bucket + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS bifrost.rollups_1h
(
  tenant LowCardinality(String),
  fingerprint UInt64,
  bucket DateTime CODEC(DoubleDelta, ZSTD(1)),
  min SimpleAggregateFunction(min, Float64),
  max SimpleAggregateFunction(max, Float64),
  sum SimpleAggregateFunction(sum, Float64),
  count SimpleAggregateFunction(sum, UInt64),
  last AggregateFunction(argMax, Float64, DateTime64(3)),
  increase SimpleAggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, fingerprint, bucket)
TTL bucket + INTERVAL 730 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS bifrost.log_volume_1m
(
  tenant LowCardinality(String),
  fingerprint UInt64,
  bucket DateTime CODEC(DoubleDelta, ZSTD(1)),
  entries UInt64,
  bytes UInt64,
  written SimpleAggregateFunction(max, DateTime64(3)) DEFAULT now64(3),
  INDEX written_minmax written TYPE minmax GRANULARITY 1
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, fingerprint, bucket)
TTL bucket + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS bifrost.metric_metadata
(
  tenant LowCardinality(String),
  metric_family String,
  type LowCardinality(String),
  help String,
  unit LowCardinality(String),
  last_seen SimpleAggregateFunction(max, DateTime64(3))
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant, metric_family, type, help, unit)
TTL toDateTime(last_seen) + INTERVAL 730 DAY;

CREATE TABLE IF NOT EXISTS bifrost.schema_migrations
(
  version UInt32,
  name String,
  applied_at DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version;

CREATE MATERIALIZED VIEW IF NOT EXISTS bifrost.rollups_1m_mv TO bifrost.rollups_1m
AS SELECT tenant, fingerprint, bucket, min(min) AS min, max(max) AS max, sum(sum) AS sum, sum(count) AS count,
       argMaxState(last, last_time) AS last, sum(increase) AS increase
FROM bifrost.rollup_partials WHERE resolution = '1m' GROUP BY tenant, fingerprint, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS bifrost.rollups_1h_mv TO bifrost.rollups_1h
AS SELECT tenant, fingerprint, bucket, min(min) AS min, max(max) AS max, sum(sum) AS sum, sum(count) AS count,
       argMaxState(last, last_time) AS last, sum(increase) AS increase
FROM bifrost.rollup_partials WHERE resolution = '1h' GROUP BY tenant, fingerprint, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS bifrost.log_volume_1m_mv TO bifrost.log_volume_1m
AS SELECT tenant, fingerprint, toStartOfMinute(timestamp) AS bucket, count() AS entries, sum(length(line)) AS bytes
FROM bifrost.logs GROUP BY tenant, fingerprint, bucket;

CREATE TABLE IF NOT EXISTS bifrost.fleet_records
(
  kind LowCardinality(String),
  id String,
  updated_ms Int64,
  body String CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree(updated_ms)
ORDER BY (kind, id);
