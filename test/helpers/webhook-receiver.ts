import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: unknown;
  at: number;
}

/** A local HTTP receiver that records every request and answers with what `respond` says (200 by default). */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  respond: (request: ReceivedRequest, index: number) => { status: number; headers?: Record<string, string> } = () => ({
    status: 200,
  });
  private server: Server | undefined;
  url = "";

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const request = { path: req.url ?? "", headers: req.headers, body, json, at: Date.now() };
        this.requests.push(request);
        const { status, headers } = this.respond(request, this.requests.length - 1);
        res.writeHead(status, headers).end(status < 300 ? "" : `status ${status}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export { waitFor } from "./wait.js";

/** The fields of Alertmanager's webhook message (version 4) in the order Alertmanager writes them. */
export const WEBHOOK_MESSAGE_FIELDS = [
  "receiver",
  "status",
  "alerts",
  "groupLabels",
  "commonLabels",
  "commonAnnotations",
  "externalURL",
  "version",
  "groupKey",
  "truncatedAlerts",
];
export const WEBHOOK_ALERT_FIELDS = [
  "status",
  "labels",
  "annotations",
  "startsAt",
  "endsAt",
  "generatorURL",
  "fingerprint",
];
