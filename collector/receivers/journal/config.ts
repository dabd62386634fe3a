import { z } from "zod";
import { pipelineStagesSchema } from "../../processing/pipeline/schema.js";
import type { SchemaHelpers } from "../schema-helpers.js";

/** Stream labels the journal input can set, and the journal field each comes from. */
export const JOURNAL_LABEL_FIELDS = {
  unit: "_SYSTEMD_UNIT",
  hostname: "_HOSTNAME",
  level: "PRIORITY",
  syslog_identifier: "SYSLOG_IDENTIFIER",
  transport: "_TRANSPORT",
  boot_id: "_BOOT_ID",
  comm: "_COMM",
} as const;

/** A journal match as journalctl takes it: FIELD=value, or `+` between groups (OR). */
const MATCH = /^([A-Z0-9_]+=.*|\+)$/s;

/** `collector.journal`: the systemd journal, read through journalctl. */
export function journalSchema(h: SchemaHelpers) {
  return z
    .strictObject({
      enabled: h.boolean().default(false).describe("read the systemd journal"),
      directory: z
        .string()
        .default("")
        .describe("journal directory to read (journalctl --directory); empty: the system journal"),
      journalctl: z.string().min(1).default("journalctl").describe("the journalctl binary"),
      matches: z
        .string()
        .default("")
        .refine(
          (text) =>
            text.trim() === "" ||
            text
              .trim()
              .split(/\s+/)
              .every((match) => MATCH.test(match)),
          "expected journalctl matches: FIELD=value separated by spaces, `+` for OR",
        )
        .describe(
          "journalctl matches, such as `_SYSTEMD_UNIT=ssh.service _SYSTEMD_UNIT=cron.service` (same field: OR) or `_TRANSPORT=kernel + PRIORITY=3`",
        ),
      max_age: z
        .string()
        .regex(/^\d+(s|min|m|h|d)$/, "expected a journalctl time span such as 30min, 7h or 2d")
        .default("7h")
        .describe("with no saved cursor, read entries this recent (journalctl --since -<max_age>), as Promtail does"),
      field_labels: h
        .list(z.enum(Object.keys(JOURNAL_LABEL_FIELDS) as [keyof typeof JOURNAL_LABEL_FIELDS]))
        .default(["unit", "hostname", "level", "syslog_identifier", "transport"])
        .describe(
          "stream labels from journal fields: unit (_SYSTEMD_UNIT), hostname, level (PRIORITY as a syslog keyword), syslog_identifier, transport, boot_id, comm",
        ),
      fields: h
        .list(z.string().regex(/^[A-Z0-9_]+$/, "expected a journal field name such as _PID"))
        .default(["_PID", "_COMM"])
        .describe("journal fields kept as structured metadata, named in lower case without leading underscores"),
      json: h.boolean().default(false).describe("the line is the whole entry as JSON instead of MESSAGE"),
      labels: z.record(h.labelName, z.string()).default({}).describe("stream labels added to every entry"),
      tenant: z.string().min(1).optional().describe("tenant of the entries; none means collector.default_tenant"),
      pipeline_stages: pipelineStagesSchema()
        .optional()
        .describe("processing stages of this input's entries; none means collector.pipeline_stages"),
      cursor_file: z
        .string()
        .default("")
        .describe("where the cursor is kept across restarts; empty: journal-cursor.json beside the file positions"),
    })
    .prefault({})
    .describe("the systemd journal through `journalctl --follow --output=json`, resumed from a saved cursor")
    .meta({
      examples: [
        {
          enabled: true,
          matches: "_SYSTEMD_UNIT=edge-app.service _SYSTEMD_UNIT=nginx.service",
          fields: ["_PID", "_COMM", "_BOOT_ID"],
        },
      ],
    });
}

export type JournalConfig = z.infer<ReturnType<typeof journalSchema>>;
