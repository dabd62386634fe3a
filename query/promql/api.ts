import { tenantOf } from "../../common/auth.js";
import { TenantLimitError, type TenantLimits } from "../../common/limits.js";
import type { Context, Hono } from "hono";
import type { Logger } from "../../common/log.js";
import { SampleKind } from "../../proto/batch.js";
import type { Labels } from "../../proto/labels.js";
import type { LabelMatcher, Store } from "../../storage/store.js";
import { StoreError } from "../../storage/values.js";
import { type Expr, typeName, typeOf } from "./syntax/ast.js";
import { instantQuery, rangeQuery } from "./evaluation/evaluator.js";
import type { EngineOptions, QuerySource } from "./evaluation/loader.js";
import { BadParameter, parseDurationParam, parseTimeParam } from "./params.js";
import { formatFloatF } from "../../common/go/float-format.js";
import { parsePromql, PromqlParseError } from "./syntax/parser.js";
import { PromqlEvalError, type Series, type Value } from "./evaluation/values.js";
import { type StatusOptions, statusRoutes } from "./status.js";

// The Prometheus HTTP API (web/api/v1) over the metrics the aggregator stores, with its JSON shapes, parameter
// parsing and error types, so that Grafana and promtool-style clients work against it unchanged.

export interface PrometheusLimits {
  /** Most samples one query may read from the store. */
  maxSamples?: number;
  /** Most points per series of a range query (Prometheus: 11,000). */
  maxPointsPerSeries?: number;
  lookbackMs?: number;
  /** How far back /api/v1/metadata looks for metric kinds. */
  metadataWindowMs?: number;
}

export interface PrometheusRoutesOptions {
  store: Store;
  limits?: PrometheusLimits;
  /** Per-tenant max_query_length_hours, max_query_series and query_timeout_ms; none without it. */
  tenantLimits?: TenantLimits;
  log: Logger;
  /** Path prefixes the API is served under; by default both `/api/v1` and `/prometheus/api/v1`. */
  prefixes?: string[];
  /** The clock for defaults (`time` of an instant query, the metadata window). */
  now?: () => number;
  /** What status/config, status/flags and status/runtimeinfo report; without it they are not served. */
  status?: StatusOptions;
}

const MAX_POINTS = 11_000;
/** Prometheus' extremes as times, clamped to what both stores' time types hold. */
const MIN_MS = 0;
const MAX_MS = 9_000_000_000_000;
const METADATA_WINDOW_MS = 24 * 3_600_000;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/**
 * Response header naming the source that answered each range function rollups could answer, as
 * `max_over_time[300s]=rollup_1m, count_over_time[90s]=raw (range or evaluation times not multiples ...)`.
 */
export const SOURCES_HEADER = "X-Bifrost-Query-Sources";

function sourcesHeader(sources: QuerySource[]): string {
  return sources.map((s) => `${s.expr}=${s.source}${s.reason === undefined ? "" : ` (${s.reason})`}`).join(", ");
}

class ApiError extends Error {
  constructor(
    readonly status: 400 | 422 | 500 | 503,
    readonly errorType: "bad_data" | "execution" | "internal" | "unavailable" | "timeout",
    message: string,
  ) {
    super(message);
  }
}

function invalidParam(name: string, err: unknown): ApiError {
  return new ApiError(400, "bad_data", `invalid parameter ${JSON.stringify(name)}: ${(err as Error).message}`);
}

/** Query-string parameters, and those of a form-encoded POST body (Go's r.Form: the body first). */
async function requestParams(c: Context): Promise<URLSearchParams> {
  const params = new URLSearchParams();
  if (c.req.method === "POST" && (c.req.header("content-type") ?? "").startsWith("application/x-www-form-urlencoded")) {
    for (const [key, value] of new URLSearchParams(await c.req.text())) params.append(key, value);
  }
  for (const [key, value] of new URL(c.req.url).searchParams) params.append(key, value);
  return params;
}

function timeParam(params: URLSearchParams, name: string, fallback: number): number {
  const text = params.get(name);
  if (text === null || text === "") return fallback;
  try {
    return parseTimeParam(text, MIN_MS, MAX_MS);
  } catch (err) {
    throw invalidParam(name, err);
  }
}

