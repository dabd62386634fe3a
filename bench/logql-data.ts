import { labelsOf, type Labels } from "../proto/labels.js";
import type { LogStream } from "../proto/batch.js";

// The data set and the query families of bench:logql (bench/logql.ts): 30 streams (6 apps x 5 pods) over two
// hours, each app with its own line format (logfmt, JSON, an access log, plain text), generated the same way for
// every store and for Loki so that all of them read the same lines.

export const STREAMS = 30;
export const PODS = 5;
export const SPAN_MS = 2 * 3_600_000;

interface App {
  name: string;
  line(i: number, tsMs: number): string;
}

const LEVELS = ["info", "info", "info", "debug", "warn", "error"];
const METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const STATUSES = [200, 200, 200, 200, 201, 204, 301, 400, 404, 500, 503];
const ENVS = ["prod", "staging", "dev"];
const TIERS = ["free", "gold", "platinum"];
const QUEUES = ["default", "mail", "billing"];

const pick = <T>(values: readonly T[], i: number): T => values[i % values.length]!;
/** A cheap deterministic scramble so that fields do not all advance in lock step. */
const mix = (i: number, salt: number): number => ((i * 2654435761 + salt * 40503) >>> 7) & 0xffff;

function logfmt(i: number): string {
  const path = mix(i, 3) % 10 === 0 ? "/health" : `/api/v1/orders/${mix(i, 4) % 500}`;
  return (
    `ts=${i} level=${pick(LEVELS, mix(i, 1))} method=${pick(METHODS, mix(i, 2))} path=${path} ` +
    `status=${pick(STATUSES, mix(i, 5))} duration=${(mix(i, 6) % 900) + 1}ms env=${pick(ENVS, mix(i, 7))} ` +
    `msg="handled request ${mix(i, 8) % 97}"`
  );
}

function json(i: number): string {
  return JSON.stringify({
    level: pick(LEVELS, mix(i, 1)),
    method: pick(METHODS, mix(i, 2)),
    status: pick(STATUSES, mix(i, 5)),
    duration_ms: (mix(i, 6) % 900) + 1,
    user: { id: `u${mix(i, 9) % 5000}`, tier: pick(TIERS, mix(i, 10)) },
    msg: `order ${mix(i, 11)} placed`,
  });
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function accessLog(i: number, tsMs: number): string {
  const d = new Date(tsMs);
  const two = (n: number) => String(n).padStart(2, "0");
  const when = `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
  return (
    `10.0.${mix(i, 12) % 256}.${mix(i, 13) % 256} - - [${when}] "${pick(METHODS, mix(i, 2))} /static/${mix(i, 14) % 300}.js ` +
    `HTTP/1.1" ${pick(STATUSES, mix(i, 5))} ${mix(i, 15)} "-" "Mozilla/5.0"`
  );
}

function plain(i: number): string {
  return `${pick(LEVELS, mix(i, 1)).toUpperCase()} worker processed job ${mix(i, 16)} from queue ${pick(QUEUES, mix(i, 17))} in ${mix(i, 6) % 900} ms`;
}

const APPS: App[] = [
  { name: "api", line: logfmt },
  { name: "checkout", line: json },
  { name: "web", line: accessLog },
  { name: "worker", line: plain },
  { name: "payments", line: logfmt },
  { name: "search", line: json },
];

export const STREAM_LABELS: Labels[] = Array.from({ length: STREAMS }, (_, s) =>
  labelsOf([
    ["app", APPS[s % APPS.length]!.name],
    ["pod", `${APPS[s % APPS.length]!.name}-${Math.floor(s / APPS.length) % PODS}`],
    ["namespace", "shop"],
  ]),
);

export interface DataSet {
  lines: number;
  startMs: number;
  endMs: number;
}

export function dataSet(lines: number, endMs: number): DataSet {
  return { lines, startMs: endMs - SPAN_MS, endMs };
}

