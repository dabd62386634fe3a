import type { TenantLimits } from "../../common/limits.js";
import type { Context, Hono, Next } from "hono";
import { upgradeWebSocket } from "@hono/node-server";
import type { Store } from "../../storage/store.js";
import { persistedLabelsText } from "../../proto/labels.js";
import { isLogExpr, type LogExpr } from "../../common/logql/syntax/ast.js";
import type { LogRow } from "../logql/evaluation/source.js";
import { parseLogQL } from "../../common/logql/syntax/parser.js";
import { StoreSource } from "../logql/pushdown/store-source.js";
import { labelsJson } from "./marshal.js";
import { limitParam, param, ParamError, parseDurationParamNs, parseTimestampNs, type RequestParams } from "./params.js";

// GET /loki/api/v1/tail over a WebSocket, as Grafana's Explore "Live" and `logcli --tail` use it: first the newest
// `limit` entries since `start`, then every second what arrived up to `delay_for` seconds ago, as text frames of
// {"streams": [...]}. Entries are read from the Store, so a tail sees what any collector shipped.

const POLL_MS = 1000;
const MAX_DELAY_S = 5;

export interface TailOptions {
  store: Store;
  tenantOf: (c: Context) => string;
  limits: TenantLimits;
  now: () => bigint;
}

interface TailRequest {
  expr: LogExpr;
  tenant: string;
  startNs: bigint;
  delayNs: bigint;
  limit: number;
}

function frame(rows: LogRow[]): string {
  const streams = new Map<string, { labels: LogRow["labels"]; values: string[] }>();
  for (const row of rows) {
    const key = persistedLabelsText(row.labels);
    let stream = streams.get(key);
    if (stream === undefined) {
      stream = { labels: row.labels, values: [] };
      streams.set(key, stream);
    }
    stream.values.push(`["${row.tsNs}",${JSON.stringify(row.line)}]`);
  }
  return `{"streams":[${[...streams.values()].map((s) => `{"stream":${labelsJson(s.labels)},"values":[${s.values.join(",")}]}`).join(",")}]}`;
}

function tailRequest(c: Context, options: TailOptions): TailRequest {
  const params: RequestParams = new Map(Object.entries(c.req.queries()));
  const text = param(params, "query");
  if (text === undefined) throw new ParamError("query parameter is required");
  const expr = parseLogQL(text);
  if (!isLogExpr(expr)) throw new ParamError("tail requires a log query, not a metric query");
  const delayText = param(params, "delay_for");
  const delayNs = delayText === undefined ? 0n : parseDurationParamNs(delayText, "delay_for");
  if (delayNs < 0n || delayNs > BigInt(MAX_DELAY_S) * 1_000_000_000n)
    throw new ParamError(`delay_for can't be greater than ${MAX_DELAY_S}`);
  const tenant = options.tenantOf(c);
  const limit = limitParam(params, 100);
  const max = options.limits.get(tenant, "max_entries_limit_per_query");
  if (limit > max)
    throw options.limits.error(
      tenant,
      "max_entries_limit_per_query",
      `max entries limit per query exceeded, limit > max_entries_limit_per_query (${limit} > ${max})`,
    );
  const startText = param(params, "start");
  const startNs = startText === undefined ? options.now() - 3_600_000_000_000n : parseTimestampNs(startText, "start");
  return { expr, tenant, startNs, delayNs, limit };
}

export function tailRoute(app: Hono, options: TailOptions): void {
  const requests = new WeakMap<Request, TailRequest>();
  // Bad parameters are answered with 400 before the upgrade, as Loki does, rather than by a closed socket.
  const validate = async (c: Context, next: Next) => {
    try {
      requests.set(c.req.raw, tailRequest(c, options));
    } catch (err) {
      return c.text(`${(err as Error).message}\n`, 400);
    }
    await next();
  };
  app.get(
    "/loki/api/v1/tail",
    validate,
    upgradeWebSocket((c) => {
      const request = requests.get(c.req.raw)!;
      const source = new StoreSource(options.store, request.tenant);
      let timer: NodeJS.Timeout | undefined;
      let closed = false;
      let cursor = request.startNs;
      const collect = async (from: bigint, to: bigint, direction: "forward" | "backward", limit: number) => {
        const rows: LogRow[] = [];
        for await (const chunk of source.logs(request.expr, from, to, direction)) {
          rows.push(...chunk);
          if (rows.length >= limit) break;
        }
        return rows.slice(0, limit);
      };
      return {
        onOpen: (_event, ws) => {
          const poll = async (first: boolean) => {
            const to = options.now() - request.delayNs;
            if (to > cursor) {
              const rows = first
                ? (await collect(cursor, to, "backward", request.limit)).reverse()
                : await collect(cursor, to, "forward", Number.MAX_SAFE_INTEGER);
              cursor = to;
              for (let i = 0; i < rows.length && !closed; i += request.limit)
                ws.send(frame(rows.slice(i, i + request.limit)));
            }
            if (!closed) timer = setTimeout(() => void poll(false).catch(() => ws.close(1011, "tail failed")), POLL_MS);
          };
          void poll(true).catch(() => ws.close(1011, "tail failed"));
        },
        onClose: () => {
          closed = true;
          clearTimeout(timer);
        },
      };
    }),
  );
}
