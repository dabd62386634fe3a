import { readFileSync } from "node:fs";
import { Counter, Gauge, type Registry } from "prom-client";

export type SyslogMetrics = ReturnType<typeof syslogMetrics>;

export function syslogMetrics(registry: Registry) {
  return {
    accepted: new Counter({
      name: "bifrost_collector_syslog_messages_accepted_total",
      help: "Syslog messages in the disk buffer, by protocol (udp, tcp, tls).",
      labelNames: ["protocol"],
      registers: [registry],
    }),
    rejected: new Counter({
      name: "bifrost_collector_syslog_messages_rejected_total",
      help: "Syslog messages refused, by protocol and reason (a broken limit; rate_limited and buffer_full on udp, which cannot wait).",
      labelNames: ["protocol", "reason"],
      registers: [registry],
    }),
    truncated: new Counter({
      name: "bifrost_collector_syslog_messages_truncated_total",
      help: "Syslog messages cut to max_message_bytes, by protocol.",
      labelNames: ["protocol"],
      registers: [registry],
    }),
    connections: new Gauge({
      name: "bifrost_collector_syslog_connections",
      help: "Open syslog connections, by protocol (tcp, tls).",
      labelNames: ["protocol"],
      registers: [registry],
    }),
    closed: new Counter({
      name: "bifrost_collector_syslog_connections_refused_total",
      help: "Syslog connections refused or closed by the collector, by reason (too_many_connections, bad_framing, tls_handshake, idle_timeout).",
      labelNames: ["protocol", "reason"],
      registers: [registry],
    }),
    paused: new Gauge({
      name: "bifrost_collector_syslog_connections_paused",
      help: "Syslog connections not being read because the disk buffer is full or the tenant is over its rate (the sender waits).",
      registers: [registry],
    }),
  };
}

/**
 * Datagrams the kernel dropped on a UDP socket because its receive buffer was full, as /proc/net/udp and udp6
 * count them per socket (the last column), found by the socket's local port. Node's dgram does not expose
 * SO_RXQ_OVFL, and these drops happen before the collector sees the datagram, so this is the only place they
 * show. Undefined off Linux.
 */
export function udpKernelDrops(port: number): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let found: number | undefined;
  for (const file of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 13 || fields[1]!.split(":")[1] !== hexPort) continue;
      found = (found ?? 0) + Number(fields[fields.length - 1]);
    }
  }
  return found;
}
