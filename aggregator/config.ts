import { z } from "zod";
import { boolean, bytes, duration, number } from "../common/config.js";
import type { SharedSchemas } from "../common/config-sections.js";

// The aggregator's section of the configuration (`aggregator:`), composed with the others in config.ts.

/** The `aggregator` section. */
export function aggregatorSection(s: SharedSchemas) {
  const { listenAddress, serverTlsSchema } = s;
  return z
    .strictObject({
      listen: listenAddress.default("127.0.0.1:3101").describe("HTTP listener: /ready, /metrics"),
      tls: serverTlsSchema.prefault({}),
      group_id: z
        .string()
        .min(1)
        .default("bifrost-aggregator")
        .describe("Kafka consumer group: the aggregators of one region share its partitions"),
      workers: number(z.number().int().min(1).max(64)).default(2).describe("decode and rollup worker threads"),
      max_queue: number(z.number().int().min(1))
        .default(64)
        .describe("batches waiting for a worker before partitions pause"),
      max_batch_bytes: bytes(z.number().int().positive())
        .default(16 << 20)
        .describe("largest accepted batch, uncompressed"),
      consume_kafka: boolean()
        .default(true)
        .describe("be a member of the Kafka consumer group; off for an aggregator fed only over HTTP"),
      http_ingest: z
        .strictObject({
          enabled: boolean()
            .default(false)
            .describe("accept batches from collectors on POST /bifrost/v1/batches of aggregator.listen"),
          max_body_bytes: bytes(z.number().int().positive())
            .default(32 << 20)
            .describe("largest request (413 above it)"),
        })
        .prefault({})
        .describe(
          "collectors that cannot reach Kafka ship to the aggregator over HTTP (collector.shipper.transport: http)",
        ),
      dead_letter_dir: z
        .string()
        .min(1)
        .default(".bifrost/dead-letters")
        .describe(
          "dead letters of an aggregator without Kafka (`bifrost all`, HTTP ingest only), as `batches.jsonl`; with Kafka they go to kafka.dead_letter_topic",
        ),
      partitions_concurrently: number(z.number().int().min(1).max(64))
        .default(4)
        .describe("partitions processed at once"),
      session_timeout_ms: duration(z.number().int().min(6000))
        .default(30_000)
        .describe("how long a silent member keeps its partitions"),
      flush_rows: number(z.number().int().min(1))
        .default(50_000)
        .describe("rows gathered across partitions per store write"),
      flush_ms: duration(z.number().int().min(1)).default(500).describe("longest wait before a store write"),
      limits: z
        .strictObject({
          max_labels: number(z.number().int().min(1)).default(30).describe("labels per stream or series"),
          max_label_name_bytes: bytes(z.number().int().min(1)).default(1024).describe("bytes per label name"),
          max_label_value_bytes: bytes(z.number().int().min(1)).default(2048).describe("bytes per label value"),
          max_line_bytes: bytes(z.number().int().min(1))
            .default(256 << 10)
            .describe("bytes per log line"),
        })
        .prefault({}),
    })
    .prefault({})
    .describe(
      "`bifrost aggregator`, in each region: Kafka consumer group, decoding and rollups in worker threads, batched store writes. A batch that does not decode, rows over a limit and rows the store refuses for good go to the dead letters with their reason; the rest is stored.",
    );
}

export type AggregatorConfig = z.output<ReturnType<typeof aggregatorSection>>;
