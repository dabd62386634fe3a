import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { deadLetterCounter } from "./dead-letters.js";

export type AggregatorMetrics = ReturnType<typeof aggregatorMetrics>;

export function aggregatorMetrics(registry: Registry) {
  return {
    batches: new Counter({
      name: "bifrost_aggregator_batches_total",
      help: "Collector batches handled (Kafka messages and frames posted over HTTP), by result: stored (written now or already), dead_letter, or rejected (refused over HTTP as undecodable or invalid).",
      labelNames: ["result"],
      registers: [registry],
    }),
    duplicates: new Counter({
      name: "bifrost_aggregator_duplicate_batches_total",
      help: "Batches the store already held (replays after a crash or rebalance); nothing was written for them.",
      registers: [registry],
    }),
    rows: new Counter({
      name: "bifrost_aggregator_rows_written_total",
      help: "Rows written to the store, by signal.",
      labelNames: ["signal"],
      registers: [registry],
    }),
    deadLetters: deadLetterCounter(registry),
    lag: new Gauge({
      name: "bifrost_aggregator_consumer_lag",
      help: "The consumer group's lag per partition of the topic: messages between the group's committed offset and the high watermark, read from Kafka every few seconds (every member reports every partition: take the max across aggregators).",
      labelNames: ["topic", "partition"],
      registers: [registry],
    }),
    lastCommit: new Gauge({
      name: "bifrost_aggregator_last_commit_timestamp_seconds",
      help: "Unix time of this aggregator's last successful offset commit.",
      registers: [registry],
    }),
    stalled: new Gauge({
      name: "bifrost_aggregator_consumer_stalled",
      help: "1 while this aggregator does not consume though it should: the group's coordinator no longer lists it, a partition it owns has messages waiting and no commit for longer than the session timeout, or Kafka does not answer; /ready says which. 0 otherwise.",
      registers: [registry],
    }),
    consumerRestarts: new Counter({
      name: "bifrost_aggregator_consumer_restarts_total",
      help: "Re-joins and restarts of the Kafka consumer, by reason: group_moved_on (a rebalance or a moved coordinator answered), coordinator_lost (heartbeats or commits failed), crash (the Kafka client crashed and was restarted), start_failed (starting failed and is retried).",
      labelNames: ["reason"],
      registers: [registry],
    }),
    decodeSeconds: new Histogram({
      name: "bifrost_aggregator_decode_seconds",
      help: "Time a worker spent decoding, checking and rolling up one batch.",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    writeSeconds: new Histogram({
      name: "bifrost_aggregator_write_seconds",
      help: "Time to write one flush of the write buffer to the store, retries included.",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
      registers: [registry],
    }),
    httpRefused: new Counter({
      name: "bifrost_aggregator_http_refused_total",
      help: "Over HTTP (POST /bifrost/v1/batches): frames refused as undecodable or invalid, by the codec's or validation's reason; requests refused, by reason (too_large, content_type, tenant_mismatch, node_mismatch, store_unavailable).",
      labelNames: ["reason"],
      registers: [registry],
    }),
    storeRetries: new Counter({
      name: "bifrost_aggregator_store_retries_total",
      help: "Store writes retried after a transient failure.",
      registers: [registry],
    }),
  };
}
