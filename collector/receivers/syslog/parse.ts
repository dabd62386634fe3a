import { rfc3339Nanos } from "../../../common/rfc3339.js";

// Syslog messages as RFC 5424 and RFC 3164 (BSD) define them, read leniently as rsyslog reads them: a message
// that does not follow its format is kept whole as the text, with the priority it carries (or RFC 3164's
// default, user.notice), never dropped. The npm parsers were not fit: nsyslog-parser and glossy split the
// message on spaces (losing repeated spaces), find structured data with regular expressions that miss escaped
// `"`, `\` and `]`, and take a `]` at the end of the text for the end of the structured data.

export const FACILITIES = [
  "kern",
  "user",
  "mail",
  "daemon",
  "auth",
  "syslog",
  "lpr",
  "news",
  "uucp",
  "cron",
  "authpriv",
  "ftp",
  "ntp",
  "security",
  "console",
  "solaris-cron",
  "local0",
  "local1",
  "local2",
  "local3",
  "local4",
  "local5",
  "local6",
  "local7",
] as const;

/** Severity keywords as rsyslog's %syslogseverity-text% writes them; Grafana and Loki read them as levels. */
export const SEVERITIES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"] as const;

export type SyslogFormat = "rfc5424" | "rfc3164";

export interface SyslogMessage {
  format: SyslogFormat | "unknown";
  facility: number;
  severity: number;
  /** The message's own time in Unix nanoseconds; undefined when it has none (`-`) or none that parses. */
  timeUnixNano: bigint | undefined;
  hostname: string | undefined;
  appName: string | undefined;
  procId: string | undefined;
  msgId: string | undefined;
  /** RFC 5424 SD-PARAMs in order: [SD-ID, PARAM-NAME, PARAM-VALUE]. */
  structuredData: [string, string, string][];
  /** MSG: the text after the header (and structured data), without a leading UTF-8 BOM. */
  message: string;
}

/** user.notice, the priority RFC 3164 section 4.3.3 gives a message without one. */
const DEFAULT_PRI = 13;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const BSD_TIME = /^([A-Z][a-z]{2}) ([ \d]\d) (?:(\d{4}) )?(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?= |$)/;

export interface ParseOptions {
  /** Which format to expect; auto: RFC 5424 when the priority is followed by a version digit and a space. */
  format?: SyslogFormat | "auto";
  /** "Now", for the year RFC 3164 timestamps leave out; the local time zone applies to them. */
  now?: Date;
}

/** Reads one syslog message (its frame already taken off). */
export function parseSyslog(text: string, options: ParseOptions = {}): SyslogMessage {
  let pri = DEFAULT_PRI;
  let rest = text;
  const priMatch = /^<(\d{1,3})>/.exec(text);
  if (priMatch && Number(priMatch[1]) <= 191) {
    pri = Number(priMatch[1]);
    rest = text.slice(priMatch[0].length);
  }
  const base = { facility: pri >> 3, severity: pri & 7 };
  const format = options.format ?? "auto";
  if (priMatch && format !== "rfc3164" && /^[1-9]\d{0,2} /.test(rest)) {
    const parsed = parse5424(rest);
    if (parsed) return { ...base, ...parsed };
  }
  if (format !== "rfc5424") return { ...base, ...parse3164(rest, options.now ?? new Date()) };
  return { ...base, ...unparsed(rest) };
}

function unparsed(text: string): Omit<SyslogMessage, "facility" | "severity"> {
  return {
    format: "unknown",
    timeUnixNano: undefined,
    hostname: undefined,
    appName: undefined,
    procId: undefined,
    msgId: undefined,
    structuredData: [],
    message: text,
  };
}

/** A header field: NILVALUE ("-") is undefined. */
const field = (token: string) => (token === "-" ? undefined : token);

function parse5424(rest: string): Omit<SyslogMessage, "facility" | "severity"> | undefined {
  // VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]
  let pos = rest.indexOf(" ") + 1;
  const tokens: string[] = [];
  for (let i = 0; i < 5; i++) {
    const end = rest.indexOf(" ", pos);
    if (end <= pos) return undefined;
    tokens.push(rest.slice(pos, end));
    pos = end + 1;
  }
  const [timestamp, hostname, appName, procId, msgId] = tokens as [string, string, string, string, string];
  let timeUnixNano: bigint | undefined;
  if (timestamp !== "-") {
    timeUnixNano = rfc3339Nanos(timestamp);
    if (timeUnixNano === undefined) return undefined;
  }
  const structuredData: [string, string, string][] = [];
  if (rest[pos] === "-") pos++;
  else {
    const end = readStructuredData(rest, pos, structuredData);
    if (end === undefined) return undefined;
    pos = end;
  }
  if (pos < rest.length && rest[pos] !== " ") return undefined;
  let message = rest.slice(pos + 1);
  if (message.charCodeAt(0) === 0xfeff) message = message.slice(1);
  return {
    format: "rfc5424",
    timeUnixNano,
    hostname: field(hostname),
    appName: field(appName),
    procId: field(procId),
    msgId: field(msgId),
    structuredData,
    message,
  };
}

