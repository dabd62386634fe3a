import { readFileSync } from "node:fs";
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from "node:https";
import type { AddressInfo } from "node:net";
import { TLSSocket } from "node:tls";
import { serve, type ServerType } from "@hono/node-server";
import { type Context, Hono } from "hono";
import type { Registry } from "prom-client";
import type { ServerTls } from "./config-sections.js";
import type { Logger } from "./log.js";
import { exposition } from "./metrics.js";

/** Returns null when its part is ready, otherwise why it is not. */
export type ReadinessCheck = () => Promise<string | null> | string | null;

export interface ListeningAddress {
  host: string;
  port: number;
  url: string;
}

/**
 * One HTTP listener with the endpoints every Bifrost process has: `/ready` (200 "ready", or 503 with the
 * reasons, as Loki answers; notes follow either) and `/metrics` (Prometheus text exposition). Components add their routes to `app`.
 */
export class HttpService {
  readonly app = new Hono();
  private readonly checks = new Map<string, ReadinessCheck>();
  private readonly notes = new Map<string, ReadinessCheck>();
  private server: ServerType | undefined;

  constructor(
    readonly name: string,
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {
    this.app.get("/ready", async (c) => {
      const [reasons, notes] = await Promise.all([this.notReady(this.checks), this.notReady(this.notes)]);
      const noted = notes.map((note) => `${note}\n`).join("");
      if (reasons.length === 0) return c.text(`ready\n${noted}`);
      return c.text(`not ready:\n${reasons.join("\n")}\n${noted}`, 503);
    });
    this.app.get("/metrics", async (c) => {
      const { body, contentType } = await exposition(this.registry);
      return c.body(body, 200, { "Content-Type": contentType });
    });
    this.app.onError((err, c) => {
      this.log.error({ err, path: c.req.path, method: c.req.method }, "request failed");
      return c.json({ status: "error", errorType: "internal", error: "internal error" }, 500);
    });
  }

  addReadiness(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /**
   * A condition /ready reports without answering 503 for it: one the component rides out by itself, where
   * being taken out of service would make things worse (a collector buffering to disk while Kafka is away).
   */
  addNote(name: string, check: ReadinessCheck): void {
    this.notes.set(name, check);
  }

  private async notReady(checks: Map<string, ReadinessCheck>): Promise<string[]> {
    const results = await Promise.all(
      [...checks].map(async ([name, check]) => {
        try {
          const reason = await check();
          return reason === null ? null : `${name}: ${reason}`;
        } catch (err) {
          return `${name}: ${(err as Error).message}`;
        }
      }),
    );
    return results.filter((r): r is string => r !== null);
  }

  /**
   * Listens on `address` (host:port; port 0 picks a free one) and resolves once the socket is bound; with `tls`
   * enabled it serves HTTPS, and with a client CA it asks for (or requires) client certificates. With
   * `websockets` it also accepts WebSocket upgrades (Loki's tail, OpAMP), messages up to `maxPayload` bytes (the
   * WebSocket library's default without it); a listener without routes for them (the collector's, the
   * aggregator's) neither loads the WebSocket library nor answers upgrades.
   */
  async listen(
    address: string,
    tls?: ServerTls,
    websockets: boolean | { maxPayload: number } = false,
  ): Promise<ListeningAddress> {
    const split = address.lastIndexOf(":");
    const hostname = address.slice(0, split).replace(/^\[(.*)\]$/, "$1");
    const port = Number(address.slice(split + 1));
    const secure = tls?.enabled === true;
    // A WebSocket server without its own listener: upgrades arrive through this HTTP server.
    const websocket = websockets
      ? {
          server: new (await import("ws")).WebSocketServer({
            noServer: true,
            ...(typeof websockets === "object" ? { maxPayload: websockets.maxPayload } : {}),
          }),
        }
      : undefined;
    return new Promise((resolve, reject) => {
      const options = secure
        ? {
            fetch: this.app.fetch,
            hostname,
            port,
            websocket,
            createServer: createHttpsServer,
            serverOptions: httpsOptions(tls),
          }
        : { fetch: this.app.fetch, hostname, port, websocket };
      const server = serve(options, (info: AddressInfo) => {
        const host = info.family === "IPv6" ? `[${info.address}]` : info.address;
        const bound = {
          host: info.address,
          port: info.port,
          url: `${secure ? "https" : "http"}://${host}:${info.port}`,
        };
        this.log.info({ listen: bound.url }, "listening");
        resolve(bound);
      });
      server.once("error", reject);
      this.server = server;
    });
  }

  /**
   * Stops listening and resolves once every connection has ended. Requests in progress are answered; a kept-alive
   * connection is closed as soon as it is idle, for a client that sends without pause (a busy Promtail) would
   * otherwise keep it, and the listener, open for as long as it sends.
   */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const idle = server as { closeIdleConnections?: () => void };
    const sweep = setInterval(() => idle.closeIdleConnections?.(), 50);
    try {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        idle.closeIdleConnections?.();
      });
    } finally {
      clearInterval(sweep);
    }
  }
}

export function httpsOptions(tls: ServerTls): HttpsServerOptions {
  if (tls.cert_file === undefined || tls.key_file === undefined)
    throw new Error("a TLS listener needs cert_file and key_file");
  const options: HttpsServerOptions = { cert: readFileSync(tls.cert_file), key: readFileSync(tls.key_file) };
  if (tls.client_ca_file !== undefined) {
    options.ca = readFileSync(tls.client_ca_file);
    options.requestCert = true;
    options.rejectUnauthorized = tls.client_auth === "require";
  }
  return options;
}

/** A verified client certificate: its subject common name and its URI SANs. */
export type ClientIdentity = { commonName: string; uris: string[] };

/**
 * The verified client certificate of a request over mutual TLS: its subject common name and its URI SANs
 * (SPIFFE ids such as spiffe://fleet/node/store-042-gw1); undefined without a verified certificate.
 */
export function clientIdentity(c: Context): ClientIdentity | undefined {
  const socket = (c.env as { incoming?: { socket?: unknown } } | undefined)?.incoming?.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const certificate = socket.getPeerCertificate();
  if (certificate === null || Object.keys(certificate).length === 0) return undefined;
  const uris = (certificate.subjectaltname ?? "")
    .split(/,\s*/)
    .filter((name) => name.startsWith("URI:"))
    .map((name) => name.slice(4));
  const commonName = certificate.subject?.CN;
  return { commonName: Array.isArray(commonName) ? (commonName[0] ?? "") : (commonName ?? ""), uris };
}

/**
 * Whether a client certificate is that of `node`: its common name is the node id, or a URI SAN's last path
 * segment is (spiffe://fleet/node/<id>).
 */
export function certifiesNode(identity: ClientIdentity, node: string): boolean {
  return identity.commonName === node || identity.uris.some((uri) => uri.split("/").pop() === node);
}
