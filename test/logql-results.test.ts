import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Labels } from "../proto/labels.js";
import type { Store } from "../storage/store.js";
import { onBothStores, startLokiHttp, type LokiHttp } from "./helpers/loki-http.js";
import { logBatch, T0_MS, T0_NS } from "./helpers/store-contract.js";

// LogQL results for every feature, on the real ClickHouse engine and on the embedded DuckDB store, through the
// Loki HTTP API. The data set below is fixed; each expected response was worked out by hand from it with Loki's
// semantics (windows (t - range, t], steps start + k * step; streams ordered by their labels as text, so that
// `{a="x", b="y"}` comes before `{a="x"}`; series and instant vectors label by label as Prometheus' labels.Compare
// does, so that `{a="x"}` comes first, unless sort/sort_desc orders them). Both stores must give exactly the same
// JSON.

const SEC = 1_000_000_000n;
/** A timestamp `seconds` after T0 plus `ns` nanoseconds. */
const at = (seconds: number, ns = 0) => T0_NS + BigInt(seconds) * SEC + BigInt(ns);
/** A sample time in Loki's JSON: seconds as a number. */
const t = (seconds: number) => T0_MS / 1000 + seconds;

type Entry = readonly [ts: bigint, line: string];

// Web requests in logfmt, at whole seconds (the unwrap and rate_counter figures stay exact).
const W1: Entry = [
  at(10),
  "level=info method=GET path=/orders status=200 latency=250ms size=1.5KB client=192.168.1.10",
];
const W2: Entry = [at(40), "level=info method=POST path=/orders status=201 latency=500ms size=20KB client=10.0.0.7"];
const W3: Entry = [at(70), "level=info method=GET path=/users status=200 latency=2.25s size=512B client=192.168.7.3"];
const E1: Entry = [at(25), "level=error method=GET path=/orders status=500 latency=2s size=0B client=10.0.0.7"];
const E2: Entry = [
  at(85),
  'level=error method=DELETE path=/users status=503 latency=750ms size=100B client=172.16.0.1 msg="db down"',
];
// A worker's JSON, two entries with structured metadata, one line that is not JSON.
const K1: Entry = [
  at(15, 6),
  '{"job":"resize","took":"120ms","attempt":1,"user":{"id":7,"name":"ann"},"tags":["a","b"]}',
];
const K2: Entry = [at(45, 7), '{"job":"email","took":"1.5s","attempt":3,"user":{"id":9,"name":"bob"}}'];
const K3: Entry = [at(75, 8), "not json at all"];
// An edge proxy with ANSI colours.
const G1: Entry = [at(20, 9), "\u001b[32mINFO\u001b[0m 10.1.1.1 - GET /health 200 3ms"];
const G2: Entry = [at(50, 10), "\u001b[31mERROR\u001b[0m 192.168.0.5 - POST /upload 413 95ms"];
// A line packed by Promtail's pack stage.
const P1: Entry = [at(30, 11), '{"_entry":"disk full","region":"eu","host":"h1"}'];
// logfmt with an empty value, a bare key and a malformed pair.
const C1: Entry = [at(35, 12), "mode= retries=3 flag"];
const C2: Entry = [at(55, 13), "retries=5 =oops after=1"];

const WEB_INFO = { app: "web", env: "prod", level: "info" };
const WEB_ERROR = { app: "web", env: "prod", level: "error" };
const WORKER = { app: "worker", env: "prod" };
const EDGE = { app: "edge", env: "dev" };
const PACK = { app: "pack", env: "dev" };
const CFG = { app: "cfg", env: "dev" };

