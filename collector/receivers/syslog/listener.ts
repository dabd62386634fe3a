import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer as createTcpServer, isIPv6, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { Counter, type Registry } from "prom-client";
import type { TenantLimits } from "../../../common/limits.js";
import type { Logger } from "../../../common/log.js";
import { httpsOptions } from "../../../common/service.js";
import { labelsOf } from "../../../proto/labels.js";
import type { BatchLimits } from "../../../proto/validate.js";
import type { Batcher } from "../../buffer/batcher.js";
import { WalFullError } from "../../buffer/wal.js";
import { type IntakeLimits, OrderedIntake, screen, type Screened, StreamGroups } from "../intake.js";
import type { TenantRateLimiter } from "../../../common/rate-limit.js";
import type { SyslogListenerConfig } from "./config.js";
import { FrameDecoder, FramingError } from "./framing.js";
import { syslogEntry, type SyslogEntrySettings } from "./message.js";
import { type SyslogMetrics, syslogMetrics, udpKernelDrops } from "./metrics.js";

// Syslog listeners: UDP (one message per datagram, RFC 5426), TCP (RFC 6587 framing) and TLS (RFC 5425).
//
// Syslog has no acknowledgement: a sender counts a message sent once its kernel took it. What the collector can
// do is stop reading. A TCP or TLS connection is read only while what it sent before is on its way into the
// disk buffer (at most `maxPendingBytes` not yet written); while the buffer is full under policy `block`, or
// the tenant is over its rate, the connection is not read at all, so the sender's socket buffer fills and the
// sender waits (rsyslog keeps the messages in its action queue) instead of anything being dropped. What was read
// is retried every second until the buffer takes it, also after the sender has gone.
//
// UDP cannot wait: a datagram that arrives while the buffer is full or the tenant is over its rate is dropped
// and counted, and datagrams the kernel dropped because the socket's receive buffer was full are read from
// /proc/net/udp and counted too. Loss in the network is not detectable.

export interface SyslogOptions {
  listeners: SyslogListenerConfig[];
  defaultTenant: string;
  batcher: Pick<Batcher, "add" | "flush">;
  /** A listener's own batcher (with its processing pipeline) instead of `batcher`. */
  batcherFor?: (listener: SyslogListenerConfig, index: number) => Pick<Batcher, "add" | "flush">;
  limits: BatchLimits;
  tenantLimits?: TenantLimits | undefined;
  contract?: IntakeLimits["contract"];
  rate?: TenantRateLimiter | undefined;
  /** Bytes a connection may have read that are not yet in the disk buffer before it is no longer read. */
  maxPendingBytes: number;
  registry: Registry;
  log?: Logger | undefined;
  onAccepted?: (tenant: string, entries: number) => void;
}

export interface SyslogListening {
  /** Where each listener listens, in the order configured (port 0 resolved). */
  addresses: { protocol: "udp" | "tcp" | "tls"; host: string; port: number }[];
  stop(): Promise<void>;
}

/** How long a stop waits for messages read but not yet in the disk buffer. */
const STOP_WAIT_MS = 5000;

/** One listener's settings and shared state. */
class Listener {
  readonly tenant: string;
  readonly settings: SyslogEntrySettings;
  readonly protocol: "udp" | "tcp" | "tls";
  readonly batcher: Pick<Batcher, "add" | "flush">;
  private lastNs = 0n;
  private warnedAt = 0;

  constructor(
    readonly config: SyslogListenerConfig,
    readonly options: SyslogOptions,
    readonly metrics: SyslogMetrics,
    index: number,
  ) {
    this.tenant = config.tenant ?? options.defaultTenant;
    this.batcher = options.batcherFor?.(config, index) ?? options.batcher;
    this.protocol = config.protocol === "udp" ? "udp" : config.tls.enabled ? "tls" : "tcp";
    this.settings = {
      format: config.format,
      timestamp: config.timestamp,
      line: config.line,
      labels: labelsOf(Object.entries(config.labels)),
      messageLabels: new Set(config.message_labels),
    };
  }

  /** Receive time in nanoseconds, strictly increasing so that messages read in one millisecond keep their order. */
  private received(): bigint {
    const ns = BigInt(Date.now()) * 1_000_000n;
    this.lastNs = ns > this.lastNs ? ns : this.lastNs + 1n;
    return this.lastNs;
  }

