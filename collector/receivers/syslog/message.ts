import { sanitizeLabelKey } from "../../../common/label-names.js";
import { type LogEntry } from "../../../proto/batch.js";
import { type Labels, NO_LABELS } from "../../../proto/labels.js";
import type { SyslogListenerConfig } from "./config.js";
import { FACILITIES, parseSyslog, SEVERITIES, type SyslogMessage } from "./parse.js";

// A syslog message as an entry: the configured header fields as stream labels, the rest of the header and the
// structured data as structured metadata, the text as the line.

export type SyslogEntrySettings = Pick<SyslogListenerConfig, "format" | "timestamp" | "line"> & {
  labels: Labels;
  /** Header fields that are stream labels. */
  messageLabels: ReadonlySet<string>;
};

type HeaderField = SyslogListenerConfig["message_labels"][number];

function headerFields(message: SyslogMessage): Record<HeaderField, string | undefined> {
  return {
    facility: FACILITIES[message.facility],
    severity: SEVERITIES[message.severity],
    hostname: message.hostname,
    app_name: message.appName,
    proc_id: message.procId,
    msg_id: message.msgId,
  };
}

/** The stream labels and entry of one message, `text` as received (its frame taken off), read at `receivedNs`. */
export function syslogEntry(
  text: string,
  receivedNs: bigint,
  settings: SyslogEntrySettings,
): { labels: Labels; entry: LogEntry } {
  const message = parseSyslog(text, { format: settings.format });
  const labels: Labels = Object.create(null);
  for (const name in settings.labels) labels[name] = settings.labels[name]!;
  let metadata: Labels = NO_LABELS;
  const meta = (name: string, value: string) => {
    if (metadata === NO_LABELS) metadata = Object.create(null);
    metadata[name] = value;
  };
  for (const [name, value] of Object.entries(headerFields(message))) {
    if (value === undefined || value === "") continue;
    if (settings.messageLabels.has(name)) labels[name] ??= value;
    else meta(name, value);
  }
  for (const [id, param, value] of message.structuredData) {
    const name = sanitizeLabelKey(`sd_${id}_${param}`);
    meta(name, metadata[name] === undefined ? value : `${metadata[name]},${value}`);
  }
  return {
    labels,
    entry: {
      timeUnixNano: settings.timestamp === "message" ? (message.timeUnixNano ?? receivedNs) : receivedNs,
      line: settings.line === "full" ? text : message.message,
      metadata,
    },
  };
}
