import { z } from "zod";
import { boolean, bytes, duration, list, number, TENANT_ID } from "./config.js";
import { DEFAULT_LEVEL_FIELDS } from "./detected-level.js";
import type { SchemaParts } from "./schema-parts.js";
import { compileGoRegexp } from "./regex.js";
import { DEFAULT_SERVICE_NAME_SOURCES } from "./service-name.js";

// The configuration's shared sections and pieces: what more than one role reads (tenants and tokens, Bifrost's own
// logs and telemetry, the node, Kafka, ClickHouse, storage, the push limits and per-tenant overrides). Each role's
// own section is beside the role; config.ts composes them.

/** Label names as Prometheus and Loki accept them. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Key ids are unique within a list of keys. */
export const uniqueIds = (keys: { id: string }[]) => new Set(keys.map((k) => k.id)).size === keys.length;

/** Names of actions and of their parameters: they become label values and `{{name}}` placeholders. */
export const ACTION_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * The pieces several sections use, built once per schema (config.ts): the schemas are built on each call and kept
 * by no one, as the configuration is read once at start and its schema (about 2 MiB of zod objects) would otherwise
 * stay in the heap of every process, the edge collector's included.
 */
export function sharedSchemas() {
  const hostPort = z
    .string()
    .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/, "expected host:port, for example 127.0.0.1:9092");

  const listenAddress = hostPort.describe("address to listen on, host:port");

  const logLevel = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

  const tlsSchema = z.strictObject({
    enabled: boolean().default(false).describe("connect with TLS"),
    ca_file: z.string().optional().describe("CA bundle (PEM) to trust instead of the system roots"),
    cert_file: z.string().optional().describe("client certificate (PEM), for mutual TLS"),
    key_file: z.string().optional().describe("its private key (PEM)"),
    insecure_skip_verify: boolean().default(false).describe("skip the server certificate check (tests only)"),
  });

  /** TLS on one of Bifrost's own listeners; with client_ca_file, mutual TLS. */
  const serverTlsSchema = z
    .strictObject({
      enabled: boolean().default(false).describe("serve HTTPS on this listener"),
      cert_file: z.string().optional().describe("server certificate (PEM); needed with enabled"),
      key_file: z.string().optional().describe("its private key (PEM)"),
      client_ca_file: z.string().optional().describe("CA that client certificates must chain to"),
      client_auth: z
        .enum(["request", "require"])
        .default("require")
        .describe("with client_ca_file: ask for a client certificate, or refuse connections without a valid one"),
    })
    .refine(
      (tls) => !tls.enabled || (tls.cert_file !== undefined && tls.key_file !== undefined),
      "a TLS listener needs cert_file and key_file",
    );
  /** A regular expression in Go's RE2 syntax (common/regex.ts), checked when the configuration loads. */
  const regex = z.string().refine((text) => {
    try {
      compileGoRegexp(text);
      return true;
    } catch {
      return false;
    }
  }, "expected a valid regular expression");

  const labelName = z.string().regex(LABEL_NAME, "expected a Prometheus label name");

  /** The client side of TLS towards another Bifrost listener (https URLs): CA to trust, certificate for mutual TLS. */
  const clientTlsSchema = z.strictObject({
    ca_file: z.string().optional().describe("CA (PEM) to trust for https URLs"),
    cert_file: z.string().optional().describe("client certificate (PEM), for listeners with mutual TLS"),
    key_file: z.string().optional().describe("its private key (PEM)"),
  });

  /** A signing or verifying key (common/signing.ts): its material inline or in a file. */
  const keySchema = z
    .strictObject({
      id: z
        .string()
        .regex(/^[A-Za-z0-9._:-]{1,64}$/, "expected 1 to 64 of [A-Za-z0-9._:-]")
        .describe("key id, sent with each signature"),
      algorithm: z.enum(["ed25519", "hmac-sha256"]).describe("signature algorithm"),
      key: z.string().optional().describe("an HMAC secret, or an Ed25519 key in PEM"),
      file: z.string().optional().describe("a file holding the same"),
    })
    .refine((key) => (key.key === undefined) !== (key.file === undefined), "expected exactly one of key and file");

  return {
    hostPort,
    listenAddress,
    logLevel,
    tlsSchema,
    serverTlsSchema,
    regex,
    labelName,
    clientTlsSchema,
    keySchema,
  };
}