async function load(store: Store): Promise<void> {
  await store.appendLogs([
    logBatch("web:1", [
      { labels: Object.entries(WEB_INFO), entries: [W1, W2, W3].map(([ts, line]) => [ts, line]) },
      { labels: Object.entries(WEB_ERROR), entries: [E1, E2].map(([ts, line]) => [ts, line]) },
    ]),
    logBatch("worker:1", [
      {
        labels: Object.entries(WORKER),
        entries: [
          [K1[0], K1[1], [["trace_id", "t1"]]],
          [K2[0], K2[1], [["trace_id", "t2"]]],
          [K3[0], K3[1]],
        ],
      },
    ]),
    logBatch("dev:1", [
      { labels: Object.entries(EDGE), entries: [G1, G2].map(([ts, line]) => [ts, line]) },
      { labels: Object.entries(PACK), entries: [[P1[0], P1[1]]] },
      { labels: Object.entries(CFG), entries: [C1, C2].map(([ts, line]) => [ts, line]) },
    ]),
    logBatch("other:1", [{ labels: Object.entries(WEB_INFO), entries: [[at(10), "another tenant"]] }], "globex"),
  ]);
}

const stream = (labels: Labels, ...entries: Entry[]) => ({
  stream: labels,
  values: entries.map(([ts, line]) => [String(ts), line]),
});
/** An entry whose line the pipeline rewrote. */
const as = (entry: Entry, line: string): Entry => [entry[0], line];
const streams = (...result: unknown[]) => ({ resultType: "streams", result });
const sample = (labels: Labels, seconds: number, value: number) => ({
  metric: labels,
  value: [t(seconds), String(value)],
});
const vector = (...result: unknown[]) => ({ resultType: "vector", result });
const series = (labels: Labels, ...points: [seconds: number, value: number][]) => ({
  metric: labels,
  values: points.map(([s, v]) => [t(s), String(v)]),
});
const matrix = (...result: unknown[]) => ({ resultType: "matrix", result });
const bytes = (...entries: Entry[]) => entries.reduce((n, [, line]) => n + Buffer.byteLength(line), 0);

interface Case {
  name: string;
  query: string;
  /** Query parameters; `time=` makes it an instant query. */
  params: string;
  want: { resultType: string; result: unknown };
}

const LOGS = `start=${at(0)}&end=${at(120)}`;
const AT_120 = `time=${at(120)}`;
const AT_60 = `time=${at(60)}`;

