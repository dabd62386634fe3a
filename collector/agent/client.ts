import type WebSocket from "ws";
import { backoffDelay } from "../../common/backoff.js";
import { type ClientTls, post, retryAfterMs } from "../../common/http-client.js";
import type { Logger } from "../../common/log.js";
import {
  type AgentConfigMap,
  type AgentDescription,
  type AgentToServer,
  type ComponentHealth,
  decodeServerToAgent,
  encodeAgentToServer,
  OPAMP_CONTENT_TYPE,
  type RemoteConfigReport,
  ServerErrorType,
  type ServerToAgent,
  ServerToAgentFlags,
  wsFrame,
  wsPayload,
} from "../../proto/opamp.js";

// The collector's OpAMP client. It only ever connects out (an edge node behind NAT needs no inbound port):
// over WebSocket (ws:// or wss://), where the server can push a configuration at once, or over plain HTTP
// (http:// or https://), polling every heartbeat interval. It keeps one up-to-date status and sends what changed
// since the server last had it (OpAMP's status compression), everything after a (re)connection or when the
// server asks with ReportFullState; every message carries the next sequence number. Lost connections are retried
// with exponential backoff and jitter, or after the server's Retry-After.

export interface RemoteConfigOffer {
  config: AgentConfigMap;
  configHash: Uint8Array;
}

export interface OpampClientOptions {
  url: string;
  authToken: string;
  tls: ClientTls;
  instanceUid: Uint8Array;
  capabilities: number;
  heartbeatMs: number;
  maxMessageBytes: number;
  reconnectMaxMs: number;
  log: Logger;
  onRemoteConfig(offer: RemoteConfigOffer): void;
  onInstanceUid(uid: Uint8Array): void;
  onConnected?(connected: boolean): void;
}

interface Status {
  agentDescription?: AgentDescription;
  health?: ComponentHealth;
  effectiveConfig?: AgentConfigMap;
  remoteConfigStatus?: RemoteConfigReport;
}

type Part = keyof Status;
const PARTS: Part[] = ["agentDescription", "health", "effectiveConfig", "remoteConfigStatus"];

export class OpampClient {
  private readonly status: Status = {};
  /** Parts changed since the server last received them. */
  private readonly unsent = new Set<Part>(PARTS);
  private sequence = 0;
  private instanceUid: Uint8Array;
  private socket: WebSocket | undefined;
  private stopped = false;
  private attempt = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private sendQueued = false;
  private polling: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly websocket: boolean;

  constructor(private readonly options: OpampClientOptions) {
    this.instanceUid = options.instanceUid;
    this.websocket = /^wss?:/.test(options.url);
  }

  /** Sets a part of the status; it is sent soon if it changed. */
  set<P extends Part>(part: P, value: NonNullable<Status[P]>): void {
    if (JSON.stringify(this.status[part], bigintJson) === JSON.stringify(value, bigintJson)) return;
    this.status[part] = value;
    this.unsent.add(part);
    this.soon();
  }

  start(): void {
    if (this.websocket) void this.connect();
    else this.polling = this.poll();
  }

