import { join } from "node:path";
import type { Hono } from "hono";
import { loadClientTls } from "../../common/http-client.js";
import type { Runtime } from "../../runtime.js";
import { KeyRing, signingKey } from "../../common/signing.js";
import type { Batcher } from "../buffer/batcher.js";
import { RateLimiter } from "../../common/rate-limit.js";
import { compileAllowList } from "./allowlist.js";
import { CollectorAudit } from "./audit.js";
import { ActionEndpoint } from "./endpoint.js";
import { startHeartbeat } from "./heartbeat.js";
import { actionMetrics } from "./metrics.js";
import { NonceCache } from "./nonces.js";

export interface CollectorActions {
  route(app: Hono): void;
  /** Starts heartbeats (when configured), advertising `listenUrl` unless advertise_url says otherwise. */
  start(listenUrl: string): void;
  stop(): void;
}

/**
 * The self-healing action endpoint as collector.actions configures it; undefined when it is not enabled.
 * `incarnation` (the disk buffer's) goes into the heartbeats.
 */
export function collectorActions(
  runtime: Runtime,
  batcher: Pick<Batcher, "add">,
  incarnation: string,
): CollectorActions | undefined {
  const { config } = runtime;
  const a = config.collector.actions;
  if (!a.enabled) return undefined;
  const log = runtime.log.child({ component: "actions" });
  // Beside the disk buffer, which is the collector's durable state: a restart must not forget used nonces.
  const nonces = NonceCache.open(join(config.collector.wal.dir, "action-nonces"), a.nonce_cache_size);
  const endpoint = new ActionEndpoint({
    node: config.node.id,
    keys: new KeyRing(a.keys),
    maxSkewMs: a.max_skew_ms,
    nonces,
    allowed: compileAllowList(a.allowed),
    rate: new RateLimiter(a.rate_per_s, a.burst),
    maxOutputBytes: a.max_output_bytes,
    audit: new CollectorAudit(batcher, a.audit_tenant || config.collector.default_tenant),
    metrics: actionMetrics(runtime.registry),
    log,
  });
  let stopHeartbeat = () => {};
  return {
    route: (app) => endpoint.route(app),
    start: (listenUrl) => {
      const h = a.heartbeat;
      if (h.url === "" || h.key === undefined) return;
      stopHeartbeat = startHeartbeat({
        url: h.url,
        intervalMs: h.interval_ms,
        node: config.node.id,
        incarnation,
        advertiseUrl: h.advertise_url || listenUrl,
        key: signingKey(h.key),
        authToken: h.auth_token,
        tls: loadClientTls(h.tls),
        log,
      });
    },
    stop: () => {
      stopHeartbeat();
      nonces.close();
    },
  };
}
