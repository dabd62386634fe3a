import type { Admission } from "../../common/admission.js";
import type { IngestContract } from "../../common/ingest-contract.js";
import type { Context, Hono } from "hono";
import { tenantOf } from "../../common/auth.js";
import type { PushLimits } from "../../common/config-sections.js";
import { formatGoDuration } from "../../common/go/duration-format.js";
import { TenantLimitError, TenantLimits } from "../../common/limits.js";
import type { Logger } from "../../common/log.js";
import { type IndexCacheConfig, indexCacheSchema, type QueryConfig } from "../config.js";
import { IndexCatalog } from "../catalog/index-catalog.js";
import { lokiPushRoute, type PushSink } from "../../common/loki-push.js";
import type { LabelMatcher, SeriesSelect, Store } from "../../storage/store.js";
import { nsToMsCeil, nsToMsFloor, StoreError } from "../../storage/values.js";
import { isLogExpr, type Expr } from "../../common/logql/syntax/ast.js";
import { evaluate, EvaluationError, QueryLimitError, type QueryParams } from "../logql/evaluation/evaluator.js";
import { prettifyLogQL } from "../../common/logql/syntax/printer.js";
import { LogQLParseError, parseLogQL, parseSelector } from "../../common/logql/syntax/parser.js";
import { StoreSource } from "../logql/pushdown/store-source.js";
import {
  CATEGORIZE_LABELS,
  ENCODING_FLAGS_HEADER,
  encodingFlags,
  entriesReturned,
  labelsJson,
  queryResponseJson,
} from "./marshal.js";
import {
  directionParam,
  intervalParam,
  limitParam,
  param,
  ParamError,
  stepParam,
  timeRange,
  type RequestParams,
} from "./params.js";
import { drilldownRoutes } from "./drilldown/routes.js";
import { alignToStep } from "./step-align.js";
import { tailRoute } from "./tail.js";
import { indexStats, volume, type VolumeRequest } from "./volume.js";

// The Loki HTTP API (pkg/loki/modules.go routes) over the Store: what Grafana's Loki data source, logcli and
// Promtail call. Errors are plain text with Loki's status codes: 400 for bad parameters, parse errors and limits,
// 504 when the query runs out of time, 500 for store failures.

export type QueryLimits = QueryConfig["limits"];

export interface LokiApiOptions {
  store: Store;
  limits: QueryLimits;
  pushLimits: PushLimits;
  /** Per-tenant values of the limits; without it every tenant has `limits` and `pushLimits`. */
  tenantLimits?: TenantLimits;
  /**
   * Where POST /loki/api/v1/push puts what it accepts, under which ingestion contract and admission budget;
   * without it the API takes no pushes.
   */
  push?: { sink: PushSink; contract: IngestContract; admission: Admission };
  log: Logger;
  now?: () => bigint;
  /** The in-memory index catalog of the index endpoints; its defaults when absent. */
  indexCache?: IndexCacheConfig;
}

class HttpError extends Error {
  constructor(
    readonly status: 400 | 404 | 500 | 503 | 504,
    message: string,
  ) {
    super(message);
  }
}

async function requestParams(c: Context): Promise<RequestParams> {
  const params: RequestParams = new Map(Object.entries(c.req.queries()));
  if (c.req.method === "POST" && (c.req.header("Content-Type") ?? "").includes("application/x-www-form-urlencoded")) {
    const form = new URLSearchParams(await c.req.text());
    for (const [name, value] of form) params.set(name, [...(params.get(name) ?? []), value]);
  }
  return params;
}