  /** The messages of some frames as streams, screened against the tenant's limits, refusals counted. */
  entries(frames: { bytes: Buffer; truncated: boolean }[]): Screened & { bytes: number } {
    const groups = new StreamGroups();
    for (const frame of frames) {
      if (frame.truncated) this.metrics.truncated.inc({ protocol: this.protocol });
      // Senders end messages with a newline or NUL even where the frame does not need one (rsyslog's RFC 5424
      // template does, octet-counted or not); like rsyslog's parser, the collector drops them.
      const bytes = frame.bytes;
      let end = bytes.length;
      while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d || bytes[end - 1] === 0)) end--;
      const { labels, entry } = syslogEntry(bytes.toString("utf8", 0, end), this.received(), this.settings);
      groups.add(labels, entry);
    }
    const screened = screen(this.tenant, groups.list(), this.options);
    for (const [reason, { count, message }] of screened.refused) {
      this.metrics.rejected.inc({ protocol: this.protocol, reason }, count);
      this.warn({ reason, err: message }, "syslog messages over a limit were refused");
    }
    return { ...screened, bytes: groups.bytes };
  }

  /** Logs at most once a minute per listener: a flood of bad messages must not become a flood of log lines. */
  warn(fields: object, message: string): void {
    if (Date.now() - this.warnedAt < 60_000) return;
    this.warnedAt = Date.now();
    this.options.log?.warn({ listen: this.config.listen, protocol: this.protocol, ...fields }, message);
  }

  accepted(entries: number): void {
    this.metrics.accepted.inc({ protocol: this.protocol }, entries);
    this.options.onAccepted?.(this.tenant, entries);
  }
}

/** One TCP or TLS connection: frames in, streams to the batcher, reading paused while they cannot go on. */
class Session {
  private readonly decoder: FrameDecoder;
  private readonly intake: OrderedIntake;

  constructor(
    private readonly socket: Socket,
    private readonly listener: Listener,
    /** Called once the connection is closed and what it sent is in the disk buffer. */
    onDone: () => void,
  ) {
    this.decoder = new FrameDecoder(listener.config.max_message_bytes);
    this.intake = new OrderedIntake({
      tenant: listener.tenant,
      batcher: listener.batcher,
      rate: listener.options.rate,
      maxPendingBytes: listener.options.maxPendingBytes,
      hold: (hold) => {
        if (hold) socket.pause();
        else socket.resume();
        if (!hold && socket.destroyed && this.intake.idle) onDone();
      },
      onWaiting: (waiting) => listener.metrics.paused.inc(waiting ? 1 : -1),
      onAccepted: (group) => {
        listener.accepted(group.entries);
        if (socket.destroyed && this.intake.idle) onDone();
      },
      log: listener.options.log,
    });
    socket.on("data", (chunk: Buffer) => this.read(chunk));
    socket.on("end", () => {
      const last = this.decoder.end();
      if (last) this.intake.push({ ...this.listener.entries([last]), mark: undefined });
    });
  }

  get idle(): boolean {
    return this.intake.idle;
  }

  private read(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      if (!(err instanceof FramingError)) throw err;
      const { protocol } = this.listener;
      this.listener.metrics.closed.inc({ protocol, reason: "bad_framing" });
      this.listener.warn(
        { err: err.message, peer: this.socket.remoteAddress },
        "closed a syslog connection whose framing broke",
      );
      this.socket.destroy();
      return;
    }
    if (frames.length > 0) this.intake.push({ ...this.listener.entries(frames), mark: undefined });
  }

  /** Stops reading and waits, up to `ms`, until what was read is in the disk buffer; the count left over. */
  async drain(ms: number): Promise<number> {
    this.socket.pause();
    await this.intake.drain(ms);
    this.socket.destroy();
    return this.intake.pendingEntries;
  }
}

function splitAddress(address: string): { host: string; port: number } {
  const split = address.lastIndexOf(":");
  return { host: address.slice(0, split).replace(/^\[(.*)\]$/, "$1"), port: Number(address.slice(split + 1)) };
}