  /** Says goodbye (agent_disconnect) when connected, and closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.heartbeat);
    clearTimeout(this.retry);
    this.wake?.();
    const goodbye = this.message(false);
    goodbye.agentDisconnect = true;
    if (this.websocket) {
      const socket = this.socket;
      if (socket?.readyState === 1) {
        socket.send(wsFrame(encodeAgentToServer(goodbye)));
        await new Promise<void>((resolve) => {
          socket.once("close", () => resolve());
          socket.close(1000);
          setTimeout(resolve, 2000).unref();
        });
      } else socket?.terminate();
    } else {
      await this.polling;
      await this.exchange(goodbye).catch(() => undefined);
    }
  }

  private message(full: boolean): AgentToServer {
    const message: AgentToServer = {
      instanceUid: this.instanceUid,
      sequenceNum: ++this.sequence,
      capabilities: this.options.capabilities,
    };
    for (const part of PARTS) {
      if (!full && !this.unsent.has(part)) continue;
      const value = this.status[part];
      if (value !== undefined) (message as unknown as Record<string, unknown>)[part] = value;
    }
    this.unsent.clear();
    return message;
  }

  private soon(): void {
    if (this.sendQueued || this.stopped) return;
    this.sendQueued = true;
    setImmediate(() => {
      this.sendQueued = false;
      if (this.websocket) this.sendWs(false);
      else this.wake?.();
    });
  }

  private backoff(): number {
    return backoffDelay(++this.attempt, 1000, this.options.reconnectMaxMs, "full");
  }

  // WebSocket transport.

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const { default: WS } = await import("ws");
    const headers: Record<string, string> = {};
    if (this.options.authToken !== "") headers["Authorization"] = `Bearer ${this.options.authToken}`;
    const socket = new WS(this.options.url, {
      headers,
      maxPayload: this.options.maxMessageBytes,
      handshakeTimeout: 30_000,
      ...this.options.tls,
    });
    this.socket = socket;
    let retryAfter: number | undefined;
    socket.on("unexpected-response", (_req, res) => {
      retryAfter = retryAfterMs(res.headers["retry-after"] as string | undefined);
      this.options.log.warn(
        { url: this.options.url, status: res.statusCode },
        "the OpAMP server refused the connection",
      );
      socket.terminate();
    });
    socket.on("open", () => {
      this.attempt = 0;
      this.options.log.info({ url: this.options.url }, "connected to the OpAMP server");
      this.options.onConnected?.(true);
      this.sendWs(true);
    });
    socket.on("message", (data: Buffer, binary: boolean) => {
      if (!binary) return;
      let message: ServerToAgent;
      try {
        message = decodeServerToAgent(wsPayload(data));
      } catch (err) {
        this.options.log.warn({ err }, "a malformed OpAMP message from the server; ignored");
        return;
      }
      if (message.errorResponse?.type === ServerErrorType.Unavailable) {
        const ns = message.errorResponse.retryAfterNs;
        retryAfter = ns === undefined ? undefined : Number(ns / 1_000_000n);
        socket.close(1000);
        return;
      }
      this.receive(message);
    });
    socket.on("error", (err) => this.options.log.debug({ err }, "OpAMP connection error"));
    socket.on("close", () => {
      clearTimeout(this.heartbeat);
      if (this.socket === socket) this.socket = undefined;
      this.options.onConnected?.(false);
      if (this.stopped) return;
      // Everything goes again on the next connection.
      for (const part of PARTS) this.unsent.add(part);
      const delay = retryAfter ?? this.backoff();
      this.options.log.info(
        { url: this.options.url, retry_in_ms: Math.round(delay) },
        "OpAMP connection closed; reconnecting",
      );
      this.retry = setTimeout(() => void this.connect(), delay);
    });
  }

  private sendWs(full: boolean): void {
    const socket = this.socket;
    if (socket?.readyState !== 1) return;
    const bytes = encodeAgentToServer(this.message(full));
    if (bytes.length + 1 > this.options.maxMessageBytes) {
      this.options.log.error({ bytes: bytes.length }, "an OpAMP status message is over the size limit; not sent");
      return;
    }
    socket.send(wsFrame(bytes));
    clearTimeout(this.heartbeat);
    this.heartbeat = setTimeout(() => this.sendWs(false), this.options.heartbeatMs);
  }

  // Plain HTTP transport: one request at a time, a poll every heartbeat interval or as soon as something changed.

  private async exchange(message: AgentToServer): Promise<ServerToAgent> {
    const headers: Record<string, string> = {
      "Content-Type": OPAMP_CONTENT_TYPE,
      "OpAMP-Instance-UID": Buffer.from(this.instanceUid)
        .toString("hex")
        .replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-"),
    };
    if (this.options.authToken !== "") headers["Authorization"] = `Bearer ${this.options.authToken}`;
    const answer = await post(this.options.url, encodeAgentToServer(message), {
      headers,
      timeoutMs: 30_000,
      tls: this.options.tls,
      maxResponseBytes: this.options.maxMessageBytes,
    });
    if (answer.status === 429 || answer.status === 503) throw new RetryLater(retryAfterMs(answer.retryAfter));
    if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.text.slice(0, 200)}`);
    return decodeServerToAgent(answer.body);
  }

  private async poll(): Promise<void> {
    let full = true;
    while (!this.stopped) {
      let delay = this.options.heartbeatMs;
      const message = this.message(full);
      try {
        const answer = await this.exchange(message);
        if (this.attempt > 0 || full) this.options.onConnected?.(true);
        this.attempt = 0;
        full = false;
        if (answer.errorResponse?.type === ServerErrorType.Unavailable) {
          const ns = answer.errorResponse.retryAfterNs;
          throw new RetryLater(ns === undefined ? undefined : Number(ns / 1_000_000n));
        }
        this.receive(answer);
        if (this.unsent.size > 0 || ((answer.flags ?? 0) & ServerToAgentFlags.ReportFullState) !== 0) delay = 0;
      } catch (err) {
        if (this.attempt === 0) this.options.log.warn({ err, url: this.options.url }, "OpAMP request failed; retrying");
        this.options.onConnected?.(false);
        full = true;
        delay = err instanceof RetryLater && err.afterMs !== undefined ? err.afterMs : this.backoff();
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private receive(message: ServerToAgent): void {
    if (message.agentIdentification && message.agentIdentification.newInstanceUid.length === 16) {
      this.instanceUid = message.agentIdentification.newInstanceUid;
      this.options.onInstanceUid(this.instanceUid);
    }
    if (message.errorResponse) {
      this.options.log.warn({ error: message.errorResponse.message }, "the OpAMP server refused a message");
      return;
    }
    if (((message.flags ?? 0) & ServerToAgentFlags.ReportFullState) !== 0) {
      for (const part of PARTS) this.unsent.add(part);
      this.soon();
    }
    if (message.remoteConfig) this.options.onRemoteConfig(message.remoteConfig);
  }
}

class RetryLater extends Error {
  constructor(readonly afterMs: number | undefined) {
    super("the OpAMP server asked to retry later");
  }
}

function bigintJson(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
