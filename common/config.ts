import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { z } from "zod";
import { collectorFleetSchema } from "../collector/agent/config.js";
import { logInputSchemas } from "../collector/receivers/log-input-schemas.js";
import { remoteWriteSchema } from "../collector/receivers/remote-write-config.js";
import { scrapeSchema } from "../collector/receivers/scrape-config.js";
import { fleetSchema } from "../fleet/config.js";
import { mergeDocuments } from "./merge.js";
import type { SchemaParts } from "./schema-parts.js";

// The configuration file is YAML with snake_case keys, as Loki's and Prometheus's are. Every key has a default,
// so an empty file (or none) is a working single-machine setup. Precedence: defaults < file < environment.
//
// Environment overrides: BIFROST_<SECTION>__<KEY>=value, `__` between levels. Values arrive as strings; the
// schema reads numbers, booleans and comma-separated lists out of them (BIFROST_KAFKA__BROKERS=k1:9092,k2:9092),
// so that a password of digits stays a string.
// Inside the file, ${VAR} and ${VAR:-default} expand from the environment (Loki's -config.expand-env); $${ is a
// literal ${.

/** A list, also written as one comma-separated string, as environment variables carry it. */
export function list<T extends z.ZodType>(item: T) {
  return z.preprocess((v) => (typeof v === "string" ? v.split(",").map((s) => s.trim()) : v), z.array(item));
}

/** A number matching `schema`, also written as a numeric string. */
export function number(schema: z.ZodNumber = z.number()) {
  return z.preprocess((v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v), schema);
}

