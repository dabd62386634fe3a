import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { certifiesNode, type ClientIdentity, clientIdentity } from "../../common/service.js";
import { type Heartbeat, heartbeatSigningText, type KeyRing } from "../../common/signing.js";
import { INCARNATION } from "../../proto/batch.js";
import type { NodeIdConflicts } from "./node-conflicts.js";

export interface DirectoryOptions {
  /** query.actions.collectors: node id -> URL, for nodes that send no heartbeats. */
  collectors: Record<string, string>;
  /** A heartbeat older than this no longer counts. */
  ttlMs: number;
  keys: KeyRing;
  maxSkewMs: number;
  /** Told of every authentic heartbeat that names its collector's incarnation. */
  conflicts?: Pick<NodeIdConflicts, "observe">;
}

/**
 * Where each node's collector is: from its latest signed heartbeat while that is fresh (a node that moved
 * tells us so), otherwise from the configuration.
 */
export class CollectorDirectory {
  private readonly beats = new Map<string, { url: string; ts: number; seenAt: number }>();

  constructor(private readonly options: DirectoryOptions) {}

  urlOf(node: string, now = Date.now()): string | undefined {
    const beat = this.beats.get(node);
    if (beat !== undefined && now - beat.seenAt <= this.options.ttlMs) return beat.url;
    return Object.hasOwn(this.options.collectors, node) ? this.options.collectors[node] : undefined;
  }

  /**
   * Records a heartbeat; the HTTP status and, when refused, why. Over mutual TLS the client certificate must
   * be the node's own, so that a node holding a shared heartbeat key still cannot redirect another node.
   */
  accept(
    text: string,
    now = Date.now(),
    identity?: ClientIdentity,
  ): { status: 204 | 400 | 401 | 403 | 409; error?: string } {
    let body: Partial<Heartbeat>;
    try {
      body = JSON.parse(text) as Partial<Heartbeat>;
    } catch {
      return { status: 400, error: "the body is not JSON" };
    }
    const { node, url, ts, key_id, incarnation, signature } = body ?? {};
    if (typeof node !== "string" || node === "" || node.length > 256)
      return { status: 400, error: "node must be a string" };
    if (typeof url !== "string" || !/^https?:\/\/[^\s]+$/.test(url) || !URL.canParse(url))
      return { status: 400, error: "url must be an http(s) URL" };
    if (typeof ts !== "number" || !Number.isSafeInteger(ts))
      return { status: 400, error: "ts must be Unix milliseconds" };
    if (typeof key_id !== "string" || typeof signature !== "string")
      return { status: 400, error: "key_id and signature must be strings" };
    if (incarnation !== undefined && (typeof incarnation !== "string" || !INCARNATION.test(incarnation)))
      return { status: 400, error: "incarnation must be 1 to 64 letters, digits, - and _" };
    const check = this.options.keys.check(
      key_id,
      heartbeatSigningText({ node, url, ts, key_id, ...(incarnation === undefined ? {} : { incarnation }) }),
      signature,
    );
    if (check !== null) return { status: 401, error: check };
    if (Math.abs(now - ts) > this.options.maxSkewMs) return { status: 401, error: "stale or future timestamp" };
    if (identity !== undefined && !certifiesNode(identity, node))
      return { status: 403, error: `the client certificate is not node ${node}'s` };
    // Before the ordering below: another collector with this node id and a clock behind is refused the URL, but
    // it is still there.
    if (incarnation !== undefined) this.options.conflicts?.observe(node, incarnation, ts, url, now);
    // An older heartbeat replayed within the skew window must not bring back a URL the node has left.
    const known = this.beats.get(node);
    if (known !== undefined && ts < known.ts) return { status: 409, error: "older than the last heartbeat" };
    this.beats.set(node, { url, ts, seenAt: now });
    return { status: 204 };
  }

  route(app: Hono): void {
    app.post(
      "/bifrost/v1/heartbeat",
      bodyLimit({ maxSize: 4096, onError: (c) => c.text("heartbeat too large\n", 413) }),
      async (c) => {
        const result = this.accept(await c.req.text(), Date.now(), clientIdentity(c));
        return result.status === 204 ? c.body(null, 204) : c.text(`${result.error}\n`, result.status);
      },
    );
  }
}
