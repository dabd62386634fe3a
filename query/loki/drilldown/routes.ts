import type { Context } from "hono";
import type { PushLimits } from "../../../common/config-sections.js";
import { DETECTED_LEVEL } from "../../../common/detected-level.js";
import type { TenantLimits } from "../../../common/limits.js";
import type { LabelMatcher, Store } from "../../../storage/store.js";
import type { QueryConfig } from "../../config.js";
import { nsToMsCeil, nsToMsFloor } from "../../../storage/values.js";
import { isLogExpr, type Expr, type LogExpr } from "../../../common/logql/syntax/ast.js";
import type { QueryParams, QueryResult } from "../../logql/evaluation/evaluator.js";
import { parseSelector } from "../../../common/logql/syntax/parser.js";
import { StoreSource } from "../../logql/pushdown/store-source.js";
import { labelsJson } from "../marshal.js";
import { param, ParamError, stepParam, timeRange, type RequestParams } from "../params.js";
import { detectedFields, detectedFieldValues } from "./detected-fields.js";
import { detectedLabels } from "./detected-labels.js";
import { PatternMiner } from "./patterns.js";

// The endpoints Grafana's Logs Drilldown and Explore call besides queries and labels: detected_fields,
// detected_field/<name>/values, detected_labels, patterns and drilldown-limits, in Loki's shapes.

type Handler = (c: Context, params: RequestParams, tenant: string) => Promise<Response>;

export interface DrilldownOptions {
  route: (path: string, handler: Handler) => void;
  store: Store;
  now: () => bigint;
  limits: QueryConfig["limits"];
  pushLimits: PushLimits;
  tenantLimits: TenantLimits;
  /** The query parameter as a LogQL expression, within the query size limit. */
  parse: (params: RequestParams) => Expr;
  checkRange: (tenant: string, startNs: bigint, endNs: bigint) => void;
  checkLimit: (tenant: string, limit: number) => void;
  /** Evaluates a query as query_range does: the tenant's series limit and timeout. */
  execute: (c: Context, expr: Expr, params: QueryParams, tenant: string, source: StoreSource) => Promise<QueryResult>;
  /** Runs work under the tenant's query timeout. */
  limited: <T>(c: Context, tenant: string, work: (signal: AbortSignal) => Promise<T>) => Promise<T>;
}

const JSON_TYPE = { "Content-Type": "application/json; charset=utf-8" };

/** A positive integer parameter, as Loki reads line_limit and limit. */
function positiveParam(params: RequestParams, name: string, fallback: number): number {
  const text = param(params, name);
  if (text === undefined || text === "") return fallback;
  if (!/^-?\d+$/.test(text)) throw new ParamError(`invalid ${name}: cannot parse "${text}" as an integer`);
  const value = Number(text);
  if (value <= 0) throw new ParamError("limit must be a positive value");
  return value;
}

