import { z } from "zod";
import { boolean, bytes, duration, list, number, TENANT_ID } from "../common/config.js";
import { ACTION_NAME, type SharedSchemas, sharedSchemas, uniqueIds } from "../common/config-sections.js";

// The query service's section of the configuration (`query:`, with the ruler, the notifier and remediation),
// composed with the others in config.ts.

/** The notifier's part of the section: webhook receivers and Alertmanager. */
function notifierSchema(s: SharedSchemas) {
  const { regex, labelName } = s;
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
    group_wait_ms: duration(z.number().int().min(0))
      .default(30_000)
      .describe("wait before the first notification of a new group"),
    group_interval_ms: duration(z.number().int().min(1))
      .default(300_000)
      .describe("wait before notifying a group about new or resolved alerts"),
    repeat_interval_ms: duration(z.number().int().min(1))
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
    timeout_ms: duration(z.number().int().min(1)).default(10_000).describe("timeout of one request"),
    max_alerts: number(z.number().int().min(0)).default(0).describe("0 sends every alert of a group"),
  });

  return z
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
      alertmanager_timeout_ms: duration(z.number().int().min(1))
        .default(10_000)
        .describe("timeout of one post to an Alertmanager"),
      resend_delay_ms: duration(z.number().int().min(1))
        .default(60_000)
        .describe("how often a firing alert is re-posted to Alertmanager"),
      resolve_timeout_ms: duration(z.number().int().min(1))
        .default(300_000)
        .describe("a firing alert not sent again within it is resolved"),
      external_url: z.string().default("").describe("externalURL of the webhook payload"),
      max_attempts: number(z.number().int().min(1).max(100))
        .default(5)
        .describe("attempts per notification; network errors, timeouts, 429 and 5xx are retried"),
      backoff_ms: duration(z.number().int().min(1))
        .default(500)
        .describe("backoff after the first failed attempt, doubling per attempt, with jitter; Retry-After replaces it"),
      max_backoff_ms: duration(z.number().int().min(1)).default(30_000).describe("longest backoff"),
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
}

/** The query service's in-memory index catalog (query/catalog/): its staleness and memory bounds. */
export const indexCacheSchema = z
  .strictObject({
    enabled: boolean()
      .default(true)
      .describe(
        "answer /labels, /label/<name>/values, /series, /index/stats and /index/volume(_range) from an in-memory catalog of each tenant's streams index and recent per-minute log volume, refreshed from the store's changes, instead of querying the store each time",
      ),
    staleness_ms: duration(z.number().int().min(0))
      .default(1000)
      .describe(
        "how stale the catalog may answer: a request finding it older reads the store's changes first (at most once per this, on demand). Writes through this process (`bifrost all`, pushes to this service) show at once; writes of other processes (the aggregator) within this. 0 reads the changes on every request",
      ),
    max_streams: number(z.number().int().min(1))
      .default(100_000)
      .describe(
        "most streams held per tenant (about 1 KiB of heap each with their labels, measured with 4 labels); a tenant with more is answered by store queries, and checked again every 5 minutes",
      ),
    volume_window_hours: number(z.number().int().min(1).max(24))
      .default(6)
      .describe(
        "hours of per-minute log volume held; /index/stats and /index/volume ranges that start earlier query the store",
      ),
    max_volume_cells: number(z.number().int().min(1))
      .default(1_000_000)
      .describe(
        "most stream-minutes of volume held per tenant (about 120 bytes of heap each); past it, as max_streams. A tenant unused for 10 minutes is dropped from memory",
      ),
  })
  .prefault({});

export type IndexCacheConfig = z.output<typeof indexCacheSchema>;

/** The `query` section. */
export function querySection(s: SharedSchemas) {
  const { listenAddress, serverTlsSchema, clientTlsSchema, keySchema } = s;
  const notifier = notifierSchema(s);
  return z
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
          query_timeout_ms: duration(z.number().int().min(1))
            .default(60_000)
            .describe("a query running longer answers 504"),
          max_query_bytes: bytes(z.number().int().min(1))
            .default(128 << 10)
            .describe("longest query text"),
          max_samples: number(z.number().int().min(1))
            .default(50_000_000)
            .describe(
              "most samples one PromQL query may load and hold, its subqueries' steps included (Prometheus' --query.max-samples; past it 422), and most log entries the range windows of one LogQL metric query may hold at once (past it 400)",
            ),
          max_pattern_lines: number(z.number().int().min(1))
            .default(1_000_000)
            .describe(
              "most lines /loki/api/v1/patterns mines per request (the newest of its range; the answer warns when there were more)",
            ),
        })
        .prefault({}),
      index_cache: indexCacheSchema,
      ruler: z
        .strictObject({
          rule_files: list(z.string().min(1))
            .default([])
            .describe(
              "rule files evaluated for every tenant of `tenants`; an expression valid in both PromQL and LogQL is PromQL here, unless its group says `language: logql`",
            ),
          rules_dir: z
            .string()
            .min(1)
            .optional()
            .describe(
              "directory of rule files, polled for changes: `<dir>/<tenant>/*.yaml` per tenant, `<dir>/*.yaml` for `tenants` (Loki's layout: an expression valid in both PromQL and LogQL is LogQL here, unless its group says `language: promql`)",
            ),
          tenants: list(z.string().regex(TENANT_ID))
            .default([])
            .describe(
              "tenants of `rule_files` and of the files directly in `rules_dir`; empty means `query.default_tenant`",
            ),
          evaluation_interval_ms: duration(z.number().int().min(1000))
            .default(60_000)
            .describe("interval of groups that set none"),
          poll_interval_ms: duration(z.number().int().min(0))
            .default(10_000)
            .describe("how often `rules_dir` and `rule_files` are checked for changes; 0 disables"),
          outage_tolerance_ms: duration(z.number().int().min(0))
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
          enabled: boolean().default(false).describe("send self-healing actions and serve POST /bifrost/v1/heartbeat"),
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
          heartbeat_ttl_ms: duration(z.number().int().min(1))
            .default(60_000)
            .describe("a node's heartbeat URL is used this long, then `collectors` again"),
          max_skew_ms: duration(z.number().int().min(1))
            .default(60_000)
            .describe("how old or new a heartbeat's timestamp may be"),
          request_timeout_ms: duration(z.number().int().min(1))
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
      notifier: notifier
        .prefault({})
        .describe("notifications of the ruler's alerts: webhook receivers and Alertmanager"),
    })
    .prefault({})
    .describe("`bifrost query`, in the center: Loki and Prometheus APIs, ruler, notifier, remediation.");
}

export type QueryConfig = z.output<ReturnType<typeof querySection>>;
export type NotifierConfig = QueryConfig["notifier"];
export type NotifierReceiverConfig = NotifierConfig["receivers"][number];

/** The notifier's section with its defaults filled in, for code that builds a notifier without a config file. */
export function notifierConfig(raw: unknown): NotifierConfig {
  return notifierSchema(sharedSchemas()).parse(raw);
}
