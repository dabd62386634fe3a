import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { Registry } from "prom-client";
import { Authenticator } from "../common/auth.js";
import { createLogger } from "../common/log.js";
import { HttpService } from "../common/service.js";
import { configSchema } from "../config.js";
import { SampleKind } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { instantQuery } from "../query/promql/evaluation/evaluator.js";
import { parsePromql } from "../query/promql/syntax/parser.js";
import { rulerRoutes } from "../query/ruler/api.js";
import { reportRuleLoading } from "../query/ruler/metrics.js";
import { Ruler, type RulerOptions } from "../query/ruler/ruler.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { Store } from "../storage/store.js";

// Which language a rule is evaluated in when its expression is valid PromQL and LogQL (a selector without metric
// name), how a failing rule shows in /api/v1/rules, and how rule files that fail to load show on /ready and
// /metrics; on the embedded store, with both samples and log lines under {job="api"}.

const log = createLogger("silent");
const S = 1000;
/** A minute boundary. */
const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);
const AMBIGUOUS = 'sum(count_over_time({job="api"}[1m]))';
/** (T0 - 1 m, T0] holds 4 samples (every 15 s) and 12 log lines (every 5 s) of {job="api"}. */
const SAMPLES = 4;
const LINES = 12;

const dir = mkdtempSync(join(tmpdir(), "bifrost-ruler-language-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function ruleFile(lines: string[], under = dir): string {
  mkdirSync(under, { recursive: true });
  const path = join(under, `rules-${files++}.yaml`);
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

function makeRuler(store: Store, options: Partial<RulerOptions>): Ruler {
  return new Ruler({
    store,
    log,
    ruleFiles: [],
    tenants: ["t1"],
    defaultIntervalMs: 60 * S,
    pollIntervalMs: 0,
    outageToleranceMs: 3_600_000,
    externalURL: "http://bifrost:3100",
    maxSeries: 500,
    now: () => T0,
    ...options,
  });
}

async function recorded(store: Store, name: string): Promise<number[]> {
  const result = await instantQuery({ store, tenant: "t1" }, parsePromql(name), T0);
  assert.equal(result.type, "vector");
  return result.samples.map((s) => s.value);
}

describe("a rule's language", () => {
  let store: Store;
  before(async () => {
    store = new DuckDBStore({
      path: ":memory:",
      retention: { logs_days: 3650, samples_days: 3650, rollups_1m_days: 3650, rollups_1h_days: 3650 },
      log,
    });
    await store.migrate();
    await store.appendSamples([
      {
        id: "test/samples",
        tenant: "t1",
        series: [
          {
            name: "http_requests_in_flight",
            labels: labelsOf([["job", "api"]]),
            kind: SampleKind.Gauge,
            points: Array.from({ length: 8 }, (_, i) => ({ timeUnixMs: T0 - 105 * S + i * 15 * S, value: i })),
          },
        ],
      },
    ]);
    await store.appendLogs([
      {
        id: "test/logs",
        tenant: "t1",
        streams: [
          {
            labels: labelsOf([["job", "api"]]),
            entries: Array.from({ length: 24 }, (_, i) => ({
              timeUnixNano: BigInt(T0 - 115 * S + i * 5 * S) * 1_000_000n,
              line: "level=error msg=boom",
              metadata: labelsOf([]),
            })),
          },
        ],
      },
    ]);
  });
  after(() => store.close());

  it("is PromQL in rule_files (Prometheus's key) when the expression is valid in both", async () => {
    const path = ruleFile([
      "groups:",
      "  - name: g",
      "    rules:",
      "      - record: prom:count",
      `        expr: ${AMBIGUOUS}`,
    ]);
    const ruler = makeRuler(store, { ruleFiles: [path] });
    assert.deepEqual(ruler.reload(), []);
    assert.equal(ruler.groups("t1")[0]!.group.rules[0]!.expr.language, "promql");
    await ruler.evaluateDue();
    assert.deepEqual(await recorded(store, "prom:count"), [SAMPLES]);
  });

  it("is LogQL in rules_dir (Loki's layout), and a group's `language` overrides either default", async () => {
    const rulesDir = join(dir, "rules-dir");
    ruleFile(
      ["groups:", "  - name: g", "    rules:", "      - record: loki:count", `        expr: ${AMBIGUOUS}`],
      rulesDir,
    );
    const forced = ruleFile([
      "groups:",
      "  - name: forced",
      "    language: logql",
      "    rules:",
      "      - record: forced:count",
      `        expr: ${AMBIGUOUS}`,
    ]);
    const ruler = makeRuler(store, { ruleFiles: [forced], rulesDir });
    assert.deepEqual(ruler.reload(), []);
    assert.deepEqual(
      ruler.groups("t1").map((runner) => runner.group.rules[0]!.expr.language),
      ["logql", "logql"],
    );
    await ruler.evaluateDue();
    assert.deepEqual(await recorded(store, "loki:count"), [LINES]);
    assert.deepEqual(await recorded(store, "forced:count"), [LINES]);
  });

  it("follows the group's other rules when those parse in one language only", () => {
    const path = ruleFile([
      "groups:",
      "  - name: logs",
      "    rules:",
      "      - record: errors:count",
      '        expr: sum(count_over_time({job="api"} |= "error" [1m]))',
      "      - record: lines:count",
      `        expr: ${AMBIGUOUS}`,
      "  - name: metrics",
      "    rules:",
      "      - record: requests:rate",
      "        expr: sum(rate(http_requests_total[1m]))",
      "      - record: any:count",
      `        expr: ${AMBIGUOUS}`,
    ]);
    const ruler = makeRuler(store, { ruleFiles: [path] });
    assert.deepEqual(ruler.reload(), []);
    assert.deepEqual(
      ruler.groups("t1").map((runner) => runner.group.rules.map((rule) => rule.expr.language)),
      [
        ["logql", "logql"],
        ["promql", "promql"],
      ],
    );
  });
});

describe("rule health and load failures", () => {
  let store: Store;
  before(async () => {
    store = new DuckDBStore({
      path: ":memory:",
      retention: { logs_days: 3650, samples_days: 3650, rollups_1m_days: 3650, rollups_1h_days: 3650 },
      log,
    });
    await store.migrate();
    await store.appendSamples([
      {
        id: "test/up",
        tenant: "t1",
        series: ["a", "b"].map((instance) => ({
          name: "up",
          labels: labelsOf([
            ["job", "api"],
            ["instance", instance],
          ]),
          kind: SampleKind.Gauge,
          points: [{ timeUnixMs: T0 - 15 * S, value: 1 }],
        })),
      },
    ]);
  });
  after(() => store.close());

  async function rulesApi(ruler: Ruler) {
    const app = new Hono();
    app.use(new Authenticator(configSchema().parse({}).auth, "t1").middleware());
    rulerRoutes(app, ruler);
    const body = (await (await app.request("/api/v1/rules")).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError: string }[] }[] };
    };
    return body.data.groups.flatMap((g) => g.rules.map((r) => [r.name, r.health, r.lastError]));
  }

  it("reports a rule that fails to evaluate as health err with lastError, the others ok", async () => {
    const path = ruleFile([
      "groups:",
      "  - name: g",
      "    rules:",
      "      - record: broken:ratio",
      // Two `up` series on each side with nothing to tell them apart: many-to-many, an evaluation error.
      "        expr: up / on(job) up",
      "      - record: fine:sum",
      "        expr: sum(up)",
    ]);
    const ruler = makeRuler(store, { ruleFiles: [path] });
    assert.deepEqual(ruler.reload(), []);
    await ruler.evaluateDue();
    const rules = await rulesApi(ruler);
    assert.equal(rules[0]![1], "err");
    assert.match(rules[0]![2]!, /many-to-many|matching/i);
    assert.deepEqual(rules[1], ["fine:sum", "ok", ""]);
    assert.deepEqual(await recorded(store, "fine:sum"), [2]);
  });

  it("reports the rules whose results could not be written as health err", async () => {
    // A store whose writes fail (a disk full, a ClickHouse away): reads go to the real store.
    const failing = new Proxy(store, {
      get(target, key, receiver) {
        if (key === "appendSamples") return () => Promise.reject(new Error("disk full"));
        const value: unknown = Reflect.get(target, key, receiver);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const path = ruleFile([
      "groups:",
      "  - name: g",
      "    rules:",
      "      - record: lost:sum",
      "        expr: sum(up)",
    ]);
    const ruler = makeRuler(failing, { ruleFiles: [path] });
    ruler.reload();
    await ruler.evaluateDue();
    assert.deepEqual(await rulesApi(ruler), [["lost:sum", "err", "rule results could not be written: disk full"]]);
  });

  it("notes rule files that fail to load on /ready and counts them in bifrost_query_rule_files_failed", async () => {
    const good = ruleFile(["groups:", "  - name: g", "    rules:", "      - record: ok:sum", "        expr: sum(up)"]);
    const bad = ruleFile([
      "groups:",
      "  - name: g",
      "    rules:",
      "      - alert: Broken",
      "        expr: sum(rate(up[5m]",
    ]);
    const missing = join(dir, "missing.yaml");
    const ruler = makeRuler(store, { ruleFiles: [good, bad, missing] });
    const registry = new Registry();
    const http = new HttpService("query", registry, log);
    reportRuleLoading(ruler, registry, http);
    const problems = ruler.reload();
    assert.equal(problems.length, 2, problems.join("\n"));
    assert.match(problems[0]!, new RegExp(`^${bad}:5:15: group "g", rule 1: Broken: could not parse expression`));
    assert.match(problems[1]!, /missing\.yaml: ENOENT/);
    assert.equal(ruler.groups("t1").length, 1);
    const ready = await http.app.request("/ready");
    assert.equal(ready.status, 200);
    const text = await ready.text();
    assert.match(text, /^ready\nrules: 2 rule file\(s\) failed to load: /);
    assert.ok(text.includes(bad) && text.includes("missing.yaml"), text);
    assert.match(await (await http.app.request("/metrics")).text(), /^bifrost_query_rule_files_failed 2$/m);

    writeFileSync(bad, "groups: []\n");
    writeFileSync(missing, "groups: []\n");
    assert.deepEqual(ruler.reload(), []);
    assert.equal(await (await http.app.request("/ready")).text(), "ready\n");
    assert.match(await (await http.app.request("/metrics")).text(), /^bifrost_query_rule_files_failed 0$/m);
  });
});