const CASES: Case[] = [
  // ---- stream selectors
  { name: "selector =", query: '{app="pack"}', params: LOGS, want: streams(stream(PACK, P1)) },
  {
    name: "selector = and !=",
    query: '{env="dev", app!="pack", app!="cfg"}',
    params: LOGS,
    want: streams(stream(EDGE, G2, G1)),
  },
  {
    name: "selector =~ and !~ (a missing label is empty)",
    query: '{app=~"web|pack", level!~"info|debug"}',
    params: LOGS,
    want: streams(stream(PACK, P1), stream(WEB_ERROR, E2, E1)),
  },

  // ---- line filters
  {
    name: "|= and !=",
    query: '{app="web"} |= "orders" != "POST"',
    params: LOGS,
    want: streams(stream(WEB_ERROR, E1), stream(WEB_INFO, W1)),
  },
  {
    name: "|~ with a backtick string or a quoted one",
    query: '{app="web"} |~ `status=5\\d\\d` or "latency=2\\\\.\\\\d+s"',
    params: LOGS,
    want: streams(stream(WEB_ERROR, E2, E1), stream(WEB_INFO, W3)),
  },
  { name: "!~", query: '{app="web"} !~ "GET|POST"', params: LOGS, want: streams(stream(WEB_ERROR, E2)) },
  {
    name: "!= with or drops lines containing any",
    query: '{env="dev"} != "health" or "upload" or "retries"',
    params: LOGS,
    want: streams(stream(PACK, P1)),
  },
  {
    name: "|> pattern filter with or",
    query: '{env=~".+"} |> "<_> - POST <_>" or "level=error <_>"',
    params: LOGS,
    want: streams(stream(EDGE, G2), stream(WEB_ERROR, E2, E1)),
  },
  {
    name: "!> pattern filter",
    query: '{app="web"} !> "<_> status=200 <_>"',
    params: LOGS,
    want: streams(stream(WEB_ERROR, E2, E1), stream(WEB_INFO, W2)),
  },
  {
    name: "|= ip()",
    query: '{app="web"} |= ip("192.168.0.0/16")',
    params: LOGS,
    want: streams(stream(WEB_INFO, W3, W1)),
  },
  {
    name: "!= ip() or ip()",
    query: '{env="prod"} != ip("10.0.0.0/8") or ip("172.16.0.0/12")',
    params: LOGS,
    want: streams(
      stream(WEB_INFO, W3, W1),
      stream({ ...WORKER, trace_id: "t1" }, K1),
      stream({ ...WORKER, trace_id: "t2" }, K2),
      stream(WORKER, K3),
    ),
  },

  // ---- direction and limit
  {
    name: "forward with a limit takes the oldest entries",
    query: '{env=~"prod|dev"}',
    params: `${LOGS}&limit=3&direction=forward`,
    want: streams(stream(EDGE, G1), stream(WEB_INFO, W1), stream({ ...WORKER, trace_id: "t1" }, K1)),
  },
  {
    name: "backward with a limit takes the newest entries",
    query: '{env=~"prod|dev"}',
    params: `${LOGS}&limit=2&direction=backward`,
    want: streams(stream(WEB_ERROR, E2), stream(WORKER, K3)),
  },

  // ---- parsers
  {
    name: "json with parameters; a line that is not JSON gets __error__",
    query: '{app="worker"} | json job, user_name="user.name", uid="user.id" | keep job, user_name, uid',
    params: LOGS,
    want: streams(
      stream({ __error__: "JSONParserErr" }, K3),
      stream({ job: "email", user_name: "bob", uid: "9" }, K2),
      stream({ job: "resize", user_name: "ann", uid: "7" }, K1),
    ),
  },
  {
    name: 'json, __error__="" and drop',
    query: '{app="worker"} | json | __error__="" | drop user_name, took',
    params: LOGS,
    want: streams(
      stream({ ...WORKER, trace_id: "t1", job: "resize", attempt: "1", user_id: "7" }, K1),
      stream({ ...WORKER, trace_id: "t2", job: "email", attempt: "3", user_id: "9" }, K2),
    ),
  },
  {
    name: '__error__!="" keeps the failures',
    query: '{app="worker"} | json | __error__!="" | drop __error_details__',
    params: LOGS,
    want: streams(stream({ ...WORKER, __error__: "JSONParserErr" }, K3)),
  },
  {
    name: "logfmt skips empty values and malformed pairs",
    query: '{app="cfg"} | logfmt',
    params: LOGS,
    want: streams(stream({ ...CFG, retries: "5", after: "1" }, C2), stream({ ...CFG, retries: "3" }, C1)),
  },
  {
    name: "logfmt --strict stops at a malformed pair",
    query: '{app="cfg"} | logfmt --strict | drop __error_details__',
    params: LOGS,
    want: streams(
      stream({ ...CFG, retries: "5", __error__: "LogfmtParserErr" }, C2),
      stream({ ...CFG, retries: "3" }, C1),
    ),
  },
  {
    name: "logfmt --keep-empty keeps empty values and bare keys",
    query: '{app="cfg"} | logfmt --keep-empty',
    params: LOGS,
    want: streams(
      stream({ ...CFG, retries: "5", after: "1" }, C2),
      stream({ ...CFG, mode: "", retries: "3", flag: "" }, C1),
    ),
  },
  {
    name: "logfmt with parameters",
    query: '{app="web", level="error"} | logfmt code="status", latency | keep code, latency',
    params: LOGS,
    want: streams(stream({ code: "500", latency: "2s" }, E1), stream({ code: "503", latency: "750ms" }, E2)),
  },
  {
    name: "decolorize then regexp",
    query: '{app="edge"} | decolorize | regexp "(?P<level>[A-Z]+) (?P<ip>\\\\S+) - (?P<verb>\\\\w+)"',
    params: LOGS,
    want: streams(
      stream({ ...EDGE, level: "INFO", ip: "10.1.1.1", verb: "GET" }, as(G1, "INFO 10.1.1.1 - GET /health 200 3ms")),
      stream(
        { ...EDGE, level: "ERROR", ip: "192.168.0.5", verb: "POST" },
        as(G2, "ERROR 192.168.0.5 - POST /upload 413 95ms"),
      ),
    ),
  },
  {
    name: "pattern, a numeric filter and line_format",
    query:
      '{app="edge"} | pattern "<_> <ip> - <verb> <path> <code> <dur>" | code >= 400 | line_format "{{.verb}} {{.path}} took {{.dur}}"',
    params: LOGS,
    want: streams(
      stream(
        { ...EDGE, ip: "192.168.0.5", verb: "POST", path: "/upload", code: "413", dur: "95ms" },
        as(G2, "POST /upload took 95ms"),
      ),
    ),
  },
  {
    name: "unpack, __line__ and __timestamp__",
    query: '{app="pack"} | unpack | line_format "{{.region}}: {{__line__}} @{{ __timestamp__ | unixEpochNanos }}"',
    params: LOGS,
    want: streams(stream({ ...PACK, region: "eu", host: "h1" }, as(P1, `eu: disk full @${P1[0]}`))),
  },

  // ---- label filters
  {
    name: "numeric, duration and bytes filters with or and a comma",
    query: '{app="web"} | logfmt | status >= 500 or latency > 300ms, size >= 1KB | keep path',
    params: LOGS,
    want: streams(stream({ path: "/orders" }, W2, E1), stream({ path: "/users" }, E2)),
  },
  {
    name: "string filters with and",
    query:
      '{app="web"} | logfmt | method=~"GET|DELETE" and path!="/orders" | line_format "{{.method}} {{.path}}" | keep level',
    params: LOGS,
    want: streams(stream({ level: "error" }, as(E2, "DELETE /users")), stream({ level: "info" }, as(W3, "GET /users"))),
  },
  {
    name: "bytes and duration equality",
    query: '{app="web"} | logfmt | size == 20KB or latency = 2s | keep level',
    params: LOGS,
    want: streams(stream({ level: "error" }, E1), stream({ level: "info" }, W2)),
  },

  // ---- line_format and label_format
  {
    name: "line_format functions",
    query:
      '{app="web"} | logfmt | line_format `{{ToUpper .path}} {{printf "%s=%s" .method .status}} {{default "none" .msg}} {{trunc 3 .latency}} {{regexReplaceAll "[0-9]+" .client "N"}}` | keep app',
    params: LOGS,
    want: streams(
      stream(
        { app: "web" },
        as(E2, "/USERS DELETE=503 db down 750 N.N.N.N"),
        as(W3, "/USERS GET=200 none 2.2 N.N.N.N"),
        as(W2, "/ORDERS POST=201 none 500 N.N.N.N"),
        as(E1, "/ORDERS GET=500 none 2s N.N.N.N"),
        as(W1, "/ORDERS GET=200 none 250 N.N.N.N"),
      ),
    ),
  },
  {
    name: "label_format with a template and a rename",
    query:
      '{app="web", level="error"} | logfmt | label_format code="{{.status}}-{{ToLower .method}}", route=path | keep code, route, path',
    params: LOGS,
    want: streams(
      stream({ code: "500-get", route: "/orders" }, E1),
      stream({ code: "503-delete", route: "/users" }, E2),
    ),
  },
  {
    name: "drop by name and by matcher",
    query: '{app="web"} | drop level="error", env',
    params: LOGS,
    want: streams(stream({ app: "web", level: "info" }, W3, W2, W1), stream({ app: "web" }, E2, E1)),
  },

  // ---- range aggregations
  {
    name: "count_over_time",
    query: 'count_over_time({app="web"}[2m])',
    params: AT_120,
    want: vector(sample(WEB_ERROR, 120, 2), sample(WEB_INFO, 120, 3)),
  },
  {
    name: "rate splits series by structured metadata",
    query: 'rate({app="worker"}[1m])',
    params: AT_60,
    want: vector(sample({ ...WORKER, trace_id: "t1" }, 60, 1 / 60), sample({ ...WORKER, trace_id: "t2" }, 60, 1 / 60)),
  },
  {
    name: "a vector orders shorter label sets first",
    query: 'count_over_time({app="worker"}[2m])',
    params: AT_120,
    want: vector(
      sample(WORKER, 120, 1),
      sample({ ...WORKER, trace_id: "t1" }, 120, 1),
      sample({ ...WORKER, trace_id: "t2" }, 120, 1),
    ),
  },
  {
    name: "bytes_over_time",
    query: 'bytes_over_time({app="edge"}[2m])',
    params: AT_120,
    want: vector(sample(EDGE, 120, bytes(G1, G2))),
  },
  {
    name: "bytes_rate",
    query: 'bytes_rate({app="pack"}[1m])',
    params: AT_60,
    want: vector(sample(PACK, 60, bytes(P1) / 60)),
  },
  {
    name: "count_over_time with an ip() line filter",
    query: 'count_over_time({app="web"} |= ip("10.0.0.0/8") [2m])',
    params: AT_120,
    want: vector(sample(WEB_ERROR, 120, 1), sample(WEB_INFO, 120, 1)),
  },
  {
    name: "count_over_time with a pattern line filter",
    query: 'count_over_time({app="web"} |> "<_> path=/orders <_>" [2m])',
    params: AT_120,
    want: vector(sample(WEB_ERROR, 120, 1), sample(WEB_INFO, 120, 2)),
  },
  {
    name: "absent_over_time of missing streams",
    query: 'absent_over_time({app="nope"}[1m])',
    params: AT_60,
    want: vector(sample({ app: "nope" }, 60, 1)),
  },
  {
    name: "absent_over_time of present streams",
    query: 'absent_over_time({app="pack"}[1m])',
    params: AT_60,
    want: vector(),
  },
  {
    name: "absent_over_time over a range, at nanosecond precision",
    query: 'absent_over_time({app="pack"}[30s])',
    params: `start=${at(0)}&end=${at(120)}&step=30`,
    want: matrix(series({ app: "pack" }, [0, 1], [30, 1], [90, 1], [120, 1])),
  },
  {
    name: "offset",
    query: 'count_over_time({app="web"}[1m] offset 1m)',
    params: AT_120,
    want: vector(sample(WEB_ERROR, 120, 1), sample(WEB_INFO, 120, 2)),
  },

  // ---- unwrap
  {
    name: "sum_over_time of bytes()",
    query: 'sum_over_time({app="web"} | logfmt | keep level, size | unwrap bytes(size) [2m])',
    params: AT_120,
    want: vector(sample({ level: "error" }, 120, 100), sample({ level: "info" }, 120, 22012)),
  },
  {
    name: "rate of an unwrapped value",
    query: 'rate({app="web"} | logfmt | keep level, size | unwrap bytes(size) [2m])',
    params: AT_120,
    want: vector(sample({ level: "error" }, 120, 100 / 120), sample({ level: "info" }, 120, 22012 / 120)),
  },
  ...(
    [
      // Latencies: error 2s, 750ms; info 250ms, 500ms, 2.25s (in that order).
      ["avg_over_time(", 1.375, 1],
      ["min_over_time(", 0.75, 0.25],
      ["quantile_over_time(0.5, ", 1.375, 0.5],
      ["first_over_time(", 2, 0.25],
      ["last_over_time(", 0.75, 2.25],
    ] as const
  ).map(([call, error, info]) => ({
    name: `${call.slice(0, call.indexOf("("))} of duration() by level`,
    query: `${call}{app="web"} | logfmt | unwrap duration(latency) [2m]) by (level)`,
    params: AT_120,
    want: vector(sample({ level: "error" }, 120, error), sample({ level: "info" }, 120, info)),
  })),
  {
    name: "max_over_time with an __error__ post-filter",
    query: 'max_over_time({app="web"} | logfmt | unwrap status | __error__="" [2m]) by (level)',
    params: AT_120,
    want: vector(sample({ level: "error" }, 120, 503), sample({ level: "info" }, 120, 201)),
  },
  // Error latencies 2s and 750ms: mean 1.375, deviations ±0.625.
  ...(
    [
      ["stdvar_over_time", 0.390625],
      ["stddev_over_time", 0.625],
    ] as const
  ).map(([op, value]) => ({
    name: op,
    query: `${op}({app="web", level="error"} | logfmt | unwrap duration(latency) [2m]) by (level)`,
    params: AT_120,
    want: vector(sample({ level: "error" }, 120, value)),
  })),
  {
    // Samples 500 at 25s and 503 at 85s in (0s, 120s]: an increase of 3 over 60s, extrapolated by 25s to the start
    // and 35s to the end (both under 1.1 times the 60s between samples): 3 * 120 / 60 = 6, per second 6 / 120.
    name: "rate_counter",
    query: 'rate_counter({app="web", level="error"} | logfmt | keep level, status | unwrap status [2m])',
    params: AT_120,
    want: vector(sample({ level: "error" }, 120, 0.05)),
  },

  // ---- vector aggregations
  {
    name: "sum by",
    query: 'sum by (app) (count_over_time({env=~".+"}[2m]))',
    params: AT_120,
    want: vector(
      sample({ app: "cfg" }, 120, 2),
      sample({ app: "edge" }, 120, 2),
      sample({ app: "pack" }, 120, 1),
      sample({ app: "web" }, 120, 5),
      sample({ app: "worker" }, 120, 3),
    ),
  },
  {
    name: "sum without",
    query: 'sum without (level) (count_over_time({app="web"}[2m]))',
    params: AT_120,
    want: vector(sample({ app: "web", env: "prod" }, 120, 5)),
  },
  {
    name: "avg by",
    query: 'avg by (app) (count_over_time({env="prod"}[2m]))',
    params: AT_120,
    want: vector(sample({ app: "web" }, 120, 2.5), sample({ app: "worker" }, 120, 1)),
  },
  {
    name: "max by",
    query: 'max by (env) (count_over_time({env=~".+"}[2m]))',
    params: AT_120,
    want: vector(sample({ env: "dev" }, 120, 2), sample({ env: "prod" }, 120, 3)),
  },
  {
    name: "min by",
    query: 'min by (env) (count_over_time({env=~".+"}[2m]))',
    params: AT_120,
    want: vector(sample({ env: "dev" }, 120, 1), sample({ env: "prod" }, 120, 1)),
  },
  {
    name: "count by",
    query: 'count by (env) (count_over_time({env=~".+"}[2m]))',
    params: AT_120,
    want: vector(sample({ env: "dev" }, 120, 3), sample({ env: "prod" }, 120, 5)),
  },
  {
    name: "stdvar",
    query: 'stdvar by (app) (count_over_time({app="web"}[2m]))',
    params: AT_120,
    want: vector(sample({ app: "web" }, 120, 0.25)),
  },
  {
    name: "stddev",
    query: 'stddev by (app) (count_over_time({app="web"}[2m]))',
    params: AT_120,
    want: vector(sample({ app: "web" }, 120, 0.5)),
  },
  {
    name: "topk",
    query: 'topk(2, sum by (app) (count_over_time({env=~".+"}[2m])))',
    params: AT_120,
    want: vector(sample({ app: "web" }, 120, 5), sample({ app: "worker" }, 120, 3)),
  },
  {
    name: "bottomk by",
    query: 'bottomk by (env) (1, sum by (app, env) (count_over_time({env=~".+"}[2m])))',
    params: AT_120,
    want: vector(sample({ app: "pack", env: "dev" }, 120, 1), sample({ app: "worker", env: "prod" }, 120, 3)),
  },
  {
    name: "approx_topk answers as topk on an instant query",
    query: 'approx_topk(2, sum by (app) (count_over_time({env=~".+"}[2m])))',
    params: AT_120,
    want: vector(sample({ app: "web" }, 120, 5), sample({ app: "worker" }, 120, 3)),
  },
  {
    name: "sort",
    query: 'sort(sum by (app) (count_over_time({app=~"web|worker|pack"}[2m])))',
    params: AT_120,
    want: vector(sample({ app: "pack" }, 120, 1), sample({ app: "worker" }, 120, 3), sample({ app: "web" }, 120, 5)),
  },
  {
    name: "sort_desc",
    query: 'sort_desc(sum by (app) (count_over_time({app=~"web|worker|pack"}[2m])))',
    params: AT_120,
    want: vector(sample({ app: "web" }, 120, 5), sample({ app: "worker" }, 120, 3), sample({ app: "pack" }, 120, 1)),
  },

  // ---- binary operations
  {
    name: "arithmetic with scalars",
    query: 'sum(count_over_time({app="web"}[2m])) * 2 + 1',
    params: AT_120,
    want: vector(sample({}, 120, 11)),
  },
  {
    name: "power",
    query: 'sum(count_over_time({app="web"}[2m])) ^ 2',
    params: AT_120,
    want: vector(sample({}, 120, 25)),
  },
  {
    name: "modulo",
    query: 'sum by (app) (count_over_time({env=~".+"}[2m])) % 2',
    params: AT_120,
    want: vector(
      sample({ app: "cfg" }, 120, 0),
      sample({ app: "edge" }, 120, 0),
      sample({ app: "pack" }, 120, 1),
      sample({ app: "web" }, 120, 1),
      sample({ app: "worker" }, 120, 1),
    ),
  },
  {
    name: "division with ignoring and group_left",
    query:
      'count_over_time({app="web"}[2m]) / ignoring (level) group_left sum without (level) (count_over_time({app="web"}[2m]))',
    params: AT_120,
    want: vector(sample(WEB_ERROR, 120, 0.4), sample(WEB_INFO, 120, 0.6)),
  },
  {
    name: "multiplication with on and group_right",
    query:
      'sum without (level) (count_over_time({app="web"}[2m])) * on (app) group_right count_over_time({app="web"}[2m])',
    params: AT_120,
    want: vector(sample(WEB_ERROR, 120, 10), sample(WEB_INFO, 120, 15)),
  },
  {
    name: "comparison filters",
    query: 'sum by (app) (count_over_time({env=~".+"}[2m])) > 2',
    params: AT_120,
    want: vector(sample({ app: "web" }, 120, 5), sample({ app: "worker" }, 120, 3)),
  },
  {
    name: "comparison with bool",
    query: 'sum by (app) (count_over_time({env=~".+"}[2m])) > bool 2',
    params: AT_120,
    want: vector(
      sample({ app: "cfg" }, 120, 0),
      sample({ app: "edge" }, 120, 0),
      sample({ app: "pack" }, 120, 0),
      sample({ app: "web" }, 120, 1),
      sample({ app: "worker" }, 120, 1),
    ),
  },
  {
    name: "equality between vectors and a number",
    query: 'count_over_time({app="web"}[2m]) == 2',
    params: AT_120,
    want: vector(sample(WEB_ERROR, 120, 2)),
  },
  {
    name: "and on",
    query:
      'sum by (app) (count_over_time({env="prod"}[2m])) and on (app) sum by (app) (count_over_time({app="web"}[2m]))',
    params: AT_120,
    want: vector(sample({ app: "web" }, 120, 5)),
  },
  {
    name: "or",
    query: 'sum by (app) (count_over_time({app="pack"}[2m])) or sum by (app) (count_over_time({app="edge"}[2m]))',
    params: AT_120,
    want: vector(sample({ app: "edge" }, 120, 2), sample({ app: "pack" }, 120, 1)),
  },
  {
    name: "unless",
    query: 'sum by (app) (count_over_time({env="prod"}[2m])) unless sum by (app) (count_over_time({app="worker"}[2m]))',
    params: AT_120,
    want: vector(sample({ app: "web" }, 120, 5)),
  },

  // ---- label_replace, vector(), literals
  {
    name: "label_replace",
    query: 'label_replace(sum by (app) (count_over_time({app="edge"}[2m])), "svc", "$1-x", "app", "(.*)")',
    params: AT_120,
    want: vector(sample({ app: "edge", svc: "edge-x" }, 120, 2)),
  },
  { name: "vector()", query: "vector(3)", params: AT_120, want: vector(sample({}, 120, 3)) },
  {
    name: "a literal is a scalar",
    query: "2 * 3",
    params: AT_120,
    want: { resultType: "scalar", result: [t(120), "6"] },
  },
  {
    name: "a literal over a range",
    query: "1 + 1",
    params: `start=${at(0)}&end=${at(120)}&step=60`,
    want: matrix(series({}, [0, 2], [60, 2], [120, 2])),
  },
  {
    name: "or vector(0) fills the steps without data",
    query: 'sum(count_over_time({app="nope"}[1m])) or vector(0)',
    params: `start=${at(0)}&end=${at(120)}&step=60`,
    want: matrix(series({}, [0, 0], [60, 0], [120, 0])),
  },

  // ---- range queries
  {
    name: "sum by of count_over_time over steps",
    query: 'sum by (level) (count_over_time({app="web"}[1m]))',
    params: `start=${at(0)}&end=${at(120)}&step=60`,
    want: matrix(series({ level: "error" }, [60, 1], [120, 1]), series({ level: "info" }, [60, 2], [120, 1])),
  },
  {
    name: "rate over steps",
    query: 'rate({app="edge"}[30s])',
    params: `start=${at(0)}&end=${at(60)}&step=30s`,
    want: matrix(series(EDGE, [30, 1 / 30], [60, 1 / 30])),
  },
  {
    name: "count_over_time after a parser over steps",
    query: 'count_over_time({app="worker"} | json job | __error__="" [1m])',
    params: `start=${at(0)}&end=${at(120)}&step=60`,
    want: matrix(
      series({ ...WORKER, trace_id: "t2", job: "email" }, [60, 1]),
      series({ ...WORKER, trace_id: "t1", job: "resize" }, [60, 1]),
    ),
  },
];