export function drilldownRoutes(options: DrilldownOptions): void {
  const { route, store, now } = options;

  /** The newest `line_limit` entries of a log query, with their labels by category, and the field limit. */
  async function fieldEntries(c: Context, params: RequestParams, tenant: string) {
    const expr = options.parse(params);
    if (!isLogExpr(expr)) throw new ParamError("only log selector is supported");
    const { startNs, endNs } = timeRange(params, now());
    options.checkRange(tenant, startNs, endNs);
    const lineLimit = positiveParam(params, "line_limit", 100);
    options.checkLimit(tenant, lineLimit);
    const fieldLimit = positiveParam(params, param(params, "limit") !== undefined ? "limit" : "field_limit", 1000);
    const stepNs = stepParam(params, startNs, endNs);
    const query: QueryParams = {
      startNs,
      endNs,
      stepNs,
      direction: "backward",
      limit: lineLimit,
      instant: false,
      categorizeLabels: true,
    };
    const result = await options.execute(c, expr, query, tenant, new StoreSource(store, tenant));
    return { streams: result.type === "streams" ? result.streams : [], fieldLimit };
  }

  route("/loki/api/v1/detected_fields", async (c, params, tenant) => {
    const { streams, fieldLimit } = await fieldEntries(c, params, tenant);
    const fields = detectedFields(streams, fieldLimit);
    return c.json(fields.length === 0 ? {} : { fields, limit: fieldLimit });
  });

  route("/loki/api/v1/detected_field/:name/values", async (c, params, tenant) => {
    const { streams, fieldLimit } = await fieldEntries(c, params, tenant);
    const values = detectedFieldValues(streams, c.req.param("name")!, fieldLimit);
    return c.json(values.length === 0 ? {} : { values, limit: fieldLimit });
  });

  route("/loki/api/v1/detected_labels", async (c, params, tenant) => {
    const query = param(params, "query") ?? "";
    const matchers: LabelMatcher[] = query.trim() === "" ? [] : parseSelector(query);
    const { startNs, endNs } = timeRange(params, now());
    options.checkRange(tenant, startNs, endNs);
    const select = {
      tenant,
      signal: "logs" as const,
      selectors: matchers.length === 0 ? [] : [matchers],
      startMs: nsToMsFloor(startNs),
      endMs: nsToMsCeil(endNs),
    };
    const valuesByLabel = await options.limited(c, tenant, async () => {
      const names = await store.labelNames(select);
      const values = await Promise.all(names.map((name) => store.labelValues(select, name)));
      return new Map(names.map((name, i) => [name, values[i]!]));
    });
    return c.json({ detectedLabels: detectedLabels(valuesByLabel) });
  });

  route("/loki/api/v1/patterns", async (c, params, tenant) => {
    const text = param(params, "query");
    if (text === undefined || text.trim() === "") throw new ParamError("query parameter is required");
    const matchers = parseSelector(text);
    const { startNs, endNs } = timeRange(params, now());
    options.checkRange(tenant, startNs, endNs);
    const stepNs = stepParam(params, startNs, endNs);
    const { patterns, warning } = await options.limited(c, tenant, (signal) =>
      minePatterns({ store, tenant, matchers, startNs, endNs, maxLines: options.limits.max_pattern_lines, signal }),
    );
    const stepMs = Number(stepNs / 1_000_000n) || 1;
    const data = patterns.result(nsToMsFloor(startNs), nsToMsCeil(endNs), stepMs);
    const warnings = warning === undefined ? "" : `"warnings":${JSON.stringify([warning])},`;
    return c.body(`{"status":"success",${warnings}"data":${JSON.stringify(data)}}`, 200, JSON_TYPE);
  });

  // Logs Drilldown reads whether patterns are served and the limits it shows; Loki names its own settings here.
  route("/loki/api/v1/drilldown-limits", async (c) => {
    const push = options.pushLimits;
    const limits = options.limits;
    return c.json({
      limits: {
        discover_log_levels: push.discover_log_levels,
        discover_service_name: push.discover_service_name,
        log_level_fields: push.log_level_fields,
        max_entries_limit_per_query: limits.max_entries_limit_per_query,
        max_query_length: `${limits.max_query_length_hours}h`,
        max_query_series: limits.max_query_series,
        query_timeout: `${limits.query_timeout_ms}ms`,
        volume_enabled: true,
      },
      pattern_ingester_enabled: true,
      version: "bifrost",
    });
  });
}

interface MineRequest {
  store: Store;
  tenant: string;
  matchers: LabelMatcher[];
  startNs: bigint;
  endNs: bigint;
  maxLines: number;
  signal: AbortSignal;
}

/**
 * Mines the lines of [startNs, endNs), oldest first. When the range holds more than `maxLines` lines, only the
 * newest of them are mined, from the step where they begin, and the answer says so.
 */
async function minePatterns(request: MineRequest): Promise<{ patterns: PatternMiner; warning?: string }> {
  const { store, tenant, matchers, endNs, maxLines } = request;
  let startNs = request.startNs;
  let warning: string | undefined;
  const buckets = 1000n;
  const bucketNs = (endNs - startNs) / buckets + 1n;
  const counts = await store.countLogs({ tenant, matchers, startNs, endNs, stepNs: bucketNs, bytes: false });
  const perBucket = new Map<bigint, number>();
  let total = 0;
  for (const series of counts)
    for (const point of series.points) {
      perBucket.set(point.startNs, (perBucket.get(point.startNs) ?? 0) + point.count);
      total += point.count;
    }
  if (total > maxLines) {
    let kept = 0;
    for (const bucket of [...perBucket.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0))) {
      if (kept + perBucket.get(bucket)! > maxLines) {
        startNs = bucket + bucketNs;
        break;
      }
      kept += perBucket.get(bucket)!;
    }
    warning = `patterns are mined from the newest ${kept} of the range's ${total} lines, from ${new Date(Number(startNs / 1_000_000n)).toISOString()} on (query.limits.max_pattern_lines is ${maxLines})`;
  }
  const patterns = new PatternMiner();
  const source = new StoreSource(store, tenant);
  const log: LogExpr = { kind: "log", pos: 0, matchers, pipeline: [] };
  for await (const rows of source.logs(log, startNs, endNs, "forward", undefined, true)) {
    if (request.signal.aborted) break;
    for (const row of rows) {
      const categories = row.categories!;
      const level = categories.metadata[DETECTED_LEVEL];
      patterns.add(labelsJson(categories.stream), row.line, Number(row.tsNs / 1_000_000n), level);
    }
  }
  return warning === undefined ? { patterns } : { patterns, warning };
}
