import { z } from "zod";
import { pipelineStagesSchema } from "../../processing/pipeline/schema.js";
import type { SchemaHelpers } from "../schema-helpers.js";

/** Header fields of a syslog message that can be stream labels; the others go to structured metadata. */
export const SYSLOG_LABEL_FIELDS = ["facility", "severity", "hostname", "app_name", "proc_id", "msg_id"] as const;

/** `collector.syslog`: syslog listeners (RFC 5424 and RFC 3164 over UDP, TCP and TLS). */
export function syslogSchema(h: SchemaHelpers) {
  const listener = z
    .strictObject({
      listen: h.listenAddress.describe("address to listen on, host:port (514 for UDP and TCP, 6514 for TLS)"),
      protocol: z.enum(["tcp", "udp"]).default("tcp").describe("tcp (with `tls`, RFC 5425) or udp"),
      tls: h.serverTls.prefault({}).describe("TLS on a tcp listener (RFC 5425), with client certificates if wanted"),
      format: z
        .enum(["auto", "rfc5424", "rfc3164"])
        .default("auto")
        .describe("auto: RFC 5424 when the priority is followed by a version, RFC 3164 (BSD) otherwise"),
      timestamp: z
        .enum(["message", "received"])
        .default("message")
        .describe(
          "message: the message's own time (received time when it has none); received: when the collector read it",
        ),
      line: z
        .enum(["message", "full"])
        .default("message")
        .describe("message: the MSG part only; full: the whole message as received, header included"),
      message_labels: h
        .list(z.enum(SYSLOG_LABEL_FIELDS))
        .default(["facility", "severity", "hostname", "app_name"])
        .describe(
          "header fields that become stream labels; the others, and structured data (as sd_<id>_<param>), become structured metadata",
        ),
      labels: z.record(h.labelName, z.string()).default({}).describe("stream labels added to every message"),
      tenant: z.string().min(1).optional().describe("tenant of the messages; none means collector.default_tenant"),
      pipeline_stages: pipelineStagesSchema()
        .optional()
        .describe("processing stages of this input's entries; none means collector.pipeline_stages"),
      max_message_bytes: h
        .bytes(
          z
            .number()
            .int()
            .min(480)
            .max(16 << 20),
        )
        .default(64 << 10)
        .describe("longer messages are cut here and counted (RFC 5425 receivers must take 2048, should take 8192)"),
      max_connections: h
        .number(z.number().int().min(1))
        .default(256)
        .describe("tcp: connections at once; more are refused and counted"),
      idle_timeout_ms: h
        .duration(z.number().int().min(0))
        .default(0)
        .describe("tcp: close a connection silent this long; 0 never does"),
      receive_buffer_bytes: h
        .bytes(z.number().int().min(0))
        .default(0)
        .describe("udp: the socket's receive buffer (SO_RCVBUF); 0 keeps the system's default"),
    })
    .refine((l) => l.protocol === "tcp" || !l.tls.enabled, "TLS needs protocol tcp");
  return z
    .array(listener)
    .default([])
    .describe("syslog listeners: each message an entry of the stream {facility, severity, hostname, app_name, labels}")
    .meta({
      examples: [
        [
          { listen: "0.0.0.0:514", protocol: "tcp", labels: { job: "syslog" } },
          { listen: "0.0.0.0:514", protocol: "udp", receive_buffer_bytes: 4194304 },
          {
            listen: "0.0.0.0:6514",
            protocol: "tcp",
            tls: { enabled: true, cert_file: "/etc/bifrost/syslog.pem", key_file: "/etc/bifrost/syslog.key" },
          },
        ],
      ],
    });
}

export type SyslogListenerConfig = z.infer<ReturnType<typeof syslogSchema>>[number];
