import { availableParallelism } from "node:os";
import type { Context } from "hono";
import { stringify } from "yaml";
import type { Config } from "../../config.js";
import { VERSION } from "../../common/version.js";
import { childrenOf, type Expr } from "./syntax/ast.js";
import { DEFAULT_LOOKBACK_MS, DEFAULT_MAX_SAMPLES } from "./evaluation/loader.js";
import { formatPromDuration, prettifyPromql } from "./syntax/printer.js";
import { BadParameter, parseTimeParam } from "./params.js";
import { parsePromql, PromqlParseError } from "./syntax/parser.js";

// The Prometheus API's status and helper endpoints (web/api/v1: status/buildinfo, status/config, status/flags,
// status/runtimeinfo, format_query, query_exemplars) in the shapes Prometheus answers, checked against Debian's
// Prometheus 2.42 in test/prometheus-compat.test.ts. Where a field is about Prometheus' own machinery, the answer
// is Bifrost's nearest equivalent; docs/grafana.md lists them.

/** The Prometheus release whose HTTP API these answers were compared with; clients pick features by it. */
export const PROMETHEUS_API_VERSION = "2.42.0";

/** The defaults of `start` and `end`: Prometheus' minimum and maximum times, before and after any sample. */
const MIN_TIME_MS = -Infinity;
const MAX_TIME_MS = Infinity;

export interface StatusOptions {
  config: Config;
  /** When the query service started: runtimeinfo's lastConfigTime (the configuration is read once, at start). */
  startedAtMs: number;
}

export interface StatusRoute {
  path: string;
  methods: ("GET" | "POST")[];
  /** The `data` of a success, or a Response to send as it is; throws BadParameter for `bad_data`. */
  handler: (c: Context, params: URLSearchParams) => Promise<unknown>;
}

/** Configuration keys whose values are credentials: status/config shows `<secret>` instead, as Prometheus does. */
const SECRET_KEYS = new Set(["password", "hmac_secret", "auth_token", "tokens", "key"]);

function redacted(value: unknown, key = ""): unknown {
  if (SECRET_KEYS.has(key) && value !== "" && value !== undefined) {
    return Array.isArray(value) ? value.map(() => "<secret>") : "<secret>";
  }
  if (Array.isArray(value)) return value.map((item) => redacted(item));
  if (typeof value === "object" && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redacted(v, k)]));
  return value;
}

const DAY_MS = 86_400_000;

/** Prometheus flags with their Bifrost equivalents, named and written as Prometheus names and writes them. */
function flags(config: Config): Record<string, string> {
  const { query, storage, log } = config;
  return {
    "log.format": "json",
    "log.level": log.level,
    "query.lookback-delta": formatPromDuration(DEFAULT_LOOKBACK_MS),
    "query.max-samples": String(DEFAULT_MAX_SAMPLES),
    "query.timeout": formatPromDuration(query.limits.query_timeout_ms),
    "rules.alert.for-outage-tolerance": formatPromDuration(query.ruler.outage_tolerance_ms),
    "storage.tsdb.retention.time": formatPromDuration(storage.retention.samples_days * DAY_MS),
    "web.external-url": query.ruler.external_url,
    "web.listen-address": query.listen,
  };
}

function runtimeInfo(options: StatusOptions) {
  const startedMs = Date.now() - process.uptime() * 1000;
  return {
    startTime: new Date(startedMs).toISOString(),
    CWD: process.cwd(),
    // The configuration is read once at start, and a bad one stops the start.
    reloadConfigSuccess: true,
    lastConfigTime: new Date(Math.floor(options.startedAtMs / 1000) * 1000).toISOString().replace(".000Z", "Z"),
    // No TSDB write-ahead log here: the query service reads the store.
    corruptionCount: 0,
    // Node.js has no goroutines; the nearest count is of the async resources keeping the process busy.
    goroutineCount: process.getActiveResourcesInfo().length,
    GOMAXPROCS: availableParallelism(),
    GOGC: "",
    GODEBUG: "",
    storageRetention: formatPromDuration(options.config.storage.retention.samples_days * DAY_MS),
  };
}

/** A query parameter that must be an expression; format_query says which parameter, as Prometheus does. */
function parseQuery(text: string, wrap: boolean): Expr {
  try {
    return parsePromql(text);
  } catch (err) {
    if (err instanceof PromqlParseError)
      throw new BadParameter(wrap ? `invalid parameter "query": ${err.message}` : err.message);
    throw err;
  }
}

function exemplarTime(params: URLSearchParams, name: string, fallback: number): number {
  const text = params.get(name);
  if (text === null || text === "") return fallback;
  try {
    return parseTimeParam(text, MIN_TIME_MS, MAX_TIME_MS);
  } catch (err) {
    throw new BadParameter(`invalid parameter "${name}": Invalid time value for '${name}': ${(err as Error).message}`);
  }
}

function hasSelector(expr: Expr): boolean {
  return expr.kind === "selector" || expr.kind === "matrix" || childrenOf(expr).some(hasSelector);
}

/** The routes, each under the Prometheus API's prefixes; those that read the configuration only with `status`. */
export function statusRoutes(status: StatusOptions | undefined): StatusRoute[] {
  const routes: StatusRoute[] = [
    {
      path: "/api/v1/status/buildinfo",
      methods: ["GET"],
      // No `features` or `application`: Grafana takes the source for a Prometheus, whose rules are read-only.
      handler: async () => ({
        version: PROMETHEUS_API_VERSION,
        revision: `bifrost-${VERSION}`,
        branch: "",
        buildUser: "",
        buildDate: "",
        goVersion: "",
      }),
    },
    {
      path: "/api/v1/format_query",
      methods: ["GET", "POST"],
      handler: async (_c, params) => prettifyPromql(parseQuery(params.get("query") ?? "", true)),
    },
    {
      // Bifrost keeps no exemplars: every valid request finds none.
      path: "/api/v1/query_exemplars",
      methods: ["GET", "POST"],
      handler: async (c, params) => {
        const startMs = exemplarTime(params, "start", MIN_TIME_MS);
        const endMs = exemplarTime(params, "end", MAX_TIME_MS);
        if (endMs < startMs) throw new BadParameter("end timestamp must not be before start timestamp");
        const expr = parseQuery(params.get("query") ?? "", false);
        // Prometheus answers an expression without selectors with an empty 204.
        return hasSelector(expr) ? [] : c.body(null, 204);
      },
    },
  ];
  if (status === undefined) return routes;
  return [
    ...routes,
    {
      path: "/api/v1/status/config",
      methods: ["GET"],
      handler: async () => ({ yaml: stringify(redacted(status.config)) }),
    },
    { path: "/api/v1/status/flags", methods: ["GET"], handler: async () => flags(status.config) },
    { path: "/api/v1/status/runtimeinfo", methods: ["GET"], handler: async () => runtimeInfo(status) },
  ];
}