async function listenStream(listener: Listener, sessions: Set<Session>): Promise<{ server: Server; port: number }> {
  const { config, metrics, protocol } = listener;
  const onConnection = (socket: Socket) => {
    metrics.connections.inc({ protocol });
    const session = new Session(socket, listener, () => sessions.delete(session));
    sessions.add(session);
    socket.on("error", () => {});
    if (config.idle_timeout_ms > 0)
      socket.setTimeout(config.idle_timeout_ms, () => {
        metrics.closed.inc({ protocol, reason: "idle_timeout" });
        socket.end();
      });
    socket.once("close", () => {
      metrics.connections.dec({ protocol });
      // A session whose messages still wait for the disk buffer stays until they are in it.
      if (session.idle) sessions.delete(session);
    });
  };
  const server = config.tls.enabled
    ? createTlsServer(httpsOptions(config.tls), onConnection)
    : createTcpServer(onConnection);
  server.maxConnections = config.max_connections;
  server.on("drop", () => metrics.closed.inc({ protocol, reason: "too_many_connections" }));
  server.on("tlsClientError", (err: Error) => {
    metrics.closed.inc({ protocol, reason: "tls_handshake" });
    listener.warn({ err: err.message }, "a syslog TLS handshake failed");
  });
  const { host, port } = splitAddress(config.listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return { server, port: (server.address() as { port: number }).port };
}

async function listenUdp(listener: Listener): Promise<{ socket: UdpSocket; port: number }> {
  const { config, options, tenant } = listener;
  const { host, port } = splitAddress(config.listen);
  const socket = createSocket({
    type: isIPv6(host) ? "udp6" : "udp4",
    ...(config.receive_buffer_bytes > 0 ? { recvBufferSize: config.receive_buffer_bytes } : {}),
  });
  const reject = (reason: string, count: number) => listener.metrics.rejected.inc({ protocol: "udp", reason }, count);
  socket.on("message", (datagram: Buffer) => {
    // A datagram is one message (RFC 5426).
    const truncated = datagram.length > config.max_message_bytes;
    const group = listener.entries([{ bytes: datagram.subarray(0, config.max_message_bytes), truncated }]);
    if (group.entries === 0) return;
    if ((options.rate?.take(tenant, group.entries) ?? 0) > 0) return reject("rate_limited", group.entries);
    listener.batcher.add(tenant, { streams: group.streams }).then(
      () => listener.accepted(group.entries),
      (err: unknown) => {
        reject(err instanceof WalFullError ? "buffer_full" : "internal", group.entries);
        if (!(err instanceof WalFullError))
          options.log?.error({ err, listen: config.listen }, "the batcher refused syslog messages");
      },
    );
  });
  socket.on("error", (err) => options.log?.error({ err, listen: config.listen }, "syslog UDP socket error"));
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, host, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  return { socket, port: socket.address().port };
}

export async function startSyslog(options: SyslogOptions): Promise<SyslogListening> {
  const metrics = syslogMetrics(options.registry);
  const sessions = new Set<Session>();
  const servers: Server[] = [];
  const udpSockets: UdpSocket[] = [];
  const udpPorts: number[] = [];
  const addresses: SyslogListening["addresses"] = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    for (const socket of udpSockets) socket.close();
    options.batcher.flush();
    const lost = (await Promise.all([...sessions].map((session) => session.drain(STOP_WAIT_MS)))).reduce(
      (a, b) => a + b,
      0,
    );
    if (lost > 0)
      options.log?.error({ messages: lost }, "stopped with syslog messages the full disk buffer did not take");
    sessions.clear();
  };
  try {
    for (const [index, config] of options.listeners.entries()) {
      const listener = new Listener(config, options, metrics, index);
      const { host } = splitAddress(config.listen);
      if (config.protocol === "udp") {
        const { socket, port } = await listenUdp(listener);
        udpSockets.push(socket);
        udpPorts.push(port);
        addresses.push({ protocol: "udp", host, port });
      } else {
        const { server, port } = await listenStream(listener, sessions);
        servers.push(server);
        addresses.push({ protocol: listener.protocol, host, port });
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  if (udpPorts.length > 0) {
    let counted = udpPorts.map((port) => udpKernelDrops(port) ?? 0);
    new Counter({
      name: "bifrost_collector_syslog_udp_receive_buffer_drops_total",
      help: "Syslog datagrams the kernel dropped because a UDP listener's receive buffer was full (from /proc/net/udp); raise receive_buffer_bytes.",
      registers: [options.registry],
      collect() {
        const now = udpPorts.map((port) => udpKernelDrops(port) ?? 0);
        const delta = now.reduce((n, drops, i) => n + Math.max(0, drops - counted[i]!), 0);
        counted = now;
        if (delta > 0) this.inc(delta);
      },
    });
  }
  for (const address of addresses)
    options.log?.info({ protocol: address.protocol, listen: `${address.host}:${address.port}` }, "syslog listening");
  return { addresses, stop };
}