function resultSuite(name: string, open: () => Promise<Store>): void {
  describe(`LogQL results on ${name}`, () => {
    let store: Store;
    let api: LokiHttp;

    before(async () => {
      store = await open();
      await load(store);
      api = await startLokiHttp(store);
    });
    after(async () => {
      await api.close();
      await store.close();
    });

    for (const c of CASES) {
      it(`${c.name}: ${c.query}`, async () => {
        assert.deepStrictEqual(await api.result(c.query, c.params), c.want);
      });
    }

    it("keeps tenants apart", async () => {
      assert.deepStrictEqual(
        await api.result('{app="web"}', LOGS, "globex"),
        streams(stream(WEB_INFO, [at(10), "another tenant"])),
      );
    });

    it("refuses approx_topk on a range query, as Loki does", async () => {
      const query = 'approx_topk(2, sum by (app) (count_over_time({env=~".+"}[2m])))';
      const got = await api.get(`/loki/api/v1/query_range?query=${encodeURIComponent(query)}&${LOGS}&step=60`);
      assert.equal(got.status, 400, got.text);
      assert.match(got.text, /count min sketches are only supported on instant queries/);
    });

    it("refuses a pattern line filter with a named capture", async () => {
      const got = await api.get(
        `/loki/api/v1/query_range?query=${encodeURIComponent('{app="web"} |> "<_> <name>"')}&${LOGS}`,
      );
      assert.equal(got.status, 400, got.text);
      // Loki's words, checked against Loki: the stage is named, the error unplaced.
      assert.equal(
        got.text.trim(),
        `parse error : stage '|> "<_> <name>"' : named captures are not allowed: found '<name>'`,
      );
    });
  });
}

onBothStores("logqlresults", resultSuite);