export type SharedSchemas = ReturnType<typeof sharedSchemas>;

/** The shared pieces as the sections defined beside a component (log inputs, fleet) take them. */
export function schemaParts(s: SharedSchemas): SchemaParts {
  return {
    number,
    duration,
    bytes,
    boolean,
    list,
    listenAddress: s.listenAddress,
    serverTls: s.serverTlsSchema,
    clientTls: s.clientTlsSchema,
    key: s.keySchema,
  };
}

/** Tenants and their tokens. */
export function authSection() {
  return z
    .strictObject({
      enabled: boolean().default(false).describe("require a token on every API but /ready and /metrics"),
      tenants: z
        .record(
          z.string().regex(TENANT_ID, "expected a tenant id as X-Scope-OrgID carries it"),
          z.strictObject({
            tokens: list(z.string().min(16, "expected a token of at least 16 characters"))
              .refine((t) => t.length > 0, "expected at least one token")
              .describe("the tenant's tokens, at least 16 characters each; a token acts for its tenant only"),
          }),
        )
        .default({})
        .describe(
          "tenant id -> its tokens: `Authorization: Bearer <token>`, or basic auth with the tenant as user and the token as password",
        ),
    })
    .refine(
      (auth) => !auth.enabled || Object.keys(auth.tenants).length > 0,
      "auth.enabled needs at least one tenant with a token",
    )
    .refine((auth) => {
      const tokens = Object.values(auth.tenants).flatMap((tenant) => tenant.tokens);
      return new Set(tokens).size === tokens.length;
    }, "a token may belong to one tenant only")
    .prefault({})
    .describe(
      "Tenants and their tokens. Without auth, as Loki's `auth_enabled: false`, `X-Scope-OrgID` or the default tenant is used.",
    );
}

/** Bifrost's own logs. */
export function logSection(s: SharedSchemas) {
  const { logLevel } = s;
  return z
    .strictObject({
      level: logLevel.default("info").describe("level of the JSON log lines on stdout"),
    })
    .prefault({})
    .describe("Bifrost's own logs: JSON lines on stdout (pino).");
}

/** Bifrost's own traces and metrics over OTLP. */
export function telemetrySection() {
  return z
    .strictObject({
      otlp_endpoint: z
        .string()
        .default("")
        .describe("OTLP gRPC endpoint for Bifrost's own traces and metrics; empty turns it off"),
      service_name: z.string().default("bifrost").describe("`service.name` of that telemetry"),
      export_interval_ms: duration(z.number().int().positive()).default(15000).describe("metric export interval"),
    })
    .prefault({})
    .describe("Bifrost's own traces and metrics over OTLP (`@opentelemetry/sdk-node`); /metrics is served regardless.");
}

/** Who this process is. */
export function nodeSection() {
  return z
    .strictObject({
      id: z.string().min(1).default("local").describe("this node's id: the Kafka message key and the `node` label"),
      site: z.string().default("").describe("`site` label attached to everything this node sends"),
      region: z.string().default("").describe("`region` label attached to everything this node sends"),
    })
    .prefault({})
    .describe("Who this process is; the collector labels what it sends with it.");
}

/** The Kafka cluster between collectors and aggregators. */
export function kafkaSection(s: SharedSchemas) {
  const { hostPort, tlsSchema } = s;
  return z
    .strictObject({
      brokers: list(hostPort)
        .refine((brokers) => brokers.length > 0, "expected at least one broker")
        .default(["127.0.0.1:9092"])
        .describe("bootstrap brokers"),
      client_id: z.string().default("bifrost").describe("Kafka client id"),
      topic: z.string().min(1).default("bifrost.telemetry").describe("topic of the telemetry batches (key: node id)"),
      dead_letter_topic: z
        .string()
        .min(1)
        .default("bifrost.telemetry.dlq")
        .describe("topic of batches that fail to decode or validate, with the reason in headers"),
      tls: tlsSchema.prefault({}),
      sasl: z
        .strictObject({
          mechanism: z.enum(["plain", "scram-sha-256", "scram-sha-512"]).describe("SASL mechanism"),
          username: z.string().describe("SASL user"),
          password: z.string().describe("SASL password; use ${VAR} in the file"),
        })
        .optional()
        .describe("SASL authentication to the brokers; none: no SASL"),
    })
    .prefault({})
    .describe("The Kafka cluster between collectors and aggregators: collectors produce, aggregators consume.");
}