function parseQueryParam(params: URLSearchParams): Expr {
  try {
    return parsePromql(params.get("query") ?? "");
  } catch (err) {
    if (err instanceof PromqlParseError) throw invalidParam("query", err);
    throw err;
  }
}

/** `match[]` selectors, each a plain vector selector. */
function matchParams(params: URLSearchParams): LabelMatcher[][] {
  return params.getAll("match[]").map((text) => {
    let expr: Expr;
    try {
      expr = parsePromql(text);
    } catch (err) {
      throw invalidParam("match[]", err);
    }
    if (expr.kind !== "selector") throw invalidParam("match[]", new Error(`${text} is not a vector selector`));
    return expr.matchers;
  });
}

function point(timeMs: number, value: number): [number, string] {
  return [timeMs / 1000, formatFloatF(value)];
}

function plainLabels(labels: Labels): Record<string, string> {
  return { ...labels };
}

function matrixJson(series: Series[]) {
  return series.map((s) => ({ metric: plainLabels(s.labels), values: s.points.map((p) => point(p.timeMs, p.value)) }));
}

function instantJson(value: Value, timeMs: number) {
  switch (value.type) {
    case "scalar":
      return { resultType: "scalar", result: point(timeMs, value.value) };
    case "string":
      return { resultType: "string", result: [timeMs / 1000, value.value] };
    case "vector":
      return {
        resultType: "vector",
        // In evaluation order: selectors give series sorted by labels, and sort() and topk() their own order.
        result: value.samples.map((s) => ({ metric: plainLabels(s.labels), value: point(timeMs, s.value) })),
      };
    case "matrix":
      return { resultType: "matrix", result: matrixJson(value.series) };
  }
}

/** The Prometheus metric type of a stored sample kind, and the metric family its name belongs to. */
function metadataOf(name: string, kind: SampleKind): { family: string; type: string } {
  switch (kind) {
    case SampleKind.Counter:
      return { family: name, type: "counter" };
    case SampleKind.Gauge:
      return { family: name, type: "gauge" };
    case SampleKind.HistogramBucket:
    case SampleKind.HistogramSum:
    case SampleKind.HistogramCount:
      return { family: name.replace(/_(bucket|sum|count)$/, ""), type: "histogram" };
    default:
      return { family: name, type: "unknown" };
  }
}

