import { type ClientTls, postJson } from "../../common/http-client.js";
import type { Logger } from "../../common/log.js";
import { heartbeatSigningText, type SigningKey } from "../../common/signing.js";

export interface HeartbeatOptions {
  /** The query service's POST /bifrost/v1/heartbeat. */
  url: string;
  intervalMs: number;
  node: string;
  /** The disk buffer's incarnation, which tells the query service this collector from another with its node id. */
  incarnation: string;
  /** This collector's base URL as the query service reaches it. */
  advertiseUrl: string;
  key: SigningKey;
  /** Bearer token, for a query service with auth enabled. */
  authToken: string;
  /** CA and client certificate for a query service behind (mutual) TLS. */
  tls?: ClientTls;
  log: Logger;
}

/**
 * Tells the query service, now and every interval, where this node's action endpoint is. Signed, so that no
 * one else can redirect a node's actions; a failed heartbeat is logged once until one succeeds again.
 */
export function startHeartbeat(options: HeartbeatOptions): () => void {
  let failing = false;
  const beat = async () => {
    const unsigned = {
      node: options.node,
      url: options.advertiseUrl,
      ts: Date.now(),
      key_id: options.key.id,
      incarnation: options.incarnation,
    };
    const body = JSON.stringify({ ...unsigned, signature: options.key.sign(heartbeatSigningText(unsigned)) });
    const headers: Record<string, string> = {};
    if (options.authToken !== "") headers["Authorization"] = `Bearer ${options.authToken}`;
    try {
      const response = await postJson(options.url, body, {
        headers,
        timeoutMs: Math.min(10_000, options.intervalMs),
        ...(options.tls ? { tls: options.tls } : {}),
      });
      if (response.status >= 300) throw new Error(`HTTP ${response.status}: ${response.text.slice(0, 200)}`);
      if (failing) options.log.info({ url: options.url }, "heartbeats reach the query service again");
      failing = false;
    } catch (err) {
      if (!failing) options.log.warn({ err, url: options.url }, "heartbeat failed");
      failing = true;
    }
  };
  void beat();
  const timer = setInterval(() => void beat(), options.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
