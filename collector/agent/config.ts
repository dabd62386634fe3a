import { z } from "zod";
import type { SchemaParts } from "../../common/schema-parts.js";

/** `collector.fleet`: the collector as an OpAMP agent of a fleet server. */
export function collectorFleetSchema(p: SchemaParts) {
  const labelName = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_.]*$/, "expected a label name");
  return z
    .strictObject({
      enabled: p
        .boolean()
        .default(false)
        .describe("connect to an OpAMP server and accept remote configurations signed with collector.actions.keys"),
      url: z
        .string()
        .default("")
        .refine((u) => u === "" || /^(wss?|https?):\/\/[^\s]+$/.test(u), "expected a ws(s):// or http(s):// URL")
        .describe(
          "the OpAMP endpoint: ws(s)://host:4320/v1/opamp (WebSocket: configurations arrive at once) or http(s)://... (polling)",
        ),
      auth_token: z.string().default("").describe("bearer token, for a fleet server with auth enabled"),
      tls: p.clientTls.prefault({}),
      heartbeat_interval_ms: p
        .duration(z.number().int().min(100))
        .default(30_000)
        .describe("heartbeat (WebSocket) or polling (HTTP) interval; OpAMP's default is 30 s"),
      health_interval_ms: p
        .duration(z.number().int().min(100))
        .default(30_000)
        .describe(
          "component health (buffer fill, shipper lag, rejected and dropped counts) is reported at most this often",
        ),
      labels: z
        .record(labelName, z.string())
        .default({})
        .describe("labels of this node for the fleet's selectors, besides node, site, region, arch, os and version"),
      state_dir: z
        .string()
        .default("")
        .describe("instance uid, last good and pending remote configuration; empty: fleet/ in collector.wal.dir"),
      confirm_ms: p
        .duration(z.number().int().min(0))
        .default(60_000)
        .describe("a remote configuration becomes the last good one after running this long"),
      max_starts: p
        .number(z.number().int().min(1))
        .default(3)
        .describe("process starts with an unconfirmed remote configuration before it counts as a crash loop"),
      max_skew_ms: p
        .duration(z.number().int().min(1))
        .default(300_000)
        .describe("how far in the future a configuration's signature time may lie"),
      allow_remote_actions: p
        .boolean()
        .default(false)
        .describe("let remote configurations add to or widen collector.actions.allowed (narrowing is always allowed)"),
      remote_file_paths: p
        .list(z.string().regex(/^\//, "expected an absolute directory"))
        .default(["/var/log"])
        .describe("directories under which a remote configuration may tail files (collector.files paths)"),
      max_message_bytes: p
        .bytes(z.number().int().min(1024))
        .default(16 << 20)
        .describe("largest OpAMP message accepted from the server"),
      reconnect_max_ms: p
        .duration(z.number().int().min(100))
        .default(60_000)
        .describe("longest wait between connection attempts (exponential backoff with jitter)"),
    })
    .refine((f) => !f.enabled || f.url !== "", "fleet.enabled needs url")
    .prefault({})
    .describe("fleet management over OpAMP: remote configuration, effective configuration and health reports");
}