/** The ClickHouse server or cluster. */
export function clickhouseSection(s: SharedSchemas) {
  const { tlsSchema } = s;
  return z
    .strictObject({
      url: z.url().default("http://127.0.0.1:8123").describe("ClickHouse HTTP(S) endpoint"),
      username: z.string().default("default").describe("user"),
      password: z.string().default("").describe("password; use ${VAR} in the file"),
      database: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected a plain identifier")
        .default("bifrost")
        .describe("database of Bifrost's tables, created with them by the migrations"),
      cluster: z
        .string()
        .regex(/^([A-Za-z_][A-Za-z0-9_]*)?$/, "expected a plain identifier")
        .default("")
        .describe("cluster name: replicated tables ON CLUSTER with Distributed tables in front; empty for one server"),
      tls: tlsSchema.prefault({}),
    })
    .prefault({})
    .describe(
      "The ClickHouse server or cluster the aggregator writes to and the query service reads (with `storage.engine` clickhouse).",
    );
}

/** Where data is kept, and for how long. */
export function storageSection() {
  return z
    .strictObject({
      engine: z
        .enum(["auto", "clickhouse", "embedded"])
        .default("auto")
        .describe("auto: the embedded store for `bifrost all`, ClickHouse for the aggregator and query roles"),
      path: z.string().min(1).default(".bifrost/data").describe("directory of the embedded store"),
      retention: z
        .strictObject({
          logs_days: number(z.number().int().positive()).default(30).describe("days logs and log volume are kept"),
          samples_days: number(z.number().int().positive()).default(15).describe("days raw samples are kept"),
          rollups_1m_days: number(z.number().int().positive()).default(90).describe("days 1-minute rollups are kept"),
          rollups_1h_days: number(z.number().int().positive()).default(730).describe("days 1-hour rollups are kept"),
        })
        .prefault({}),
    })
    .prefault({})
    .describe("Where data is kept, and for how long: ClickHouse TTLs, or deletion on schedule in the embedded store.");
}

