-- Bifrost's ClickHouse schema for the cluster bifrost, rendered by deploy/clickhouse/print-ddl from storage/schema.ts.

CREATE DATABASE IF NOT EXISTS bifrost ON CLUSTER bifrost;

CREATE TABLE IF NOT EXISTS bifrost.logs_local ON CLUSTER bifrost
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
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/bifrost/logs', '{replica}')
PARTITION BY toDate(timestamp)
ORDER BY (tenant, fingerprint, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS bifrost.logs ON CLUSTER bifrost AS bifrost.logs_local
ENGINE = Distributed(bifrost, bifrost, logs_local, cityHash64(tenant, fingerprint));

CREATE TABLE IF NOT EXISTS bifrost.streams_local ON CLUSTER bifrost
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/bifrost/streams', '{replica}')
ORDER BY (tenant, signal, fingerprint);

CREATE TABLE IF NOT EXISTS bifrost.streams ON CLUSTER bifrost AS bifrost.streams_local
ENGINE = Distributed(bifrost, bifrost, streams_local, cityHash64(tenant, fingerprint));

CREATE TABLE IF NOT EXISTS bifrost.samples_local ON CLUSTER bifrost
(
  tenant LowCardinality(String),
  fingerprint UInt64,
  timestamp DateTime64(3) CODEC(DoubleDelta, ZSTD(1)),
  value Float64 CODEC(Gorilla, ZSTD(1)),
  batch_id String CODEC(ZSTD(1)),
  INDEX batch_ids batch_id TYPE bloom_filter(0.01) GRANULARITY 2
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/bifrost/samples', '{replica}')
PARTITION BY toDate(timestamp)
ORDER BY (tenant, fingerprint, timestamp)
TTL toDateTime(timestamp) + INTERVAL 15 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS bifrost.samples ON CLUSTER bifrost AS bifrost.samples_local
ENGINE = Distributed(bifrost, bifrost, samples_local, cityHash64(tenant, fingerprint));

CREATE TABLE IF NOT EXISTS bifrost.rollup_partials_local ON CLUSTER bifrost
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
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/bifrost/rollup_partials', '{replica}')
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, resolution, fingerprint, bucket)
TTL bucket + INTERVAL 730 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS bifrost.rollup_partials ON CLUSTER bifrost AS bifrost.rollup_partials_local
ENGINE = Distributed(bifrost, bifrost, rollup_partials_local, cityHash64(tenant, fingerprint));

CREATE TABLE IF NOT EXISTS bifrost.rollups_1m_local ON CLUSTER bifrost
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/bifrost/rollups_1m', '{replica}')
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, fingerprint, bucket)
TTL bucket + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS bifrost.rollups_1m ON CLUSTER bifrost AS bifrost.rollups_1m_local
ENGINE = Distributed(bifrost, bifrost, rollups_1m_local, cityHash64(tenant, fingerprint));

CREATE TABLE IF NOT EXISTS bifrost.rollups_1h_local ON CLUSTER bifrost
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/bifrost/rollups_1h', '{replica}')
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, fingerprint, bucket)
TTL bucket + INTERVAL 730 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS bifrost.rollups_1h ON CLUSTER bifrost AS bifrost.rollups_1h_local
ENGINE = Distributed(bifrost, bifrost, rollups_1h_local, cityHash64(tenant, fingerprint));

CREATE TABLE IF NOT EXISTS bifrost.log_volume_1m_local ON CLUSTER bifrost
(
  tenant LowCardinality(String),
  fingerprint UInt64,
  bucket DateTime CODEC(DoubleDelta, ZSTD(1)),
  entries UInt64,
  bytes UInt64,
  written SimpleAggregateFunction(max, DateTime64(3)) DEFAULT now64(3),
  INDEX written_minmax written TYPE minmax GRANULARITY 1
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/bifrost/log_volume_1m', '{replica}')
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, fingerprint, bucket)
TTL bucket + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS bifrost.log_volume_1m ON CLUSTER bifrost AS bifrost.log_volume_1m_local
ENGINE = Distributed(bifrost, bifrost, log_volume_1m_local, cityHash64(tenant, fingerprint));

CREATE TABLE IF NOT EXISTS bifrost.metric_metadata_local ON CLUSTER bifrost
(
  tenant LowCardinality(String),
  metric_family String,
  type LowCardinality(String),
  help String,
  unit LowCardinality(String),
  last_seen SimpleAggregateFunction(max, DateTime64(3))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/bifrost/metric_metadata', '{replica}')
ORDER BY (tenant, metric_family, type, help, unit)
TTL toDateTime(last_seen) + INTERVAL 730 DAY;

CREATE TABLE IF NOT EXISTS bifrost.metric_metadata ON CLUSTER bifrost AS bifrost.metric_metadata_local
ENGINE = Distributed(bifrost, bifrost, metric_metadata_local, cityHash64(tenant, metric_family));

CREATE TABLE IF NOT EXISTS bifrost.schema_migrations_local ON CLUSTER bifrost
(
  version UInt32,
  name String,
  applied_at DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/bifrost/schema_migrations', '{replica}')
ORDER BY version;

CREATE TABLE IF NOT EXISTS bifrost.schema_migrations ON CLUSTER bifrost AS bifrost.schema_migrations_local
ENGINE = Distributed(bifrost, bifrost, schema_migrations_local, version);

CREATE MATERIALIZED VIEW IF NOT EXISTS bifrost.rollups_1m_mv ON CLUSTER bifrost TO bifrost.rollups_1m_local
AS SELECT tenant, fingerprint, bucket, min(min) AS min, max(max) AS max, sum(sum) AS sum, sum(count) AS count,
       argMaxState(last, last_time) AS last, sum(increase) AS increase
FROM bifrost.rollup_partials_local WHERE resolution = '1m' GROUP BY tenant, fingerprint, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS bifrost.rollups_1h_mv ON CLUSTER bifrost TO bifrost.rollups_1h_local
AS SELECT tenant, fingerprint, bucket, min(min) AS min, max(max) AS max, sum(sum) AS sum, sum(count) AS count,
       argMaxState(last, last_time) AS last, sum(increase) AS increase
FROM bifrost.rollup_partials_local WHERE resolution = '1h' GROUP BY tenant, fingerprint, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS bifrost.log_volume_1m_mv ON CLUSTER bifrost TO bifrost.log_volume_1m_local
AS SELECT tenant, fingerprint, toStartOfMinute(timestamp) AS bucket, count() AS entries, sum(length(line)) AS bytes
FROM bifrost.logs_local GROUP BY tenant, fingerprint, bucket;

CREATE TABLE IF NOT EXISTS bifrost.fleet_records_local ON CLUSTER bifrost
(
  kind LowCardinality(String),
  id String,
  updated_ms Int64,
  body String CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/bifrost/fleet_records', '{replica}', updated_ms)
ORDER BY (kind, id);

CREATE TABLE IF NOT EXISTS bifrost.fleet_records ON CLUSTER bifrost AS bifrost.fleet_records_local
ENGINE = Distributed(bifrost, bifrost, fleet_records_local, cityHash64(kind, id));