/** A selector without matchers, which /series and /index/volume read as every stream. */
const EMPTY_SELECTOR = /^\s*\{\s*\}\s*$/;

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export function lokiRoutes(app: Hono, options: LokiApiOptions): void {
  const { store, limits } = options;
  const now = options.now ?? nowNs;
  const index = IndexCatalog.over(store, options.indexCache ?? indexCacheSchema.parse({}));
  const tenantLimits =
    options.tenantLimits ??
    new TenantLimits({ collector: { limits: options.pushLimits }, query: { limits }, overrides: {} });

  const handle =
    (handler: (c: Context, params: RequestParams, tenant: string) => Promise<Response>) => async (c: Context) => {
      try {
        const params = await requestParams(c);
        return await handler(c, params, tenantOf(c));
      } catch (err) {
        const [status, message] = classify(err);
        if (status >= 500) options.log.error({ err, path: c.req.path }, "query failed");
        return c.text(`${message}\n`, status);
      }
    };

  function parse(params: RequestParams): Expr {
    const text = param(params, "query");
    if (text === undefined || text.trim() === "") throw new ParamError("query parameter is required");
    if (Buffer.byteLength(text) > limits.max_query_bytes) {
      throw new ParamError(
        `the query is ${Buffer.byteLength(text)} bytes, over the limit of ${limits.max_query_bytes} (query.limits.max_query_bytes)`,
      );
    }
    return parseLogQL(text);
  }

  function checkRange(tenant: string, startNs: bigint, endNs: bigint): void {
    const maxRangeNs = BigInt(tenantLimits.get(tenant, "max_query_length_hours")) * 3_600_000_000_000n;
    if (maxRangeNs > 0n && endNs - startNs > maxRangeNs) {
      throw tenantLimits.error(
        tenant,
        "max_query_length_hours",
        `the query time range exceeds the limit (query length: ${formatGoDuration(endNs - startNs)}, limit: ${formatGoDuration(maxRangeNs)})`,
      );
    }
  }

  function checkLimit(tenant: string, limit: number): void {
    const max = tenantLimits.get(tenant, "max_entries_limit_per_query");
    if (limit > max) {
      throw tenantLimits.error(
        tenant,
        "max_entries_limit_per_query",
        `max entries limit per query exceeded, limit > max_entries_limit_per_query (${limit} > ${max})`,
      );
    }
  }

  /** Runs `work` under the tenant's query timeout and the client's connection: 504 when it runs out of time. */
  async function limited<T>(c: Context, tenant: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.any([
      c.req.raw.signal,
      AbortSignal.timeout(tenantLimits.get(tenant, "query_timeout_ms")),
    ]);
    try {
      // The engine checks the signal between reads; a single slow store read is cut short here.
      const aborted = new Promise<never>((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true }),
      );
      return await Promise.race([work(signal), aborted]);
    } catch (err) {
      if (signal.aborted) {
        const message = tenantLimits.error(
          tenant,
          "query_timeout_ms",
          "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed",
        ).message;
        throw new HttpError(504, message);
      }
      if (err instanceof QueryLimitError) throw tenantLimits.error(tenant, "max_query_series", err.message);
      throw err;
    }
  }

  function execute(c: Context, expr: Expr, params: QueryParams, tenant: string, source: StoreSource) {
    return limited(c, tenant, (signal) =>
      evaluate(expr, params, source, {
        maxSeries: tenantLimits.get(tenant, "max_query_series"),
        maxSamples: options.limits.max_samples,
        signal,
      }),
    );
  }

  async function run(c: Context, expr: Expr, params: QueryParams, tenant: string): Promise<Response> {
    const started = performance.now();
    const flags = encodingFlags(c.req.header(ENCODING_FLAGS_HEADER));
    if (flags.includes(CATEGORIZE_LABELS)) params.categorizeLabels = true;
    const source = new StoreSource(store, tenant);
    const result = await execute(c, expr, params, tenant, source);
    const body = queryResponseJson(
      result,
      {
        execTimeSeconds: (performance.now() - started) / 1000,
        linesProcessed: source.processed.lines,
        bytesProcessed: source.processed.bytes,
        structuredMetadataBytesProcessed: source.processed.structuredMetadataBytes,
        entriesReturned: entriesReturned(result),
      },
      flags,
    );
    return c.body(body, 200, { "Content-Type": "application/json; charset=utf-8" });
  }

  const route = (path: string, handler: Parameters<typeof handle>[0]) => {
    app.get(path, handle(handler));
    app.post(path, handle(handler));
  };

  route("/loki/api/v1/query_range", async (c, params, tenant) => {
    const expr = parse(params);
    const { startNs, endNs } = timeRange(params, now());
    checkRange(tenant, startNs, endNs);
    const limit = limitParam(params, 100);
    checkLimit(tenant, limit);
    const stepNs = stepParam(params, startNs, endNs);
    const query: QueryParams = {
      ...(isLogExpr(expr) ? { startNs, endNs } : alignToStep(startNs, endNs, stepNs)),
      stepNs,
      direction: directionParam(params),
      limit,
      instant: false,
    };
    const intervalNs = intervalParam(params);
    if (intervalNs !== undefined) query.intervalNs = intervalNs;
    return run(c, expr, query, tenant);
  });

  route("/loki/api/v1/query", async (c, params, tenant) => {
    const expr = parse(params);
    if (isLogExpr(expr)) {
      throw new ParamError(
        "log queries are not supported as an instant query type, please change your query to a range query type",
      );
    }
    const timeText = param(params, "time");
    const timeNs =
      timeText === undefined
        ? now()
        : timeRange(
            new Map([
              ["end", [timeText]],
              ["start", [timeText]],
            ]),
            now(),
          ).endNs;
    const limit = limitParam(params, 100);
    checkLimit(tenant, limit);
    return run(
      c,
      expr,
      { startNs: timeNs, endNs: timeNs, stepNs: 0n, direction: directionParam(params), limit, instant: true },
      tenant,
    );
  });

  function seriesSelect(params: RequestParams, tenant: string, selectors: LabelMatcher[][]): SeriesSelect {
    const { startNs, endNs } = timeRange(params, now());
    checkRange(tenant, startNs, endNs);
    return { tenant, signal: "logs", selectors, startMs: nsToMsFloor(startNs), endMs: nsToMsCeil(endNs) };
  }

  function selectorsOf(params: RequestParams, name: string): LabelMatcher[][] {
    return (params.get(name) ?? []).filter((text) => text.trim() !== "").map((text) => parseSelector(text));
  }

  const labelNames = async (c: Context, params: RequestParams, tenant: string) => {
    const names = await index.labelNames(seriesSelect(params, tenant, selectorsOf(params, "query")));
    return c.json({ status: "success", data: names });
  };
  route("/loki/api/v1/labels", labelNames);
  route("/loki/api/v1/label", labelNames);

  route("/loki/api/v1/label/:name/values", async (c, params, tenant) => {
    const values = await index.labelValues(
      seriesSelect(params, tenant, selectorsOf(params, "query")),
      c.req.param("name")!,
    );
    return c.json({ status: "success", data: values });
  });

  route("/loki/api/v1/series", async (c, params, tenant) => {
    const texts = [...(params.get("match[]") ?? []), ...(params.get("match") ?? [])];
    // Loki reads a lone `{}` as every series (logcli series '{}'), and refuses it beside other selectors.
    const everything = texts.filter((text) => EMPTY_SELECTOR.test(text));
    if (everything.length > 0 && everything.length < texts.length) throw new ParamError("0 matchers in group: {}");
    const selectors = everything.length > 0 ? [] : [...selectorsOf(params, "match[]"), ...selectorsOf(params, "match")];
    const series = await index.series(seriesSelect(params, tenant, selectors));
    return c.body(`{"status":"success","data":[${series.map(labelsJson).join(",")}]}`, 200, {
      "Content-Type": "application/json; charset=utf-8",
    });
  });

  route("/loki/api/v1/index/stats", async (c, params, tenant) => {
    const matchers = parseSelector(param(params, "query") ?? "");
    const { startNs, endNs } = timeRange(params, now());
    checkRange(tenant, startNs, endNs);
    const { streams, entries, bytes } = await indexStats(index, tenant, matchers, startNs, endNs - 1n);
    // Loki counts the chunks a query would read; Bifrost's stores keep no chunks, so there are none to count.
    return c.json({ streams, chunks: 0, bytes, entries });
  });

  const volumeRoute = (ranged: boolean) => async (c: Context, params: RequestParams, tenant: string) => {
    const { startNs, endNs } = timeRange(params, now());
    checkRange(tenant, startNs, endNs);
    const targets = (param(params, "targetLabels") ?? "")
      .split(",")
      .map((name) => name.trim())
      .filter((name) => name !== "");
    const aggregateBy = param(params, "aggregateBy") ?? "series";
    if (aggregateBy !== "series" && aggregateBy !== "labels")
      throw new ParamError(`invalid aggregateBy "${aggregateBy}": expected series or labels`);
    const query = param(params, "query") ?? "";
    const request: VolumeRequest = {
      tenant,
      // `{}` is every stream, as in Loki, where each is then its own group with all its labels.
      matchers: EMPTY_SELECTOR.test(query) ? [] : parseSelector(query),
      startNs,
      endNs,
      stepNs: ranged ? stepParam(params, startNs, endNs) : undefined,
      limit: limitParam(params, 100),
      targetLabels: targets,
      aggregateBy,
    };
    const result = await volume(index, request);
    return c.body(
      queryResponseJson(result, {
        execTimeSeconds: 0,
        linesProcessed: 0,
        bytesProcessed: 0,
        structuredMetadataBytesProcessed: 0,
        entriesReturned: entriesReturned(result),
      }),
      200,
      {
        "Content-Type": "application/json; charset=utf-8",
      },
    );
  };
  route("/loki/api/v1/index/volume", volumeRoute(false));
  route("/loki/api/v1/index/volume_range", volumeRoute(true));

  route("/loki/api/v1/format_query", async (c, params) => {
    try {
      return c.json({ status: "success", data: prettifyLogQL(parse(params)) });
    } catch (err) {
      if (err instanceof LogQLParseError || err instanceof ParamError)
        return c.json({ status: "invalid-query", error: err.message }, 400);
      throw err;
    }
  });

  drilldownRoutes({
    route,
    store,
    now,
    limits,
    pushLimits: options.pushLimits,
    tenantLimits,
    parse,
    checkRange,
    checkLimit,
    execute,
    limited,
  });

  tailRoute(app, { store, tenantOf, limits: tenantLimits, now });

  // Grafana probes this to choose a live-tail protocol and switches to it on a 400; 404 keeps it on v1.
  app.all("/loki/api/v2alpha/tail", (c) => c.text("404 page not found\n", 404));

  if (options.push) {
    lokiPushRoute(app, {
      sink: options.push.sink,
      contract: options.push.contract,
      admission: options.push.admission,
      maxBodyBytes: options.pushLimits.max_body_bytes,
      rate: undefined,
    });
  }
}

function classify(err: unknown): [400 | 404 | 429 | 500 | 503 | 504, string] {
  if (err instanceof HttpError || err instanceof TenantLimitError) return [err.status, err.message];
  if (
    err instanceof ParamError ||
    err instanceof LogQLParseError ||
    err instanceof QueryLimitError ||
    err instanceof EvaluationError
  )
    return [400, err.message];
  if (err instanceof StoreError && err.transient) return [503, `store unavailable: ${err.message}`];
  return [500, (err as Error).message ?? "internal error"];
}