/** A boolean, also written as "true" or "false". */
export function boolean() {
  return z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean());
}
/** Tenant ids as Loki accepts them in X-Scope-OrgID. */
export const TENANT_ID = /^[A-Za-z0-9!_.*'()-]{1,150}$/;

const uniqueIds = (keys: { id: string }[]) => new Set(keys.map((k) => k.id)).size === keys.length;

/** Names of actions and of their parameters: they become label values and `{{name}}` placeholders. */
const ACTION_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * The schemas, built on each call and kept by no one: the configuration is read once at start, and its
 * schema (about 2 MiB of zod objects) would otherwise stay in the heap of every process, the edge
 * collector's included.
 */
function buildSchemas() {
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
  /** A JavaScript regular expression, checked when the configuration loads. */
  const regex = z.string().refine((text) => {
    try {
      new RegExp(text);
      return true;
    } catch {
      return false;
    }
  }, "expected a valid regular expression");

  const labelName = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, "expected a Prometheus label name");

  /** Where the notifier sends: one webhook receiver with its own grouping and timing, as an Alertmanager route. */
  const notifierReceiver = z.strictObject({
    name: z
      .string()
      .regex(
        /^[A-Za-z0-9_.-]{1,100}$/,
        "expected a receiver name of letters, digits, _ . -; it names the dead-letter file",
      )
      .describe("receiver name: in metrics, the payload and `<dead_letter_dir>/<name>.jsonl`"),
    url: z.url().describe("webhook URL; each notification is a POST of Alertmanager's webhook message, version 4"),
    matchers: z
      .record(labelName, regex)
      .default({})
      .describe("label -> regular expression, fully anchored; every one must match"),
    group_by: list(z.union([labelName, z.literal("...")]))
      .default([])
      .refine((labels) => !labels.includes("...") || labels.length === 1, '"..." (every label) stands alone')
      .describe('labels alerts are grouped by; [] puts all in one group, ["..."] makes one group per alert'),
    group_wait_ms: number(z.number().int().min(0))
      .default(30_000)
      .describe("wait before the first notification of a new group"),
    group_interval_ms: number(z.number().int().min(1))
      .default(300_000)
      .describe("wait before notifying a group about new or resolved alerts"),
    repeat_interval_ms: number(z.number().int().min(1))
      .default(14_400_000)
      .describe("wait before repeating an unchanged notification"),
    send_resolved: boolean().default(true).describe("notify when alerts resolve"),
    hmac_secret: z
      .string()
      .min(16, "expected a secret of at least 16 characters")
      .optional()
      .describe(
        "sign each request: X-Bifrost-Timestamp and X-Bifrost-Signature (HMAC-SHA256 over `<timestamp>.<body>`)",
      ),
    headers: z.record(z.string(), z.string()).default({}).describe("headers added to each request"),
    timeout_ms: number(z.number().int().min(1)).default(10_000).describe("timeout of one request"),
    max_alerts: number(z.number().int().min(0)).default(0).describe("0 sends every alert of a group"),
  });

  const notifierSchema = z
    .strictObject({
      receivers: z
        .array(notifierReceiver)
        .default([])
        .refine(
          (receivers) => new Set(receivers.map((r) => r.name)).size === receivers.length,
          "receiver names must be unique",
        )
        .describe(
          "webhook receivers, each an Alertmanager route with one webhook; an alert goes to every receiver whose matchers match",
        ),
      alertmanagers: list(z.url())
        .default([])
        .describe("Alertmanager base URLs; alerts are posted to <url>/api/v2/alerts"),
      alertmanager_timeout_ms: number(z.number().int().min(1))
        .default(10_000)
        .describe("timeout of one post to an Alertmanager"),
      resend_delay_ms: number(z.number().int().min(1))
        .default(60_000)
        .describe("how often a firing alert is re-posted to Alertmanager"),
      resolve_timeout_ms: number(z.number().int().min(1))
        .default(300_000)
        .describe("a firing alert not sent again within it is resolved"),
      external_url: z.string().default("").describe("externalURL of the webhook payload"),
      max_attempts: number(z.number().int().min(1).max(100))
        .default(5)
        .describe("attempts per notification; network errors, timeouts, 429 and 5xx are retried"),
      backoff_ms: number(z.number().int().min(1))
        .default(500)
        .describe("backoff after the first failed attempt, doubling per attempt, with jitter; Retry-After replaces it"),
      max_backoff_ms: number(z.number().int().min(1)).default(30_000).describe("longest backoff"),
      state_file: z
        .string()
        .min(1)
        .default(".bifrost/notifier/state.json")
        .describe("groups and notification log, kept across restarts"),
      dead_letter_dir: z
        .string()
        .min(1)
        .default(".bifrost/notifier/dead-letter")
        .describe("notifications given up, as `<receiver>.jsonl`"),
    })
    .refine((n) => n.backoff_ms <= n.max_backoff_ms, "backoff_ms must not exceed max_backoff_ms");

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
              start_pattern: regex.describe("a line matching it starts a new entry; other lines join the entry before"),
              max_lines: number(z.number().int().min(1)).default(128).describe("an entry ends after this many lines"),
              timeout_ms: number(z.number().int().positive())
                .default(3000)
                .describe("an entry ends when no line joined it for this long"),
            })
            .optional()
            .describe("join the lines of one event (a stack trace) into one entry"),
          tenant: z.string().min(1).optional().describe("tenant of the lines; none means collector.default_tenant"),
          encoding: z.enum(["utf8", "latin1"]).default("utf8").describe("character encoding of the files"),
        }),
      )
      .default([])
      .describe("files to tail as Promtail does: each line an entry of the stream {filename, labels}"),
    files_positions: z
      .string()
      .default("")
      .describe("file of the read positions kept across restarts; empty: file-positions.json in collector.wal.dir"),
    files_poll_ms: number(z.number().int().positive())
      .default(250)
      .describe("how often tailed files are checked for new lines, rotation and truncation"),
    files_sync_ms: number(z.number().int().positive())
      .default(10_000)
      .describe("how often the globs are expanded again for new files"),
    files_rotate_wait_ms: number(z.number().int().min(0))
      .default(5000)
      .describe("how long a rotated file that stopped growing is still read before it is closed"),
    host_metrics: z
      .strictObject({
        enabled: boolean().default(false).describe("read node_exporter-style host metrics from /proc"),
        interval_ms: number(z.number().int().positive()).default(15_000).describe("scrape interval"),
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
                  cmdline: regex.optional().describe("regular expression on the arguments joined by spaces"),
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
    ...logInputSchemas({ list, number, boolean, labelName, listenAddress, serverTls: serverTlsSchema }),
  };

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
                  new RegExp(p);
                  return true;
                } catch {
                  return false;
                }
              }, "expected a regular expression")
              .describe("the whole value must match it"),
            required: boolean().default(true).describe("refuse the action without this parameter"),
          }),
        )
        .default({})
        .describe("declared parameters; any other is refused"),
      timeout_ms: number(z.number().int().min(1))
        .default(30_000)
        .describe("the command's process group is killed after this"),
      cooldown_ms: number(z.number().int().min(0))
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

  const parts: SchemaParts = {
    number,
    boolean,
    list,
    listenAddress,
    serverTls: serverTlsSchema,
    clientTls: clientTlsSchema,
    key: keySchema,
  };

  const configSchema = z.strictObject({
    auth: z
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
      ),
    log: z
      .strictObject({
        level: logLevel.default("info").describe("level of the JSON log lines on stdout"),
      })
      .prefault({})
      .describe("Bifrost's own logs: JSON lines on stdout (pino)."),
    telemetry: z
      .strictObject({
        otlp_endpoint: z
          .string()
          .default("")
          .describe("OTLP gRPC endpoint for Bifrost's own traces and metrics; empty turns it off"),
        service_name: z.string().default("bifrost").describe("`service.name` of that telemetry"),
        export_interval_ms: number(z.number().int().positive()).default(15000).describe("metric export interval"),
      })
      .prefault({})
      .describe(
        "Bifrost's own traces and metrics over OTLP (`@opentelemetry/sdk-node`); /metrics is served regardless.",
      ),
    node: z
      .strictObject({
        id: z.string().min(1).default("local").describe("this node's id: the Kafka message key and the `node` label"),
        site: z.string().default("").describe("`site` label attached to everything this node sends"),
        region: z.string().default("").describe("`region` label attached to everything this node sends"),
      })
      .prefault({})
      .describe("Who this process is; the collector labels what it sends with it."),
    kafka: z
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
      .describe("The Kafka cluster between collectors and aggregators: collectors produce, aggregators consume."),
    clickhouse: z
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
          .describe(
            "cluster name: replicated tables ON CLUSTER with Distributed tables in front; empty for one server",
          ),
        tls: tlsSchema.prefault({}),
      })
      .prefault({})
      .describe(
        "The ClickHouse server or cluster the aggregator writes to and the query service reads (with `storage.engine` clickhouse).",
      ),
    storage: z
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
      .describe(
        "Where data is kept, and for how long: ClickHouse TTLs, or deletion on schedule in the embedded store.",
      ),
    collector: z
      .strictObject({
        listen: listenAddress
          .default("127.0.0.1:4318")
          .describe("HTTP listener: Loki push, OTLP/HTTP, actions, /ready, /metrics"),
        tls: serverTlsSchema.prefault({}),
        default_tenant: z
          .string()
          .min(1)
          .default("fake")
          .describe("tenant of pushes without X-Scope-OrgID, as in Loki"),
        ...collectorInputs,
        scrape: scrapeSchema(),
        remote_write: remoteWriteSchema(),
        wal: z
          .strictObject({
            dir: z.string().min(1).default(".bifrost/wal").describe("directory of the disk buffer"),
            max_bytes: number(z.number().int().positive())
              .default(1 << 30)
              .describe("disk budget of the buffer"),
            segment_bytes: number(z.number().int().positive())
              .default(16 << 20)
              .describe("size of one segment file"),
            fsync: z
              .enum(["always", "interval", "never"])
              .default("interval")
              .describe(
                "always: every batch durable before it is acknowledged; interval: every fsync_interval_ms; never: left to the OS",
              ),
            fsync_interval_ms: number(z.number().int().positive())
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
                timeout_ms: number(z.number().int().min(1))
                  .default(30_000)
                  .describe("per request, the aggregator's store write included"),
                max_request_bytes: number(z.number().int().min(1))
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
            max_bytes: number(z.number().int().positive())
              .default(1 << 20)
              .describe("line bytes per batch"),
            max_age_ms: number(z.number().int().positive())
              .default(1000)
              .describe("longest a push waits to be written; it is acknowledged after the write"),
          })
          .prefault({}),
        otlp: z
          .strictObject({
            http_enabled: boolean().default(true).describe("OTLP/HTTP on /v1/logs and /v1/metrics of collector.listen"),
            grpc_enabled: boolean().default(true).describe("serve OTLP/gRPC (LogsService, MetricsService)"),
            grpc_listen: listenAddress.default("127.0.0.1:4317").describe("OTLP/gRPC listener"),
            max_grpc_message_bytes: number(z.number().int().positive())
              .default(4 << 20)
              .describe("largest gRPC request (RESOURCE_EXHAUSTED above it)"),
          })
          .prefault({}),
        limits: z
          .strictObject({
            max_body_bytes: number(z.number().int().positive())
              .default(10 << 20)
              .describe("request body limit (413 above it)"),
            max_labels: number(z.number().int().min(1)).default(30).describe("labels per stream or series"),
            max_label_name_bytes: number(z.number().int().min(1)).default(1024).describe("bytes per label name"),
            max_label_value_bytes: number(z.number().int().min(1)).default(2048).describe("bytes per label value"),
            max_line_bytes: number(z.number().int().min(1))
              .default(256 << 10)
              .describe("bytes per log line (400 above it; tailed lines are cut there)"),
            rate_entries_per_s: number(z.number().min(0))
              .default(0)
              .describe("entries per second per tenant (429 above it); 0 means no limit"),
            burst_entries: number(z.number().int().min(0))
              .default(0)
              .describe("bucket size of that rate; 0 means ten seconds of the rate"),
          })
          .prefault({}),
        actions: z
          .strictObject({
            enabled: boolean().default(false).describe("serve POST /bifrost/v1/actions"),
            keys: z
              .array(keySchema)
              .default([])
              .refine(uniqueIds, "key ids must be unique")
              .describe("keys whose signatures are accepted"),
            max_skew_ms: number(z.number().int().min(1))
              .default(60_000)
              .describe("how far `issued_at` may lie from this clock, either way"),
            nonce_cache_size: number(z.number().int().min(1))
              .default(100_000)
              .describe("unexpired nonces remembered; when full, actions get 503"),
            rate_per_s: number(z.number().positive())
              .default(1)
              .describe("actions per second over all actions, counted after authentication"),
            burst: number(z.number().int().min(1)).default(5).describe("bucket size of that rate"),
            max_output_bytes: number(z.number().int().min(0))
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
                url: z
                  .string()
                  .default("")
                  .describe("the query service's POST /bifrost/v1/heartbeat; empty sends none"),
                interval_ms: number(z.number().int().min(100)).default(15_000).describe("heartbeat period"),
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
        fleet: collectorFleetSchema(parts),
      })
      .prefault({})
      .describe(
        "`bifrost collector`, on each edge node: receivers, disk buffer (WAL), shipping to Kafka, self-healing actions.",
      ),
    aggregator: z
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
        max_batch_bytes: number(z.number().int().positive())
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
            max_body_bytes: number(z.number().int().positive())
              .default(32 << 20)
              .describe("largest request (413 above it)"),
          })
          .prefault({})
          .describe(
            "collectors that cannot reach Kafka ship to the aggregator over HTTP (collector.shipper.transport: http)",
          ),
        partitions_concurrently: number(z.number().int().min(1).max(64))
          .default(4)
          .describe("partitions processed at once"),
        session_timeout_ms: number(z.number().int().min(6000))
          .default(30_000)
          .describe("how long a silent member keeps its partitions"),
        flush_rows: number(z.number().int().min(1))
          .default(50_000)
          .describe("rows gathered across partitions per store write"),
        flush_ms: number(z.number().int().min(1)).default(500).describe("longest wait before a store write"),
        limits: z
          .strictObject({
            max_labels: number(z.number().int().min(1)).default(30).describe("labels per stream or series"),
            max_label_name_bytes: number(z.number().int().min(1)).default(1024).describe("bytes per label name"),
            max_label_value_bytes: number(z.number().int().min(1)).default(2048).describe("bytes per label value"),
            max_line_bytes: number(z.number().int().min(1))
              .default(256 << 10)
              .describe("bytes per log line"),
          })
          .prefault({}),
      })
      .prefault({})
      .describe(
        "`bifrost aggregator`, in each region: Kafka consumer group, decoding and rollups in worker threads, batched store writes. A batch over a limit goes to the dead-letter topic.",
      ),
    all: z
      .strictObject({
        demo: boolean()
          .default(true)
          .describe(
            "`bifrost all` only: this machine's host metrics, Bifrost's own logs as {job=\"bifrost\"}, and the sample rules of deploy/rules when query.ruler has none",
          ),
      })
      .prefault({})
      .describe("`bifrost all`: every part in one process with embedded defaults."),
    query: z
      .strictObject({
        listen: listenAddress
          .default("127.0.0.1:3100")
          .describe("HTTP listener of the Loki and Prometheus APIs (Loki's port)"),
        tls: serverTlsSchema.prefault({}),
        default_tenant: z
          .string()
          .min(1)
          .default("fake")
          .describe("tenant of requests without X-Scope-OrgID, as in Loki"),
        limits: z
          .strictObject({
            max_query_length_hours: number(z.number().int().min(0))
              .default(721)
              .describe("longest time range of one query; 0 means no limit"),
            max_query_series: number(z.number().int().min(1))
              .default(500)
              .describe("most series a metric query may return"),
            max_entries_limit_per_query: number(z.number().int().min(1))
              .default(5000)
              .describe("largest `limit` of a log query"),
            query_timeout_ms: number(z.number().int().min(1))
              .default(60_000)
              .describe("a query running longer answers 504"),
            max_query_bytes: number(z.number().int().min(1))
              .default(128 << 10)
              .describe("longest query text"),
          })
          .prefault({}),
        ruler: z
          .strictObject({
            rule_files: list(z.string().min(1))
              .default([])
              .describe("rule files evaluated for every tenant of `tenants`"),
            rules_dir: z
              .string()
              .min(1)
              .optional()
              .describe(
                "directory of rule files, polled for changes: `<dir>/<tenant>/*.yaml` per tenant, `<dir>/*.yaml` for `tenants`",
              ),
            tenants: list(z.string().regex(TENANT_ID))
              .default([])
              .describe(
                "tenants of `rule_files` and of the files directly in `rules_dir`; empty means `query.default_tenant`",
              ),
            evaluation_interval_ms: number(z.number().int().min(1000))
              .default(60_000)
              .describe("interval of groups that set none"),
            poll_interval_ms: number(z.number().int().min(0))
              .default(10_000)
              .describe("how often `rules_dir` and `rule_files` are checked for changes; 0 disables"),
            outage_tolerance_ms: number(z.number().int().min(0))
              .default(3_600_000)
              .describe("alert state older than this is not restored at start"),
            external_url: z
              .string()
              .default("")
              .describe("base of alerts' generatorURL; empty means the query listener's URL"),
          })
          .prefault({})
          .describe("rule evaluation: alerting, recording and anomaly rules"),
        actions: z
          .strictObject({
            enabled: boolean()
              .default(false)
              .describe("send self-healing actions and serve POST /bifrost/v1/heartbeat"),
            keys: z
              .array(keySchema)
              .default([])
              .refine(uniqueIds, "key ids must be unique")
              .describe("signing keys: Ed25519 private keys or HMAC secrets"),
            signing_key_id: z.string().default("").describe("the key of `keys` that signs; empty: the only one"),
            collectors: z.record(z.string().min(1), z.url()).default({}).describe("node id -> collector URL"),
            heartbeat_keys: z
              .array(keySchema)
              .default([])
              .refine(uniqueIds, "key ids must be unique")
              .describe("keys whose heartbeat signatures are accepted: Ed25519 public keys or HMAC secrets"),
            heartbeat_ttl_ms: number(z.number().int().min(1))
              .default(60_000)
              .describe("a node's heartbeat URL is used this long, then `collectors` again"),
            max_skew_ms: number(z.number().int().min(1))
              .default(60_000)
              .describe("how old or new a heartbeat's timestamp may be"),
            request_timeout_ms: number(z.number().int().min(1))
              .default(120_000)
              .describe("per attempt; longer than the slowest action, as the collector answers when it ends"),
            max_attempts: number(z.number().int().min(1).max(10))
              .default(3)
              .describe("attempts per action on network errors and 502/503/504, under one action id"),
            auth_token: z.string().default("").describe("bearer token for collectors with auth enabled"),
            tls: clientTlsSchema.prefault({}),
            audit_tenant: z.string().default("").describe("empty: query.default_tenant"),
            node_label: z.string().min(1).default("node").describe("the alert label naming the node to act on"),
            bindings: z
              .array(
                z.strictObject({
                  matchers: z
                    .record(z.string(), z.string())
                    .refine((m) => Object.keys(m).length > 0, "expected at least one matcher")
                    .describe("label -> value; an alert whose labels equal all of them gets the action"),
                  action: z.string().regex(ACTION_NAME).describe("name of an action on the collectors' allow-list"),
                  params: z.record(z.string(), z.string()).default({}).describe("fixed parameters"),
                  params_from_labels: z
                    .record(z.string(), z.string())
                    .default({})
                    .describe("parameter -> the alert label it is taken from"),
                }),
              )
              .default([])
              .describe("which firing alerts trigger which action"),
          })
          .prefault({})
          .refine((a) => !a.enabled || a.keys.length > 0, "actions.enabled needs at least one key")
          .refine(
            (a) => a.signing_key_id === "" || a.keys.some((k) => k.id === a.signing_key_id),
            "signing_key_id must name a key of `keys`",
          )
          .refine(
            (a) => a.signing_key_id !== "" || a.keys.length <= 1,
            "with several keys, signing_key_id chooses the one that signs",
          )
          .describe("self-healing: signed actions sent to the collector of a firing alert's node"),
        notifier: notifierSchema
          .prefault({})
          .describe("notifications of the ruler's alerts: webhook receivers and Alertmanager"),
      })
      .prefault({})
      .describe("`bifrost query`, in the center: Loki and Prometheus APIs, ruler, notifier, remediation."),
    fleet: fleetSchema(parts),
    overrides: z
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
            max_line_bytes: number(z.number().int().min(1)).optional().describe("longest log line at the collector"),
            max_query_series: number(z.number().int().min(1))
              .optional()
              .describe("most series a metric query (LogQL or PromQL) may return"),
            max_query_length_hours: number(z.number().int().min(0))
              .optional()
              .describe("longest time range of one query; 0 means no limit"),
            max_entries_limit_per_query: number(z.number().int().min(1))
              .optional()
              .describe("largest `limit` of a log query or tail"),
            query_timeout_ms: number(z.number().int().min(1)).optional().describe("longest run of one query"),
          })
          .describe("limits of this tenant; a key left out takes its default from collector.limits or query.limits"),
      )
      .default({})
      .describe(
        "per-tenant limits (Loki's per-tenant overrides): tenant id -> limits replacing the defaults for that tenant",
      ),
  });
  return { config: configSchema, notifier: notifierSchema };
}

