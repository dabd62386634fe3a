import type { Context, Hono } from "hono";

// Alerts link to `<external_url>/graph?g0.expr=<expr>&g0.tab=1` (ruler/group.ts generatorURL), the link
// Prometheus' rule manager gives its expression browser, which Alertmanager templates and chat receivers show as
// "Source". Bifrost has no browser page, so the link answers with a redirect to the expression's instant query in
// its language's API: the current value of what the alert watches. `g0.language=logql` marks a LogQL rule's link.

const PREFIXES = ["", "/prometheus"];

function redirect(c: Context, prefix: string): Response {
  const expr = c.req.query("g0.expr");
  if (expr === undefined || expr === "")
    return c.text("graph: the link names no expression (g0.expr); query the API under /api/v1 instead\n", 400);
  const api = c.req.query("g0.language") === "logql" ? "/loki/api/v1/query" : `${prefix}/api/v1/query`;
  return c.redirect(`${api}?${new URLSearchParams({ query: expr })}`, 303);
}

/** `GET /graph` (also under `/prometheus`): a redirect from an alert's generatorURL to the instant query. */
export function graphRoute(app: Hono): void {
  for (const prefix of PREFIXES) app.get(`${prefix}/graph`, (c) => redirect(c, prefix));
}
