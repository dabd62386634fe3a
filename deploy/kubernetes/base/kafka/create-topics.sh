#!/usr/bin/env bash
# Creates Bifrost's topics if they are missing and sets their configuration every time, so that running it
# again after a change to topics.env applies the change. Partitions only grow (Kafka cannot shrink them).
#
# Why these settings: the collector writes with acks=all, so min.insync.replicas decides how many brokers
# hold a batch before the edge node forgets it. Messages are already LZ4 frames (compression.type=producer
# keeps them as they are). max.message.bytes leaves room above a collector batch (collector.batch.max_bytes,
# 1 MiB before compression) and a dead letter, which carries the original bytes plus its error headers.
# Retention bounds how long an aggregator outage can last before data is lost; dead letters are kept longer
# for inspection.
set -euo pipefail
: "${BOOTSTRAP_SERVERS:?}" "${TOPIC:?}" "${DEAD_LETTER_TOPIC:?}" "${PARTITIONS:?}" "${REPLICATION_FACTOR:?}"
: "${MIN_INSYNC_REPLICAS:?}" "${RETENTION_MS:?}" "${DEAD_LETTER_RETENTION_MS:?}" "${MAX_MESSAGE_BYTES:?}"
bin="${KAFKA_BIN:-/opt/kafka/bin}"

ensure() {
  local topic="$1" partitions="$2" retention="$3"
  local settings="min.insync.replicas=${MIN_INSYNC_REPLICAS},retention.ms=${retention},max.message.bytes=${MAX_MESSAGE_BYTES},compression.type=producer,cleanup.policy=delete"
  "$bin/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" --create --if-not-exists --topic "$topic" \
    --partitions "$partitions" --replication-factor "$REPLICATION_FACTOR"
  local current
  current="$("$bin/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" --describe --topic "$topic" |
    sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -n 1)"
  if [ -n "$current" ] && [ "$current" -lt "$partitions" ]; then
    "$bin/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" --alter --topic "$topic" --partitions "$partitions"
  fi
  "$bin/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP_SERVERS" --alter --entity-type topics --entity-name "$topic" \
    --add-config "$settings"
}

ensure "$TOPIC" "$PARTITIONS" "$RETENTION_MS"
# Dead letters are rare: a few partitions are enough.
ensure "$DEAD_LETTER_TOPIC" 3 "$DEAD_LETTER_RETENTION_MS"
echo "topics ready: $TOPIC, $DEAD_LETTER_TOPIC"