/** Line i's timestamp (ns) and text: spread evenly over the span, round-robin over the streams. */
export function entry(data: DataSet, i: number): { stream: number; tsNs: bigint; line: string } {
  const offsetNs = (BigInt(SPAN_MS) * 1_000_000n * BigInt(i)) / BigInt(data.lines);
  const tsNs = BigInt(data.startMs) * 1_000_000n + offsetNs;
  const stream = i % STREAMS;
  return { stream, tsNs, line: APPS[stream % APPS.length]!.line(i, Number(tsNs / 1_000_000n)) };
}

/** Lines [first, first + count) grouped into their streams. */
export function streamsOf(data: DataSet, first: number, count: number): LogStream[] {
  const streams = new Map<number, LogStream>();
  for (let i = first; i < Math.min(first + count, data.lines); i++) {
    const { stream, tsNs, line } = entry(data, i);
    let one = streams.get(stream);
    if (one === undefined) {
      one = { labels: STREAM_LABELS[stream]!, entries: [] };
      streams.set(stream, one);
    }
    one.entries.push({ timeUnixNano: tsNs, line, metadata: Object.create(null) });
  }
  return [...streams.values()];
}

export interface Family {
  name: string;
  query: string;
  /** The apps whose lines the query reads (its selector), to count the lines it reads. */
  apps: string[];
  /** The field the floor's split-and-scan loop counts by. */
  floorField: string;
}

export const FAMILIES: Family[] = [
  {
    name: "count_over_time_by_pod",
    query: 'sum by (pod) (count_over_time({app="api"}[5m]))',
    apps: ["api"],
    floorField: "status=",
  },
  {
    name: "rate_sum_by_app",
    query: 'sum by (app) (rate({app=~"api|checkout|web"}[5m]))',
    apps: ["api", "checkout", "web"],
    floorField: "status=",
  },
  {
    name: "logfmt_sum_by_status",
    query: 'sum by (status) (count_over_time({app="api"} | logfmt [5m]))',
    apps: ["api"],
    floorField: "status=",
  },
  {
    name: "json_sum_by_extracted",
    query: 'sum by (user_tier) (count_over_time({app="checkout"} | json [5m]))',
    apps: ["checkout"],
    floorField: '"tier":',
  },
  {
    name: "logfmt_unwrap_avg",
    query: 'avg_over_time({app="api"} | logfmt | unwrap duration(duration) | __error__="" [5m]) by (status)',
    apps: ["api"],
    floorField: "duration=",
  },
  {
    name: "logfmt_drop",
    query: 'sum by (env) (count_over_time({app="api"} | logfmt | drop pod [5m]))',
    apps: ["api"],
    floorField: "env=",
  },
  {
    name: "logfmt_keep",
    query: 'sum by (level) (count_over_time({app="api"} | logfmt | keep level, status [5m]))',
    apps: ["api"],
    floorField: "level=",
  },
  {
    name: "line_label_format",
    query:
      'sum by (route) (count_over_time({app="api"} | logfmt | label_format route="{{.method}}_{{.level}}" | line_format "{{.status}} {{.path}}" [5m]))',
    apps: ["api"],
    floorField: "method=",
  },
  {
    name: "line_filter_logfmt",
    query: 'sum by (status) (count_over_time({app="api"} |= "GET" != "/health" | logfmt | status >= 500 [5m]))',
    apps: ["api"],
    floorField: "status=",
  },
  {
    name: "regex_filter_json",
    query: 'sum by (level) (count_over_time({app=~"checkout|search"} |~ "\\"status\\":5.." | json level [5m]))',
    apps: ["checkout", "search"],
    floorField: '"level":',
  },
];

/** How many lines of the data set belong to `apps`' streams. */
export function linesOf(data: DataSet, apps: readonly string[]): number {
  let total = 0;
  for (let s = 0; s < STREAMS; s++) {
    if (!apps.includes(STREAM_LABELS[s]!["app"]!)) continue;
    total += Math.floor(data.lines / STREAMS) + (s < data.lines % STREAMS ? 1 : 0);
  }
  return total;
}
