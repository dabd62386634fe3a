import { Counter, Gauge, type Registry } from "prom-client";

export type CollectorMetrics = ReturnType<typeof collectorMetrics>;

export function collectorMetrics(registry: Registry) {
  return {
    accepted: new Counter({
      name: "bifrost_collector_entries_accepted_total",
      help: "Log entries accepted (in the disk buffer), by tenant.",
      labelNames: ["tenant"],
      registers: [registry],
    }),
    samples: new Counter({
      name: "bifrost_collector_samples_accepted_total",
      help: "Metric samples accepted (in the disk buffer), by tenant.",
      labelNames: ["tenant"],
      registers: [registry],
    }),
    rejected: new Counter({
      name: "bifrost_collector_requests_rejected_total",
      help: "Pushes refused, by reason (the ingestion contract's, body_too_large, rate_limited, buffer_full, overloaded).",
      labelNames: ["reason"],
      registers: [registry],
    }),
    inflightBytes: new Gauge({
      name: "bifrost_collector_inflight_bytes",
      help: "Bytes held by pushes being decoded or waiting for the disk buffer (bounded by collector.limits.max_inflight_bytes).",
      registers: [registry],
    }),
    inflightWaiting: new Gauge({
      name: "bifrost_collector_inflight_waiting",
      help: "Pushes waiting for room under collector.limits.max_inflight_bytes; those that wait longer than max_inflight_wait_ms get 503.",
      registers: [registry],
    }),
    samplesRejected: new Counter({
      name: "bifrost_collector_samples_rejected_total",
      help: "Pushed metric samples refused (Prometheus remote write), by reason.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    batches: new Counter({
      name: "bifrost_collector_batches_written_total",
      help: "Batches written to the disk buffer.",
      registers: [registry],
    }),
    shipped: new Counter({
      name: "bifrost_collector_batches_shipped_total",
      help: "Batches Kafka acknowledged.",
      registers: [registry],
    }),
    retries: new Counter({
      name: "bifrost_collector_ship_retries_total",
      help: "Failed attempts to ship to Kafka.",
      registers: [registry],
    }),
    dropped: new Counter({
      name: "bifrost_collector_batches_dropped_total",
      help: "Batches discarded, by reason (disk_budget under drop_oldest; corrupt_segment: undelivered batches whose disk buffer records were found corrupt at start).",
      labelNames: ["reason"],
      registers: [registry],
    }),
    buffered: new Gauge({
      name: "bifrost_collector_buffer_bytes",
      help: "Bytes in the disk buffer.",
      registers: [registry],
    }),
    lag: new Gauge({
      name: "bifrost_collector_buffer_batches",
      help: "Batches in the disk buffer not yet acknowledged by Kafka.",
      registers: [registry],
    }),
  };
}
