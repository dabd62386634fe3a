import { z } from "zod";
import type { SchemaParts } from "../common/schema-parts.js";

/** The `fleet` section: `bifrost fleet`, the OpAMP server of the collector fleet (also part of `bifrost all`). */
export function fleetSchema(p: SchemaParts) {
  const uniqueIds = (keys: { id: string }[]) => new Set(keys.map((k) => k.id)).size === keys.length;
  return z
    .strictObject({
      listen: p.listenAddress
        .default("127.0.0.1:4320")
        .describe(
          "listener of OpAMP (HTTP and WebSocket, path /v1/opamp; OpAMP's port), the fleet API, /ready, /metrics",
        ),
      tls: p.serverTls.prefault({}),
      source_dir: z
        .string()
        .default("")
        .describe(
          "the GitOps directory (a git checkout) of base.yaml, fragments and rollout.yaml, polled for changes; empty offers no configuration",
        ),
      poll_interval_ms: p
        .duration(z.number().int().min(100))
        .default(10_000)
        .describe("how often source_dir is read and compared by content"),
      stale_after_ms: p
        .duration(z.number().int().min(1000))
        .default(120_000)
        .describe("an agent not heard from for this long is `stale` (four missed heartbeats at OpAMP's 30 s)"),
      forget_after_ms: p
        .duration(z.number().int().min(0))
        .default(7 * 86_400_000)
        .describe("a stale agent is removed from the inventory after this long; 0 keeps it"),
      persist_interval_ms: p
        .duration(z.number().int().min(100))
        .default(5000)
        .describe("changed inventory records are written to the store together at this interval"),
      last_seen_persist_ms: p
        .duration(z.number().int().min(1000))
        .default(60_000)
        .describe("a heartbeat that changes nothing else updates the stored last-seen time at most this often"),
      keys: z
        .array(p.key)
        .default([])
        .refine(uniqueIds, "key ids must be unique")
        .describe(
          "keys that sign remote configurations: the action keys (Ed25519 private keys or HMAC secrets) whose verifying halves are the collectors' collector.actions.keys",
        ),
      signing_key_id: z.string().default("").describe("the key of `keys` that signs; empty: the only one"),
      max_message_bytes: p
        .bytes(z.number().int().min(1024))
        .default(16 << 20)
        .describe("largest OpAMP message accepted or sent (WebSocket close 1009, HTTP 413 above it)"),
      rollout_tick_ms: p
        .duration(z.number().int().min(50))
        .default(1000)
        .describe("how often rollouts are advanced and their health gates evaluated"),
    })
    .refine(
      (f) => f.signing_key_id === "" || f.keys.some((k) => k.id === f.signing_key_id),
      "signing_key_id must name a key of `keys`",
    )
    .refine(
      (f) => f.signing_key_id !== "" || f.keys.length <= 1,
      "with several keys, signing_key_id chooses the one that signs",
    )
    .prefault({})
    .describe(
      "`bifrost fleet`: the OpAMP server of the collector fleet: inventory, GitOps configuration, staged rollouts with health gates.",
    );
}