/** SD-NAME: 1 to 32 printable US-ASCII characters but `=`, space, `]` and `"`. */
function readName(text: string, pos: number): number {
  let end = pos;
  while (end < text.length && end - pos < 32) {
    const code = text.charCodeAt(end);
    if (code < 33 || code > 126 || code === 61 || code === 93 || code === 34) break;
    end++;
  }
  return end;
}

/** Reads 1*SD-ELEMENT from `pos` into `out`; the position after them, or undefined when they are malformed. */
function readStructuredData(text: string, pos: number, out: [string, string, string][]): number | undefined {
  if (text[pos] !== "[") return undefined;
  while (text[pos] === "[") {
    const idEnd = readName(text, pos + 1);
    if (idEnd === pos + 1) return undefined;
    const id = text.slice(pos + 1, idEnd);
    pos = idEnd;
    while (text[pos] === " ") {
      const nameEnd = readName(text, pos + 1);
      if (nameEnd === pos + 1 || text[nameEnd] !== "=" || text[nameEnd + 1] !== '"') return undefined;
      const name = text.slice(pos + 1, nameEnd);
      // PARAM-VALUE: `"`, `\` and `]` are escaped by `\`; a backslash before anything else is itself.
      let value = "";
      let i = nameEnd + 2;
      for (;;) {
        const char = text[i];
        if (char === undefined) return undefined;
        if (char === '"') break;
        if (char === "\\" && (text[i + 1] === '"' || text[i + 1] === "\\" || text[i + 1] === "]")) {
          value += text[i + 1];
          i += 2;
        } else {
          value += char;
          i++;
        }
      }
      out.push([id, name, value]);
      pos = i + 1;
    }
    if (text[pos] !== "]") return undefined;
    pos++;
  }
  return pos;
}

function bsdTimestamp(m: RegExpExecArray, now: Date): bigint | undefined {
  const month = MONTHS.indexOf(m[1]!);
  const [day, hour, minute, second] = [Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6])];
  if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  const at = (year: number) => new Date(year, month, day, hour, minute, second).getTime();
  let ms: number;
  if (m[3] !== undefined) ms = at(Number(m[3]));
  else {
    // No year: the one that puts the time nearest to now (a December message read in January is last year's).
    const year = now.getFullYear();
    ms = at(year);
    if (ms - now.getTime() > 31 * 86_400_000) ms = at(year - 1);
    else if (now.getTime() - ms > 334 * 86_400_000) ms = at(year + 1);
  }
  return BigInt(ms) * 1_000_000n + BigInt((m[7] ?? "").padEnd(6, "0")) * 1000n;
}

const TAG = /^([^\s[\]:]{1,48})(?:\[([^\]\s]{1,128})\])?:(?: |$)/;
/** After a hostname, rsyslog's reading: the TAG ends at a colon or a space (rsyslog's own RFC 5424 -> 3164 relay writes `host app msg`). */
const LOOSE_TAG = /^([^\s[\]:]{1,48})(?:\[([^\]\s]{1,128})\])?:?(?: |$)/;

function parse3164(rest: string, now: Date): Omit<SyslogMessage, "facility" | "severity"> {
  // TIMESTAMP SP HOSTNAME SP TAG[PID]: MSG, with the variants senders use: an RFC 3339 timestamp (rsyslog's
  // forwarding formats), a year after the day, no hostname (a local sender), no tag.
  let timeUnixNano: bigint | undefined;
  let pos = 0;
  const bsd = BSD_TIME.exec(rest);
  if (bsd) {
    timeUnixNano = bsdTimestamp(bsd, now);
    pos = bsd[0].length;
  } else {
    const end = rest.indexOf(" ");
    const stamp = end < 0 ? rest : rest.slice(0, end);
    timeUnixNano = /^\d{4}-/.test(stamp) ? rfc3339Nanos(stamp) : undefined;
    if (timeUnixNano !== undefined) pos = stamp.length;
  }
  if (pos === 0) return { ...unparsed(rest), format: "rfc3164" };
  let text = rest.slice(pos + 1);
  let hostname: string | undefined;
  if (!TAG.test(text)) {
    const end = text.indexOf(" ");
    const candidate = end < 0 ? text : text.slice(0, end);
    if (/^[!-~]{1,255}$/.test(candidate)) {
      hostname = candidate;
      text = end < 0 ? "" : text.slice(end + 1);
    }
  }
  const tag = (hostname === undefined ? TAG : LOOSE_TAG).exec(text);
  return {
    format: "rfc3164",
    timeUnixNano,
    hostname,
    appName: tag?.[1],
    procId: tag?.[2],
    msgId: undefined,
    structuredData: [],
    message: tag ? text.slice(tag[0].length) : text,
  };
}