/** The whole configuration's schema, built anew (see buildSchemas). */
export function configSchema() {
  return buildSchemas().config;
}

export type Config = z.infer<ReturnType<typeof configSchema>>;
export type NotifierConfig = Config["query"]["notifier"];
export type NotifierReceiverConfig = NotifierConfig["receivers"][number];

/** The notifier's section with its defaults filled in, for code that builds a notifier without a config file. */
export function notifierConfig(raw: unknown): NotifierConfig {
  return buildSchemas().notifier.parse(raw);
}

/** A configuration that failed to load; `problems` name each bad key (as a dotted path) and why. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration (${source}):\n  - ${problems.join("\n  - ")}`);
  }
}

const ENV_PREFIX = "BIFROST_";

export interface LoadOptions {
  /** YAML file; omitted means defaults plus environment. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** A document laid over the file, under the environment: a collector's remote configuration. */
  overlay?: unknown;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const source = options.file ?? (options.overlay === undefined ? "defaults" : "remote configuration");
  let raw: unknown = {};
  if (options.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.file, "utf8");
    } catch (err) {
      throw new ConfigError(source, [`cannot read the file: ${(err as Error).message}`]);
    }
    raw = parseConfigText(expandEnv(text, env, source), source);
  }
  const merged = applyEnvOverrides(options.overlay === undefined ? raw : mergeDocuments(raw, options.overlay), env);
  const result = configSchema().safeParse(merged);
  if (!result.success) {
    throw new ConfigError(
      source,
      result.error.issues.map(
        (issue) => `${describePath(issue.path)}: ${describeIssue(issue)}${envHint(issue.path, env)}`,
      ),
    );
  }
  return result.data;
}

