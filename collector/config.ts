import { z } from "zod";
import { boolean, bytes, duration, list, number } from "../common/config.js";
import {
  ACTION_NAME,
  pushLimitsSchema,
  schemaParts,
  type SharedSchemas,
  uniqueIds,
} from "../common/config-sections.js";
import { NODE_LABELS } from "../common/ingest-contract.js";
import { collectorFleetSchema } from "./agent/config.js";
import { pipelineStagesSchema } from "./processing/pipeline/schema.js";
import { logInputSchemas } from "./receivers/log-input-schemas.js";
import { compileGoRegexp } from "../common/regex.js";
import { remoteWriteSchema } from "./receivers/remote-write-config.js";
import { scrapeSchema } from "./receivers/scrape-config.js";

// The collector's section of the configuration (`collector:`), composed with the others in config.ts.

/** The `collector` section. */
export function collectorSection(s: SharedSchemas) {
  const { listenAddress, serverTlsSchema, regex, labelName, clientTlsSchema, keySchema } = s;
  /** The collector's own inputs: files it tails and the host metrics it reads from /proc. */
  const collectorInputs = {
    files: z
      .array(
        z.strictObject({
          paths: list(z.string().min(1))
            .refine((paths) => paths.length > 0, "expected at least one glob")
            .describe("globs of files to tail (picomatch: *, **, {a,b})"),
          exclude: list(z.string().min(1)).default([]).describe("globs of files among them to leave out"),
          labels: z
            .record(labelName, z.string())
            .default({})
            .describe("stream labels of every line, besides `filename` (the path, as Promtail sets it)"),
          multiline: z
            .strictObject({
              start_pattern: regex.describe(
                "regular expression (RE2, Go's syntax): a line matching it starts a new entry; other lines join the entry before",
              ),
              max_lines: number(z.number().int().min(1)).default(128).describe("an entry ends after this many lines"),
              timeout_ms: duration(z.number().int().positive())
                .default(3000)
                .describe("an entry ends when no line joined it for this long"),
            })
            .optional()
            .describe("join the lines of one event (a stack trace) into one entry"),
          tenant: z.string().min(1).optional().describe("tenant of the lines; none means collector.default_tenant"),
          encoding: z.enum(["utf8", "latin1"]).default("utf8").describe("character encoding of the files"),
          pipeline_stages: pipelineStagesSchema()
            .optional()
            .describe("processing stages of these files' lines; none means collector.pipeline_stages"),
        }),
      )
      .default([])
      .describe("files to tail as Promtail does: each line an entry of the stream {filename, labels}"),
    pipeline_stages: pipelineStagesSchema()
      .default([])
      .describe(
        "processing stages (Promtail's pipeline_stages) of every log input without its own: files, syslog, journal, kubernetes, push",
      ),
    push_pipeline_stages: pipelineStagesSchema()
      .optional()
      .describe("processing stages of pushed logs (Loki push, OTLP logs); none means collector.pipeline_stages"),
    files_positions: z
      .string()
      .default("")
      .describe("file of the read positions kept across restarts; empty: file-positions.json in collector.wal.dir"),
    files_poll_ms: duration(z.number().int().positive())
      .default(250)
      .describe("how often tailed files are checked for new lines, rotation and truncation"),
    files_sync_ms: duration(z.number().int().positive())
      .default(10_000)
      .describe("how often the globs are expanded again for new files"),
    files_rotate_wait_ms: duration(z.number().int().min(0))
      .default(5000)
      .describe("how long a rotated file that stopped growing is still read before it is closed"),
    host_metrics: z
      .strictObject({
        enabled: boolean().default(false).describe("read node_exporter-style host metrics from /proc"),
        interval_ms: duration(z.number().int().positive()).default(15_000).describe("scrape interval"),
        tenant: z
          .string()
          .min(1)
          .optional()
          .describe("tenant of the host metrics; none means collector.default_tenant"),
        mount_points: list(z.string().min(1))
          .default(["/"])
          .describe("mount points whose file system usage is reported"),
        processes: z
          .array(
            z.strictObject({
              name: z.string().min(1).describe("the `groupname` label of the group's namedprocess_namegroup_* series"),
              match: z
                .strictObject({
                  comm: z.string().min(1).optional().describe("process name (/proc/<pid>/comm) equal to it"),
                  cmdline: regex
                    .optional()
                    .describe("regular expression (RE2, Go's syntax) on the arguments joined by spaces"),
                  pidfile: z.string().min(1).optional().describe("file holding the process id"),
                })
                .refine(
                  (m) => m.comm !== undefined || m.cmdline !== undefined || m.pidfile !== undefined,
                  "expected comm, cmdline or pidfile",
                )
                .describe("a process belongs to the first group whose every given condition holds"),
            }),
          )
          .default([])
          .describe("process groups reported as process-exporter does"),
      })
      .prefault({})
      .describe("host metrics read from /proc, as node_exporter names them"),
    ...logInputSchemas({
      list,
      number,
      duration,
      bytes,
      boolean,
      labelName,
      listenAddress,
      serverTls: serverTlsSchema,
    }),
  };

  const allowedActionSchema = z
    .strictObject({
      name: z
        .string()
        .regex(ACTION_NAME, "expected [a-z][a-z0-9_]*, at most 64 characters")
        .describe("action name, as senders call it"),
      command: z
        .array(z.string().min(1))
        .min(1)
        .describe("argv, run without a shell; an element `{{param}}` is replaced by that parameter"),
      params: z
        .record(
          z.string().regex(ACTION_NAME, "expected [a-z][a-z0-9_]*"),
          z.strictObject({
            pattern: z
              .string()
              .refine((p) => {
                try {
                  compileGoRegexp(p);
                  return true;
                } catch {
                  return false;
                }
              }, "expected a regular expression")
              .describe("regular expression (RE2, Go's syntax) the whole value must match"),
            required: boolean().default(true).describe("refuse the action without this parameter"),
          }),
        )
        .default({})
        .describe("declared parameters; any other is refused"),
      timeout_ms: duration(z.number().int().min(1))
        .default(30_000)
        .describe("the command's process group is killed after this"),
      cooldown_ms: duration(z.number().int().min(0))
        .default(60_000)
        .describe("least time between two runs of the action (429 cooldown)"),
    })
    .refine(
      (action) =>
        action.command.every((arg) =>
          [...arg.matchAll(/\{\{([^}]*)\}\}/g)].every((m) => arg === m[0] && m[1]! in action.params),
        ),
      "a placeholder must be a whole argv element `{{param}}` naming a declared parameter",
    );

  return z
    .strictObject({
      listen: listenAddress
        .default("127.0.0.1:4318")
        .describe("HTTP listener: Loki push, OTLP/HTTP, actions, /ready, /metrics"),
      tls: serverTlsSchema.prefault({}),
      default_tenant: z.string().min(1).default("fake").describe("tenant of pushes without X-Scope-OrgID, as in Loki"),
      node_labels: list(z.enum(NODE_LABELS))
        .default([...NODE_LABELS])
        .describe(
          "labels of this node's identity added to every stream and series that lacks them (site and region only when set); empty: none. All by default, as before this key: alerts name the node to act on by `node` (query.actions.node_label), and a fleet is queried by node, site and region. Promtail and Alloy add no host label unless told to; a single node's setup may leave them out",
        ),
      ...collectorInputs,
      scrape: scrapeSchema(),
      remote_write: remoteWriteSchema(),
      wal: z
        .strictObject({
          dir: z.string().min(1).default(".bifrost/wal").describe("directory of the disk buffer"),
          max_bytes: bytes(z.number().int().positive())
            .default(1 << 30)
            .describe("disk budget of the buffer"),
          segment_bytes: bytes(z.number().int().positive())
            .default(16 << 20)
            .describe("size of one segment file"),
          fsync: z
            .enum(["always", "interval", "never"])
            .default("interval")
            .describe(
              "always: every batch fsynced before it is acknowledged (group commit: the pushes that arrive during an fsync share the next one); interval: every fsync_interval_ms; never: left to the OS",
            ),
          fsync_interval_ms: duration(z.number().int().positive())
            .default(1000)
            .describe("fsync period under `interval`"),
          when_full: z
            .enum(["block", "drop_oldest"])
            .default("block")
            .describe(
              "block: pushes get 503 with Retry-After; drop_oldest: whole oldest segments are dropped and counted",
            ),
        })
        .prefault({}),
      shipper: z
        .strictObject({
          transport: z
            .enum(["kafka", "http"])
            .default("kafka")
            .describe("kafka, or http to an aggregator's POST /bifrost/v1/batches for sites that cannot reach Kafka"),
          http: z
            .strictObject({
              url: z
                .string()
                .default("")
                .describe("the aggregator's listener, such as https://aggregator.eu-west:3101"),
              auth_token: z
                .string()
                .default("")
                .describe(
                  "bearer token of the tenant whose batches this collector sends, for an aggregator with auth enabled",
                ),
              tls: clientTlsSchema.prefault({}),
              timeout_ms: duration(z.number().int().min(1))
                .default(30_000)
                .describe("per request, the aggregator's store write included"),
              max_request_bytes: bytes(z.number().int().min(1))
                .default(8 << 20)
                .describe("frames per request up to this size (at least one)"),
            })
            .prefault({}),
        })
        .prefault({})
        .refine(
          (s) => s.transport !== "http" || /^https?:\/\/[^\s]+$/.test(s.http.url),
          "transport http needs http.url, an http(s) URL",
        ),
      batch: z
        .strictObject({
          max_entries: number(z.number().int().positive()).default(10_000).describe("entries and samples per batch"),
          max_bytes: bytes(z.number().int().positive())
            .default(1 << 20)
            .describe("line bytes per batch"),
          max_batch_bytes: bytes(
            z
              .number()
              .int()
              .min(64 << 10),
          )
            .default(3 << 20)
            .describe(
              "largest batch as encoded (protobuf, before LZ4): a request above it is split into several batches. At most aggregator.max_batch_bytes, and its frame must fit the topic's max.message.bytes",
            ),
          max_age_ms: duration(z.number().int().positive())
            .default(1000)
            .describe(
              "longest data from sources that answer nobody (file tails, syslog, journald, scrapes) waits to be written; pushes (Loki, OTLP, remote write) are written and acknowledged at once, by group commit",
            ),
          max_tracked_series: number(z.number().int().positive())
            .default(100_000)
            .describe(
              "series whose last sample is remembered, to send as the next batch's Series.previous (counter increases across batches); at least the series the collector writes per scrape interval",
            ),
        })
        .prefault({}),
      otlp: z
        .strictObject({
          http_enabled: boolean().default(true).describe("OTLP/HTTP on /v1/logs and /v1/metrics of collector.listen"),
          grpc_enabled: boolean().default(true).describe("serve OTLP/gRPC (LogsService, MetricsService)"),
          grpc_listen: listenAddress.default("127.0.0.1:4317").describe("OTLP/gRPC listener"),
          max_grpc_message_bytes: bytes(z.number().int().positive())
            .default(4 << 20)
            .describe("largest gRPC request (RESOURCE_EXHAUSTED above it)"),
          translation_strategy: z
            .enum(["UnderscoreEscapingWithSuffixes", "UnderscoreEscapingWithoutSuffixes"])
            .default("UnderscoreEscapingWithSuffixes")
            .describe(
              "metric names as Prometheus' OTLP receiver makes them: with unit and `_total` suffixes (its default), or only escaped",
            ),
          promote_resource_attributes: list(z.string().regex(/[A-Za-z0-9]/, "expected an attribute with a label name"))
            .default([])
            .describe("resource attributes that become labels of every series (all are on target_info)"),
          keep_identifying_resource_attributes: boolean()
            .default(false)
            .describe("put service.name, service.namespace and service.instance.id on target_info too"),
          promote_scope_metadata: boolean()
            .default(true)
            .describe("otel_scope_name, otel_scope_version, otel_scope_schema_url and otel_scope_<attribute> labels"),
          delta_to_cumulative: z
            .strictObject({
              max_streams: number(z.number().int().min(1))
                .default(20_000)
                .describe("delta series tracked; points of new series are refused (partial_success) above it"),
              max_stale_ms: duration(z.number().int().min(1000))
                .default(300_000)
                .describe("a delta series idle this long is forgotten; its next point starts over"),
            })
            .prefault({})
            .describe("delta sums and histograms are summed per series into cumulative ones"),
        })
        .prefault({}),
      limits: pushLimitsSchema(),
      actions: z
        .strictObject({
          enabled: boolean().default(false).describe("serve POST /bifrost/v1/actions"),
          keys: z
            .array(keySchema)
            .default([])
            .refine(uniqueIds, "key ids must be unique")
            .describe("keys whose signatures are accepted"),
          max_skew_ms: duration(z.number().int().min(1))
            .default(60_000)
            .describe("how far `issued_at` may lie from this clock, either way"),
          nonce_cache_size: number(z.number().int().min(1))
            .default(100_000)
            .describe("unexpired nonces remembered; when full, actions get 503"),
          rate_per_s: number(z.number().positive())
            .default(1)
            .describe("actions per second over all actions, counted after authentication"),
          burst: number(z.number().int().min(1)).default(5).describe("bucket size of that rate"),
          max_output_bytes: bytes(z.number().int().min(0))
            .default(4096)
            .describe("bytes of stdout and of stderr kept in the outcome and audit"),
          audit_tenant: z.string().default("").describe("empty: collector.default_tenant"),
          allowed: z
            .array(allowedActionSchema)
            .default([])
            .refine((actions) => uniqueIds(actions.map((a) => ({ id: a.name }))), "action names must be unique")
            .describe("the allow-list: only these commands run"),
          heartbeat: z
            .strictObject({
              url: z.string().default("").describe("the query service's POST /bifrost/v1/heartbeat; empty sends none"),
              interval_ms: duration(z.number().int().min(100)).default(15_000).describe("heartbeat period"),
              advertise_url: z
                .string()
                .default("")
                .describe("this collector's URL as the query service reaches it; empty: the listener's"),
              auth_token: z.string().default("").describe("bearer token for a query service with auth enabled"),
              tls: clientTlsSchema.prefault({}),
              key: keySchema.optional().describe("the key that signs heartbeats: Ed25519 private key or HMAC secret"),
            })
            .prefault({})
            .refine((h) => h.url === "" || h.key !== undefined, "a heartbeat url needs a signing key")
            .describe("signed heartbeats telling the query service where to send this node's actions"),
        })
        .prefault({})
        .refine((a) => !a.enabled || a.keys.length > 0, "actions.enabled needs at least one key")
        .describe("signed self-healing actions from the query service"),
      fleet: collectorFleetSchema(schemaParts(s)),
    })
    .prefault({})
    .describe(
      "`bifrost collector`, on each edge node: receivers, disk buffer (WAL), shipping to Kafka, self-healing actions.",
    );
}

export type CollectorConfig = z.output<ReturnType<typeof collectorSection>>;