export function prometheusRoutes(app: Hono, options: PrometheusRoutesOptions): void {
  const { store, limits = {}, log, tenantLimits } = options;

  /**
   * Evaluates within the tenant's query_timeout_ms (the evaluation is aborted at its next turn once it passes), and
   * checks the answer's series against max_query_series.
   */
  const limited = async <T>(
    c: Context,
    evaluate: (signal: AbortSignal | undefined) => Promise<T>,
    seriesOf: (value: T) => number,
  ): Promise<T> => {
    if (tenantLimits === undefined) return evaluate(undefined);
    const tenant = tenantOf(c);
    const timeoutMs = tenantLimits.get(tenant, "query_timeout_ms");
    const timedOut = () =>
      new ApiError(
        503,
        "timeout",
        tenantLimits.error(tenant, "query_timeout_ms", "query timed out in query execution").message,
      );
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort(timedOut());
        reject(timedOut());
      }, timeoutMs);
    });
    try {
      const value = await Promise.race([evaluate(abort.signal), timeout]);
      const series = seriesOf(value);
      const max = tenantLimits.get(tenant, "max_query_series");
      if (series > max)
        throw tenantLimits.error(
          tenant,
          "max_query_series",
          `the query returns ${series} series, more than the ${max} allowed`,
        );
      return value;
    } finally {
      clearTimeout(timer);
    }
  };

  const checkLength = (c: Context, startMs: number, endMs: number): void => {
    if (tenantLimits === undefined) return;
    const tenant = tenantOf(c);
    const hours = tenantLimits.get(tenant, "max_query_length_hours");
    if (hours > 0 && endMs - startMs > hours * 3_600_000) {
      throw tenantLimits.error(
        tenant,
        "max_query_length_hours",
        `the query time range exceeds the limit (query length: ${(endMs - startMs) / 3_600_000}h, limit: ${hours}h)`,
      );
    }
  };
  const now = options.now ?? Date.now;
  const maxPoints = limits.maxPointsPerSeries ?? MAX_POINTS;
  const engine = (c: Context, sources: QuerySource[], signal: AbortSignal | undefined): EngineOptions => ({
    store,
    tenant: tenantOf(c),
    sources,
    ...(signal !== undefined ? { signal } : {}),
    ...(limits.lookbackMs !== undefined ? { lookbackMs: limits.lookbackMs } : {}),
    ...(limits.maxSamples !== undefined ? { maxSamples: limits.maxSamples } : {}),
  });

  const handle = (handler: (c: Context, params: URLSearchParams) => Promise<unknown>) => async (c: Context) => {
    try {
      const data = await handler(c, await requestParams(c));
      if (data instanceof Response) return data;
      return c.json({ status: "success", data });
    } catch (err) {
      const error = asApiError(err);
      if (error.status >= 500) log.warn({ err, path: c.req.path }, "prometheus API request failed");
      return c.json({ status: "error", errorType: error.errorType, error: error.message }, error.status);
    }
  };

  const routes: [string, (c: Context, params: URLSearchParams) => Promise<unknown>][] = [
    [
      "/api/v1/query",
      async (c, params) => {
        const expr = parseQueryParam(params);
        const timeMs = timeParam(params, "time", now());
        const sources: QuerySource[] = [];
        const value = await limited(
          c,
          (signal) => instantQuery(engine(c, sources, signal), expr, timeMs),
          (v) => (v.type === "vector" ? v.samples.length : v.type === "matrix" ? v.series.length : 1),
        );
        if (sources.length > 0) c.header(SOURCES_HEADER, sourcesHeader(sources));
        return instantJson(value, timeMs);
      },
    ],
    [
      "/api/v1/query_range",
      async (c, params) => {
        const startMs = requiredTime(params, "start");
        const endMs = requiredTime(params, "end");
        if (endMs < startMs) throw invalidParam("end", new Error("end timestamp must not be before start time"));
        checkLength(c, startMs, endMs);
        const stepText = params.get("step");
        if (stepText === null || stepText === "")
          throw invalidParam("step", new Error('cannot parse "" to a valid duration'));
        let stepMs: number;
        try {
          stepMs = parseDurationParam(stepText);
        } catch (err) {
          throw invalidParam("step", err);
        }
        if (stepMs <= 0)
          throw invalidParam(
            "step",
            new Error("zero or negative query resolution step widths are not accepted. Try a positive integer"),
          );
        if ((endMs - startMs) / stepMs > maxPoints) {
          throw new ApiError(
            400,
            "bad_data",
            `exceeded maximum resolution of ${maxPoints.toLocaleString("en-US")} points per timeseries. Try decreasing the query resolution (?step=XX)`,
          );
        }
        const expr = parseQueryParam(params);
        const type = typeOf(expr);
        if (type !== "scalar" && type !== "vector") {
          throw new ApiError(
            400,
            "bad_data",
            `invalid expression type "${typeName(type)}" for range query, must be Scalar or instant Vector`,
          );
        }
        const sources: QuerySource[] = [];
        const series = await limited(
          c,
          (signal) => rangeQuery(engine(c, sources, signal), expr, startMs, endMs, stepMs),
          (s) => s.length,
        );
        if (sources.length > 0) c.header(SOURCES_HEADER, sourcesHeader(sources));
        return { resultType: "matrix", result: matrixJson(series) };
      },
    ],
    [
      "/api/v1/series",
      async (c, params) => {
        const selectors = matchParams(params);
        if (selectors.length === 0) throw new ApiError(400, "bad_data", "no match[] parameter provided");
        const series = await store.series({ tenant: tenantOf(c), signal: "metrics", selectors, ...timeRange(params) });
        return series.map(plainLabels);
      },
    ],
    [
      "/api/v1/labels",
      async (c, params) =>
        store.labelNames({
          tenant: tenantOf(c),
          signal: "metrics",
          selectors: matchParams(params),
          ...timeRange(params),
        }),
    ],
    [
      "/api/v1/label/:name/values",
      async (c, params) => {
        const name = c.req.param("name")!;
        if (!LABEL_NAME.test(name)) throw new ApiError(400, "bad_data", `invalid label name: ${JSON.stringify(name)}`);
        return store.labelValues(
          { tenant: tenantOf(c), signal: "metrics", selectors: matchParams(params), ...timeRange(params) },
          name,
        );
      },
    ],
    [
      "/api/v1/metadata",
      async (c, params) => {
        const endMs = now();
        const startMs = endMs - (limits.metadataWindowMs ?? METADATA_WINDOW_MS);
        const wanted = params.get("metric") ?? "";
        const limit = countParam(params, "limit");
        const limitPerMetric = countParam(params, "limit_per_metric");
        const tenant = tenantOf(c);
        const metadata = new Map<string, { type: string; help: string; unit: string }[]>();
        const stored = await store.metricMetadata({
          tenant,
          startMs,
          endMs: endMs + 1,
          ...(wanted !== "" ? { metric: wanted } : {}),
        });
        for (const { name, type, help, unit } of stored)
          metadata.set(name, [...(metadata.get(name) ?? []), { type, help, unit }]);
        // Families without stored metadata (receivers that do not know it): their type from the sample kinds.
        const described = new Set(metadata.keys());
        const rollups = await store.selectRollups({
          tenant,
          matchers: [{ name: "__name__", op: "=~", value: ".+" }],
          resolution: "1h",
          startMs,
          endMs,
        });
        for (const series of rollups) {
          const name = series.labels["__name__"] ?? "";
          const { family, type } = metadataOf(name, series.kind);
          if (wanted !== "" && family !== wanted) continue;
          if (metadata.has(family) || described.has(name.replace(/_(bucket|sum|count)$/, ""))) continue;
          metadata.set(family, [{ type, help: "", unit: "" }]);
        }
        // Prometheus answers with a JSON object, whose keys Go writes sorted.
        const families = [...metadata.keys()].sort();
        return Object.fromEntries(
          families
            .slice(0, limit < 0 ? undefined : limit)
            .map((family) => [family, metadata.get(family)!.slice(0, limitPerMetric < 0 ? undefined : limitPerMetric)]),
        );
      },
    ],
  ];

  for (const prefix of options.prefixes ?? ["", "/prometheus"]) {
    for (const [path, handler] of routes) app.on(["GET", "POST"], prefix + path, handle(handler));
    for (const route of statusRoutes(options.status)) app.on(route.methods, prefix + route.path, handle(route.handler));
  }
}

/** A count parameter such as `limit`: -1 when absent (no limit). */
function countParam(params: URLSearchParams, name: string): number {
  const text = params.get(name) ?? "";
  if (text === "") return -1;
  const count = Number(text);
  if (!Number.isInteger(count)) throw new ApiError(400, "bad_data", `${name} must be a number`);
  return count;
}

function requiredTime(params: URLSearchParams, name: string): number {
  const text = params.get(name);
  if (text === null || text === "") throw invalidParam(name, new Error(`cannot parse "" to a valid timestamp`));
  return timeParam(params, name, 0);
}

function timeRange(params: URLSearchParams): { startMs: number; endMs: number } {
  // The store's end is exclusive; Prometheus includes a series seen exactly at `end`.
  return { startMs: timeParam(params, "start", MIN_MS), endMs: timeParam(params, "end", MAX_MS - 1) + 1 };
}

function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof BadParameter || err instanceof TenantLimitError) return new ApiError(400, "bad_data", err.message);
  if (err instanceof PromqlEvalError) return new ApiError(422, "execution", err.message);
  if (err instanceof StoreError)
    return new ApiError(err.transient ? 503 : 500, err.transient ? "unavailable" : "internal", err.message);
  return new ApiError(500, "internal", (err as Error).message);
}