/** The limits of every push route (collector.limits): the collector's receivers and the query service's central push. */
export function pushLimitsSchema() {
  return z
    .strictObject({
      max_body_bytes: bytes(z.number().int().positive())
        .default(10 << 20)
        .describe("request body limit (413 above it)"),
      max_decompressed_bytes: bytes(z.number().int().positive())
        .default(32 << 20)
        .describe(
          "a request's size once decompressed, and once decoded as batches carry it (labels and OTLP resource attributes copied to each record): 413 above it",
        ),
      max_labels: number(z.number().int().min(1)).default(30).describe("labels per stream or series"),
      max_label_name_bytes: bytes(z.number().int().min(1)).default(1024).describe("bytes per label name"),
      max_label_value_bytes: bytes(z.number().int().min(1)).default(2048).describe("bytes per label value"),
      max_line_bytes: bytes(z.number().int().min(1))
        .default(256 << 10)
        .describe("bytes per log line (400 above it; tailed lines are cut there)"),
      rate_entries_per_s: number(z.number().min(0))
        .default(0)
        .describe("entries per second per tenant (429 above it); 0 means no limit"),
      burst_entries: number(z.number().int().min(0))
        .default(0)
        .describe("bucket size of that rate; 0 means ten seconds of the rate"),
      reject_old_samples: boolean()
        .default(true)
        .describe("refuse entries and samples older than reject_old_samples_max_age_hours (400), as Loki"),
      reject_old_samples_max_age_hours: number(z.number().positive())
        .default(168)
        .describe("oldest accepted timestamp, in hours before now (Loki's reject_old_samples_max_age, 1 week)"),
      creation_grace_period_minutes: number(z.number().min(0))
        .default(10)
        .describe("newest accepted timestamp, in minutes after now (Loki's creation_grace_period); later ones get 400"),
      max_inflight_bytes: bytes(z.number().int().positive())
        .default(64 << 20)
        .describe(
          "decompressed bytes of the requests being decoded or waiting for the disk buffer, over all receivers: the memory bound of ingestion",
        ),
      max_inflight_wait_ms: duration(z.number().int().min(0))
        .default(2000)
        .describe("longest a request waits for room under max_inflight_bytes; then 503 with Retry-After"),
      discover_service_name: list(z.string().regex(LABEL_NAME))
        .default([...DEFAULT_SERVICE_NAME_SOURCES])
        .describe(
          "a log stream without `service_name` gets the value of the first of these labels it has, else `unknown_service` (Loki's discover_service_name; Grafana's Logs Drilldown lists services by it); empty adds none",
        ),
      discover_log_levels: boolean()
        .default(true)
        .describe(
          "add each log entry's level as the structured metadata `detected_level`, as Loki does, from a level label or field, else a level word in the line",
        ),
      log_level_fields: list(z.string().min(1))
        .default([...DEFAULT_LEVEL_FIELDS])
        .describe("labels, structured metadata and line fields read as the level, in order of preference"),
      log_level_from_json_max_depth: number(z.number().int())
        .default(2)
        .describe("how deep a JSON line is searched for a level field; 0 or less: without limit"),
    })
    .refine(
      (l) => l.max_decompressed_bytes >= l.max_body_bytes,
      "max_decompressed_bytes must be at least max_body_bytes (an uncompressed body is its own decompressed size)",
    )
    .prefault({});
}

/** Per-tenant limits replacing the defaults of collector.limits and query.limits. */
export function overridesSection() {
  return z
    .record(
      z.string().regex(TENANT_ID, "expected a tenant id as X-Scope-OrgID carries it"),
      z
        .strictObject({
          rate_entries_per_s: number(z.number().min(0))
            .optional()
            .describe("log entries and samples per second accepted by each collector; 0 means no limit"),
          burst_entries: number(z.number().int().min(0))
            .optional()
            .describe("largest burst over the rate; 0 means ten seconds of the rate"),
          max_labels: number(z.number().int().min(1))
            .optional()
            .describe("most label names per stream or series at the collector"),
          max_line_bytes: bytes(z.number().int().min(1)).optional().describe("longest log line at the collector"),
          max_query_series: number(z.number().int().min(1))
            .optional()
            .describe("most series a metric query (LogQL or PromQL) may return"),
          max_query_length_hours: number(z.number().int().min(0))
            .optional()
            .describe("longest time range of one query; 0 means no limit"),
          max_entries_limit_per_query: number(z.number().int().min(1))
            .optional()
            .describe("largest `limit` of a log query or tail"),
          query_timeout_ms: duration(z.number().int().min(1)).optional().describe("longest run of one query"),
        })
        .describe("limits of this tenant; a key left out takes its default from collector.limits or query.limits"),
    )
    .default({})
    .describe(
      "per-tenant limits (Loki's per-tenant overrides): tenant id -> limits replacing the defaults for that tenant",
    );
}

export type AuthConfig = z.output<ReturnType<typeof authSection>>;
export type TelemetryConfig = z.output<ReturnType<typeof telemetrySection>>;
export type NodeConfig = z.output<ReturnType<typeof nodeSection>>;
export type KafkaClusterConfig = z.output<ReturnType<typeof kafkaSection>>;
export type ClickHouseConfig = z.output<ReturnType<typeof clickhouseSection>>;
export type StorageConfig = z.output<ReturnType<typeof storageSection>>;
export type PushLimits = z.output<ReturnType<typeof pushLimitsSchema>>;
export type TenantOverrides = z.output<ReturnType<typeof overridesSection>>;
/** TLS on one of Bifrost's own listeners. */
export type ServerTls = z.output<SharedSchemas["serverTlsSchema"]>;
/** The client side of TLS towards another Bifrost listener. */
export type ClientTlsConfig = z.output<SharedSchemas["clientTlsSchema"]>;
