import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import { WebSocketServer } from "ws";
import type { Registry } from "prom-client";
import { Authenticator } from "./auth.js";
import type { Logger } from "./log.js";
import type { Runtime, Running } from "./runtime.js";
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
 * reasons, as Loki answers) and `/metrics` (Prometheus text exposition). Components add their routes to `app`.
 */
export class HttpService {
  readonly app = new Hono();
  private readonly checks = new Map<string, ReadinessCheck>();
  private server: ServerType | undefined;

  constructor(
    readonly name: string,
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {
    this.app.get("/ready", async (c) => {
      const reasons = await this.notReady();
      if (reasons.length === 0) return c.text("ready\n");
      return c.text(`not ready:\n${reasons.join("\n")}\n`, 503);
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

  private async notReady(): Promise<string[]> {
    const results = await Promise.all(
      [...this.checks].map(async ([name, check]) => {
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

  /** Listens on `address` (host:port; port 0 picks a free one) and resolves once the socket is bound. */
  listen(address: string): Promise<ListeningAddress> {
    const split = address.lastIndexOf(":");
    const hostname = address.slice(0, split).replace(/^\[(.*)\]$/, "$1");
    const port = Number(address.slice(split + 1));
    return new Promise((resolve, reject) => {
      // A WebSocket server without its own listener: upgrades arrive through this HTTP server (Loki's tail).
      const websocket = { server: new WebSocketServer({ noServer: true }) };
      const server = serve({ fetch: this.app.fetch, hostname, port, websocket }, (info: AddressInfo) => {
        const host = info.family === "IPv6" ? `[${info.address}]` : info.address;
        const bound = { host: info.address, port: info.port, url: `http://${host}:${info.port}` };
        this.log.info({ listen: bound.url }, "listening");
        resolve(bound);
      });
      server.once("error", reject);
      this.server = server;
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Starts a component whose process is one HTTP listener; `setup` adds its routes and readiness checks. */
export async function startHttpComponent(
  runtime: Runtime,
  role: string,
  listen: string,
  setup: (http: HttpService, log: Logger) => void = () => {},
  /** Tenant of requests without X-Scope-OrgID while auth is off. */
  defaultTenant = "fake",
): Promise<Running> {
  const log = runtime.log.child({ component: role });
  const http = new HttpService(role, runtime.registry, log);
  http.app.use(new Authenticator(runtime.config.auth, defaultTenant).middleware());
  if (runtime.store) http.addReadiness("store", runtime.storeReadiness);
  setup(http, log);
  const address = await http.listen(listen);
  return { role, address, stop: () => http.close() };
}