function parseConfigText(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0)
    throw new ConfigError(
      source,
      doc.errors.map((e) => e.message),
    );
  const value: unknown = doc.toJS() ?? {};
  if (typeof value !== "object" || Array.isArray(value))
    throw new ConfigError(source, ["the top level must be a mapping"]);
  return value;
}

function expandEnv(text: string, env: NodeJS.ProcessEnv, source: string): string {
  const missing: string[] = [];
  // `$${` is a literal `${`, for the ${name} templates of Prometheus relabel rules in collector.scrape.
  const out = text.replace(
    /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}/g,
    (_match, name?: string, fallback?: string) => {
      if (name === undefined) return "${";
      const value = env[name];
      if (value !== undefined && value !== "") return value;
      if (fallback !== undefined) return fallback;
      missing.push(`\${${name}} is not set and has no default (write \${${name}:-default})`);
      return "";
    },
  );
  if (missing.length > 0) throw new ConfigError(source, missing);
  return out;
}

function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  const root = structuredClone(raw) as Record<string, unknown>;
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).toLowerCase().split("__");
    // Every key sits in a section, so an override names at least two levels; BIFROST_CACHE and the like
    // (used by deploy/local/services.sh) are not configuration.
    if (path.length < 2) continue;
    if (path.some((key) => key === "" || key === "__proto__" || key === "constructor" || key === "prototype")) continue;
    let node = root;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return root;
}

function describePath(path: PropertyKey[]): string {
  if (path.length === 0) return "(top level)";
  return path.map((key, i) => (typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`)).join("");
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys")
    return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.join(", ")}`;
  return issue.message;
}

function envHint(path: PropertyKey[], env: NodeJS.ProcessEnv): string {
  for (let depth = path.length; depth > 0; depth--) {
    const name =
      ENV_PREFIX +
      path
        .slice(0, depth)
        .filter((k) => typeof k === "string")
        .join("__")
        .toUpperCase();
    if (env[name] !== undefined) return ` (set by ${name})`;
  }
  return "";
}
