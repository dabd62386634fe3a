import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { Authenticator } from "../common/auth.js";
import { configSchema } from "../config.js";
import { createLogger } from "../common/log.js";
import { SampleKind, type Series } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { instantQuery } from "../query/promql/evaluation/evaluator.js";
import { parsePromql } from "../query/promql/syntax/parser.js";
import { AlertStates } from "../query/ruler/alerts.js";
import { anomalyBand } from "../query/ruler/anomaly.js";
import { formatFloatE } from "../common/go/float-format.js";
import { rulerRoutes } from "../query/ruler/api.js";
import { compileExpr } from "../query/ruler/expr.js";
import { type AlertNotice, alertFingerprint } from "../query/ruler/notice.js";
import { Ruler, type RulerOptions } from "../query/ruler/ruler.js";
import { parseRuleFile, type Rule, RuleFileError } from "../query/ruler/rules.js";
import { AlertTemplate } from "../query/ruler/templates.js";
import { TickStore } from "../query/ruler/tick-store.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { LabelMatcher, Store } from "../storage/store.js";

const RETENTION = { logs_days: 3650, samples_days: 3650, rollups_1m_days: 3650, rollups_1h_days: 3650 };
const log = createLogger("silent");
/** A minute boundary, so that 15 s groups evaluate at T0 + k·15 s. */
const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);
const S = 1000;

const dir = mkdtempSync(join(tmpdir(), "bifrost-ruler-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function ruleFile(text: string, name = `rules-${files++}.yaml`, under = dir): string {
  mkdirSync(under, { recursive: true });
  const path = join(under, name);
  writeFileSync(path, text);
  return path;
}

function openStore(path = ":memory:"): Promise<Store> {
  const store = new DuckDBStore({ path, retention: RETENTION, log });
  return store.migrate().then(() => store);
}

/** A gauge with one point every 15 s from T0 + fromS seconds. */
function gauge(name: string, labels: [string, string][], fromS: number, values: number[]): Series {
  return {
    name,
    labels: labelsOf(labels),
    kind: SampleKind.Gauge,
    points: values.map((value, i) => ({ timeUnixMs: T0 + fromS * S + i * 15 * S, value })),
  };
}

let batches = 0;
async function write(store: Store, tenant: string, series: Series[]): Promise<void> {
  await store.appendSamples([{ id: `test/${batches++}`, tenant, series }]);
}

class Clock {
  constructor(public ms: number) {}
  readonly now = () => this.ms;
}

class Collect {
  readonly batches: AlertNotice[][] = [];
  send(alerts: AlertNotice[]): void {
    this.batches.push(alerts);
  }
  get last(): AlertNotice[] {
    return this.batches.at(-1) ?? [];
  }
}

function makeRuler(store: Store, clock: Clock, options: Partial<RulerOptions>): Ruler {
  return new Ruler({
    store,
    log,
    ruleFiles: [],
    tenants: ["t1"],
    defaultIntervalMs: 15 * S,
    pollIntervalMs: 0,
    outageToleranceMs: 3_600_000,
    externalURL: "http://bifrost:3100",
    maxSeries: 500,
    now: clock.now,
    ...options,
  });
}

async function valueAt(store: Store, tenant: string, query: string, timeMs: number) {
  const result = await instantQuery({ store, tenant }, parsePromql(query), timeMs);
  assert.equal(result.type, "vector");
  return result.samples.map((s) => ({ labels: { ...s.labels }, value: s.value }));
}

function problemsOf(text: string): string[] {
  try {
    parseRuleFile("r.yaml", text, 60_000);
  } catch (err) {
    assert.ok(err instanceof RuleFileError, String(err));
    return err.problems;
  }
  assert.fail("expected a RuleFileError");
}

describe("rule files", () => {
  it("reads the Prometheus format with defaults and durations", () => {
    const groups = parseRuleFile(
      "r.yaml",
      [
        "groups:",
        "  - name: g",
        "    interval: 30s",
        "    limit: 10",
        "    rules:",
        "      - record: job:up:sum",
        "        expr: sum by (job) (up)",
        "      - alert: Down",
        "        expr: up == 0",
        "        for: 1m30s",
        "        keep_firing_for: 2m",
        "        labels: {severity: page}",
        "        annotations: {summary: '{{ $labels.instance }} is down'}",
        "  - name: h",
        "    rules: []",
      ].join("\n"),
      60_000,
    );
    assert.equal(groups.length, 2);
    const [g, h] = groups as [(typeof groups)[0], (typeof groups)[0]];
    assert.deepEqual([g.name, g.intervalMs, g.limit, h.intervalMs], ["g", 30_000, 10, 60_000]);
    const [record, alert] = g.rules as [Rule, Rule];
    assert.equal(record.type, "recording");
    assert.equal(record.expr.language, "promql");
    assert.ok(alert.type === "alerting");
    assert.deepEqual([alert.forMs, alert.keepFiringForMs, alert.labels["severity"]], [90_000, 120_000, "page"]);
  });

  it("reports every problem as file:line:column", () => {
    const problems = problemsOf(
      [
        "groups:",
        "  - name: g",
        "    interval: 1x",
        "    rules:",
        "      - record: 'bad name'",
        "        expr: up",
        "      - alert: A",
        "        expr: 'sum(up'",
        "      - alert: B",
        "        record: b",
        "        expr: up",
        "      - alert: C",
        "        expr: up",
        "        labels: {'0bad': x}",
        "        annotations: {s: '{{ .x '}",
        "        colour: red",
        "  - name: g",
        "    rules: []",
      ].join("\n"),
    );
    const at = (line: number, text: string) =>
      assert.ok(
        problems.some((p) => p.startsWith(`r.yaml:${line}:`) && p.includes(text)),
        `${line} ${text}: ${problems.join("\n")}`,
      );
    at(3, `unknown unit "x" in duration "1x"`);
    at(5, "invalid record name: bad name");
    at(8, "could not parse expression");
    at(9, "only one of 'alert' and 'record' may be set");
    at(14, "invalid label name: 0bad");
    at(15, "annotations.s");
    at(16, "field colour not found");
    at(17, "g: repeated in the same file");
    assert.equal(problems.length, 8, problems.join("\n"));
  });

  it("reports YAML syntax errors with their position", () => {
    const problems = problemsOf("groups:\n  - name: g\n    rules: [\n");
    assert.match(problems[0]!, /^r\.yaml:\d+:\d+: /);
  });

  it("decides the language by parsing, and a group may force it", () => {
    assert.equal(compileExpr('sum(rate({app="api"} |= "error" [5m])) by (job) > 1').language, "logql");
    assert.equal(compileExpr("sum(rate(http_requests_total[5m])) by (job) > 1").language, "promql");
    // Valid in both: the fallback (the group's or the file's language) decides, PromQL without one.
    assert.equal(compileExpr('count_over_time({app="api"}[5m])').language, "promql");
    assert.equal(compileExpr('count_over_time({app="api"}[5m])', undefined, "logql").language, "logql");
    assert.equal(compileExpr('count_over_time({app="api"}[5m])', "promql", "logql").language, "promql");
    const problems = problemsOf(
      "groups:\n  - name: g\n    language: logql\n    rules:\n      - alert: A\n        expr: up > 1\n",
    );
    assert.match(problems[0]!, /^r\.yaml:6:15: group "g", rule 1: A: could not parse expression/);
  });
});

describe("templates", () => {
  const expand = (source: string, value: number, labels: Record<string, string> = { instance: "a:9100", job: "api" }) =>
    new AlertTemplate("t", source).expand({
      labels: labelsOf(Object.entries(labels)),
      value,
      externalLabels: labelsOf([["cluster", "eu"]]),
      externalURL: "http://x",
      timeMs: T0,
    });

  it("expands $labels and $value as Prometheus does", () => {
    assert.equal(
      expand("{{ $labels.instance }} of {{ $labels.job }} is at {{ $value }}", 0.5),
      "a:9100 of api is at 0.5",
    );
    assert.equal(expand("{{ $value }}", 1e21), "1e+21");
    assert.equal(expand('{{ $value | printf "%.2f" }}', 2 / 3), "0.67");
    assert.equal(expand("{{ $externalLabels.cluster }} {{ $externalURL }}", 1), "eu http://x");
    assert.equal(expand("{{ if gt $value 1.0 }}high{{ else }}low{{ end }}", 2), "high");
    assert.equal(expand("plain text", 2), "plain text");
  });

  it("has the humanize functions", () => {
    assert.equal(expand("{{ humanize $value }}", 1234567), "1.235M");
    assert.equal(expand("{{ humanize $value }}", 0.0012), "1.2m");
    assert.equal(expand("{{ humanize1024 $value }}", 2048), "2ki");
    assert.equal(expand("{{ humanizePercentage $value }}", 0.1234), "12.34%");
    assert.equal(expand("{{ humanizeDuration $value }}", 90061), "1d 1h 1m 1s");
    assert.equal(expand("{{ humanizeDuration $value }}", 0.25), "250ms");
    assert.equal(expand("{{ humanizeTimestamp $value }}", 1_435_065_584.128), "2015-06-23 13:19:44.128 +0000 UTC");
    assert.equal(
      expand('{{ reReplaceAll "(.*):.*" "$1" $labels.instance }} {{ $labels.instance | stripPort | toUpper }}', 1),
      "a A",
    );
  });

  it("expands a failing template to Prometheus' error text", () => {
    assert.match(expand("{{ humanize $labels.job }}", 1), /^<error expanding template: .*humanize/);
  });
});

describe("alert state machine", () => {
  const el = (value = 1) => ({
    labels: labelsOf([
      ["alertname", "A"],
      ["i", "1"],
    ]),
    annotations: labelsOf([]),
    value,
  });

  it("goes pending -> firing exactly after `for` and resolves when the condition ends", () => {
    const states = new AlertStates(60 * S, 0);
    states.update([el()], T0);
    assert.equal(states.list()[0]!.state, "pending");
    states.update([el()], T0 + 45 * S);
    assert.equal(states.list()[0]!.state, "pending");
    states.update([el()], T0 + 60 * S);
    assert.deepEqual([states.list()[0]!.state, states.list()[0]!.firedAtMs], ["firing", T0 + 60 * S]);
    const { resolved } = states.update([], T0 + 75 * S);
    assert.deepEqual(
      resolved.map((a) => [a.state, a.activeAtMs, a.resolvedAtMs]),
      [["firing", T0, T0 + 75 * S]],
    );
    assert.equal(states.size, 0);
  });

  it("drops a pending alert without resolving it, and starts `for` again", () => {
    const states = new AlertStates(60 * S, 0);
    states.update([el()], T0);
    assert.deepEqual(states.update([], T0 + 15 * S).resolved, []);
    states.update([el()], T0 + 30 * S);
    assert.equal(states.list()[0]!.activeAtMs, T0 + 30 * S);
  });

  it("fires at the first evaluation without `for`", () => {
    const states = new AlertStates(0, 0);
    states.update([el()], T0);
    assert.equal(states.list()[0]!.state, "firing");
  });

  it("keeps firing for exactly keep_firing_for after the condition was last met", () => {
    const states = new AlertStates(0, 30 * S);
    states.update([el()], T0);
    assert.deepEqual(states.update([], T0 + 15 * S).resolved, []);
    assert.equal(states.list()[0]!.keepFiringSinceMs, T0 + 15 * S);
    assert.deepEqual(states.update([], T0 + 30 * S).resolved, []);
    assert.equal(states.update([], T0 + 45 * S).resolved.length, 1);
    // Met again while kept firing: the same alert, its keep-firing clock reset.
    states.update([el()], T0 + 60 * S);
    states.update([], T0 + 75 * S);
    states.update([el(2)], T0 + 90 * S);
    assert.deepEqual(
      [states.list()[0]!.activeAtMs, states.list()[0]!.keepFiringSinceMs, states.list()[0]!.value],
      [T0 + 60 * S, undefined, 2],
    );
  });
});

describe("ruler on the embedded store", () => {
  let store: Store;
  before(async () => {
    store = await openStore();
    // up of two instances: a goes down at +30 s, b stays up; a 45-minute request rate with a spike at the end.
    await write(store, "t1", [
      gauge(
        "up",
        [
          ["job", "api"],
          ["instance", "a:9100"],
        ],
        0,
        [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
      ),
      gauge(
        "up",
        [
          ["job", "api"],
          ["instance", "b:9100"],
        ],
        0,
        Array(14).fill(1),
      ),
    ]);
  });
  after(() => store.close());

  it("evaluates alerting rules through pending, firing and resolved, notifying every sink", async () => {
    const clock = new Clock(T0);
    const path = ruleFile(
      [
        "groups:",
        "  - name: availability",
        "    interval: 15s",
        "    rules:",
        "      - alert: InstanceDown",
        "        expr: up == 0",
        "        for: 30s",
        "        labels: {severity: page}",
        "        annotations:",
        "          summary: '{{ $labels.instance }} of {{ $labels.job }} is down ({{ $value }})'",
      ].join("\n"),
    );
    const ruler = makeRuler(store, clock, { ruleFiles: [path] });
    const sink = new Collect();
    ruler.addSink(sink);
    assert.deepEqual(ruler.reload(), []);
    const states: string[] = [];
    for (let s = 0; s <= 180; s += 15) {
      clock.ms = T0 + s * S;
      await ruler.evaluateDue();
      const alerts = ruler.groups("t1")[0]!.states.values().next().value!.list();
      states.push(`${s}:${alerts.map((a) => a.state).join(",") || "-"}`);
    }
    // Down from +30 s: pending at 30 and 45, firing at 60 (30 s later), up again at +150 s: resolved there.
    assert.deepEqual(states, [
      "0:-",
      "15:-",
      "30:pending",
      "45:pending",
      "60:firing",
      "75:firing",
      "90:firing",
      "105:firing",
      "120:firing",
      "135:firing",
      "150:-",
      "165:-",
      "180:-",
    ]);
    const firing = sink.batches.flat().filter((n) => n.state === "firing");
    assert.equal(firing.length, 6);
    const notice = firing[0]!;
    assert.deepEqual(notice.labels, { alertname: "InstanceDown", instance: "a:9100", job: "api", severity: "page" });
    assert.deepEqual(notice.annotations, { summary: "a:9100 of api is down (0)" });
    assert.equal(notice.startsAt, new Date(T0 + 60 * S).toISOString());
    assert.equal(notice.generatorURL, "http://bifrost:3100/graph?g0.expr=up%20%3D%3D%200&g0.tab=1");
    assert.equal(notice.fingerprint, alertFingerprint(notice.labels));
    const resolved = sink.batches.flat().filter((n) => n.state === "resolved");
    assert.deepEqual(
      resolved.map((n) => [n.startsAt, n.endsAt, n.fingerprint]),
      [[notice.startsAt, new Date(T0 + 150 * S).toISOString(), notice.fingerprint]],
    );
    // The state is written as Prometheus' ALERTS and ALERTS_FOR_STATE series.
    assert.deepEqual(await valueAt(store, "t1", 'ALERTS{alertname="InstanceDown"}', T0 + 45 * S), [
      {
        labels: {
          __name__: "ALERTS",
          alertname: "InstanceDown",
          alertstate: "pending",
          instance: "a:9100",
          job: "api",
          severity: "page",
        },
        value: 1,
      },
    ]);
    assert.deepEqual(
      (await valueAt(store, "t1", "ALERTS_FOR_STATE", T0 + 90 * S)).map((s) => s.value),
      [(T0 + 30 * S) / 1000],
    );
  });

  it("writes recording rules back as samples that PromQL reads", async () => {
    const clock = new Clock(T0 + 60 * S);
    const path = ruleFile(
      [
        "groups:",
        "  - name: rec",
        "    rules:",
        "      - record: job:up:sum",
        "        expr: sum by (job) (up)",
        "        labels: {source: ruler}",
      ].join("\n"),
    );
    const ruler = makeRuler(store, clock, { ruleFiles: [path] });
    ruler.reload();
    await ruler.evaluateDue();
    clock.ms += 15 * S;
    await ruler.evaluateDue();
    assert.deepEqual(await valueAt(store, "t1", "job:up:sum", T0 + 60 * S), [
      { labels: { __name__: "job:up:sum", job: "api", source: "ruler" }, value: 1 },
    ]);
    assert.deepEqual(await valueAt(store, "t1", "job:up:sum * 2", T0 + 75 * S), [
      { labels: { job: "api", source: "ruler" }, value: 2 },
    ]);
    // Another tenant's store holds nothing of it.
    assert.deepEqual(await valueAt(store, "t2", "job:up:sum", T0 + 75 * S), []);
  });

  it("lets a rule use what the rules before it in its group recorded at the same evaluation", async () => {
    const clock = new Clock(T0 + 5 * 60 * S);
    const path = ruleFile(
      [
        "groups:",
        "  - name: chain",
        "    rules:",
        "      - record: chain:up:count",
        '        expr: count by (job) (up{job=~"a.*"})',
        "      - alert: FewUp",
        "        expr: chain:up:count < 3",
      ].join("\n"),
    );
    const ruler = makeRuler(store, clock, { ruleFiles: [path] });
    ruler.reload();
    await ruler.evaluateDue();
    const alerts = ruler.groups("t1")[0]!.states.values().next().value!.list();
    assert.deepEqual(
      alerts.map((a) => [a.labels["job"], a.value, a.state]),
      [["api", 2, "firing"]],
    );
  });

  it("answers selectors from one read per metric exactly as the store does", async () => {
    const view = new TickStore(store);
    const selects: LabelMatcher[][] = [
      [{ name: "__name__", op: "=", value: "up" }],
      [
        { name: "__name__", op: "=", value: "up" },
        { name: "instance", op: "=~", value: "a.*" },
      ],
      [
        { name: "__name__", op: "=", value: "up" },
        { name: "instance", op: "=~", value: "a" },
      ],
      [
        { name: "__name__", op: "=", value: "up" },
        { name: "instance", op: "!~", value: "b:9100|c" },
      ],
      [
        { name: "__name__", op: "=", value: "up" },
        { name: "zone", op: "!=", value: "x" },
      ],
      [
        { name: "__name__", op: "=", value: "up" },
        { name: "zone", op: "=", value: "" },
      ],
      [
        { name: "__name__", op: "=", value: "up" },
        { name: "job", op: "=", value: "none" },
      ],
    ];
    const windows = [
      [T0 + 30 * S, T0 + 90 * S],
      [T0 - 60 * S, T0 + 16 * S],
      [T0 + 100 * S, T0 + 200 * S],
    ] as const;
    for (const matchers of selects) {
      for (const [startMs, endMs] of windows) {
        const select = { tenant: "t1", matchers, startMs, endMs };
        const sorted = (rows: Awaited<ReturnType<Store["selectSamples"]>>) =>
          rows
            .map((r) => ({ labels: { ...r.labels }, points: r.points }))
            .sort((a, b) => (JSON.stringify(a.labels) < JSON.stringify(b.labels) ? -1 : 1));
        assert.deepEqual(
          sorted(await view.selectSamples(select)),
          sorted(await store.selectSamples(select)),
          JSON.stringify(select),
        );
      }
    }
  });

  it("reloads a watched directory: per-tenant files, changed files, invalid files keep their rules", async () => {
    const rulesDir = join(dir, "watched");
    const clock = new Clock(T0);
    const rec = (name: string) =>
      ["groups:", "  - name: g", "    rules:", `      - record: ${name}`, "        expr: up"].join("\n");
    ruleFile(rec("shared:up"), "shared.yaml", rulesDir);
    ruleFile(rec("one:up"), "one.yml", join(rulesDir, "t9"));
    ruleFile("not: rules", "notes.txt", join(rulesDir, "t9"));
    const ruler = makeRuler(store, clock, { rulesDir, tenants: ["t1", "t2"] });
    assert.deepEqual(ruler.reload(), []);
    const names = (tenant: string) => ruler.groups(tenant).flatMap((g) => g.group.rules.map((r) => r.name));
    assert.deepEqual([names("t1"), names("t2"), names("t9")], [["shared:up"], ["shared:up"], ["one:up"]]);
    const before = ruler.groups("t9")[0];
    assert.deepEqual(ruler.reload(), []);
    assert.equal(ruler.groups("t9")[0], before, "an unchanged file keeps its groups");
    ruleFile(rec("two:up"), "one.yml", join(rulesDir, "t9"));
    ruler.reload();
    assert.deepEqual(names("t9"), ["two:up"]);
    ruleFile(
      "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: 'sum('\n",
      "one.yml",
      join(rulesDir, "t9"),
    );
    const problems = ruler.reload();
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /t9\/one\.yml:5:15: group "g", rule 1: x: could not parse expression/);
    assert.deepEqual(names("t9"), ["two:up"]);
    rmSync(join(rulesDir, "t9"), { recursive: true });
    ruler.reload();
    assert.deepEqual(names("t9"), []);
  });

  it("answers /api/v1/rules and /api/v1/alerts in Prometheus' shapes for the request's tenant", async () => {
    const clock = new Clock(T0 + 60 * S);
    const path = ruleFile(
      [
        "groups:",
        "  - name: api",
        "    rules:",
        "      - alert: InstanceDown",
        "        expr: up == 0",
        "        for: 15s",
        "        labels: {severity: page}",
        "        annotations: {summary: down}",
        "      - record: job:up:sum",
        "        expr: sum by (job) (up)",
      ].join("\n"),
    );
    const ruler = makeRuler(store, clock, { ruleFiles: [path] });
    ruler.reload();
    await ruler.evaluateDue();
    const app = new Hono();
    app.use(new Authenticator(configSchema().parse({}).auth, "t1").middleware());
    rulerRoutes(app, ruler);
    const rules = (await (await app.request("/prometheus/api/v1/rules")).json()) as {
      status: string;
      data: { groups: Record<string, unknown>[] };
    };
    assert.equal(rules.status, "success");
    const group = rules.data.groups[0]!;
    const {
      evaluationTime,
      rules: ruleList,
      ...groupRest
    } = group as { evaluationTime: number; rules: Record<string, unknown>[] };
    assert.equal(typeof evaluationTime, "number");
    assert.deepEqual(groupRest, {
      name: "api",
      file: path,
      interval: 15,
      limit: 0,
      lastEvaluation: new Date(T0 + 60 * S).toISOString(),
    });
    const [alerting, recording] = ruleList.map(
      ({ evaluationTime: time, ...rest }) => (assert.equal(typeof time, "number"), rest),
    );
    assert.deepEqual(alerting, {
      state: "pending",
      name: "InstanceDown",
      query: "up == 0",
      labels: { severity: "page" },
      health: "ok",
      lastError: "",
      lastEvaluation: new Date(T0 + 60 * S).toISOString(),
      duration: 15,
      keepFiringFor: 0,
      annotations: { summary: "down" },
      alerts: [
        {
          labels: { alertname: "InstanceDown", instance: "a:9100", job: "api", severity: "page" },
          annotations: { summary: "down" },
          state: "pending",
          activeAt: new Date(T0 + 60 * S).toISOString(),
          value: "0e+00",
        },
      ],
      type: "alerting",
    });
    assert.deepEqual(recording, {
      name: "job:up:sum",
      query: "sum by (job) (up)",
      labels: {},
      health: "ok",
      lastError: "",
      lastEvaluation: new Date(T0 + 60 * S).toISOString(),
      type: "recording",
    });
    const only = (await (await app.request("/api/v1/rules?type=record")).json()) as {
      data: { groups: { rules: { type: string }[] }[] };
    };
    assert.deepEqual(
      only.data.groups[0]!.rules.map((r) => r.type),
      ["recording"],
    );
    const alerts = (await (await app.request("/api/v1/alerts")).json()) as {
      status: string;
      data: { alerts: unknown[] };
    };
    assert.deepEqual(alerts, { status: "success", data: { alerts: (alerting as { alerts: unknown[] }).alerts } });
    const other = (await (await app.request("/api/v1/alerts", { headers: { "X-Scope-OrgID": "t2" } })).json()) as {
      data: { alerts: unknown[] };
    };
    assert.deepEqual(other.data.alerts, []);
    assert.equal((await app.request("/api/v1/rules?type=bogus")).status, 400);
    assert.deepEqual(
      [formatFloatE(1), formatFloatE(0.5), formatFloatE(1234.5), formatFloatE(1e-7), formatFloatE(-Infinity)],
      ["1e+00", "5e-01", "1.2345e+03", "1e-07", "-Inf"],
    );
  });

  it("marks a rule that fails with its error and keeps evaluating the others", async () => {
    const clock = new Clock(T0 + 60 * S);
    const path = ruleFile(
      [
        "groups:",
        "  - name: lim",
        "    limit: 1",
        "    rules:",
        "      - alert: AnyUp",
        "        expr: up >= 0",
        "      - record: r:ok",
        "        expr: vector(1)",
      ].join("\n"),
    );
    const ruler = makeRuler(store, clock, { ruleFiles: [path] });
    ruler.reload();
    await ruler.evaluateDue();
    const runner = ruler.groups("t1")[0]!;
    const [alert, record] = runner.group.rules;
    assert.deepEqual(
      [runner.health.get(alert!)!.health, runner.health.get(alert!)!.lastError],
      ["err", "exceeded limit of 1 with 2 alerts"],
    );
    assert.equal(runner.states.get(alert!)!.size, 0);
    assert.equal(runner.health.get(record!)!.health, "ok");
  });
});

describe("alert state across a restart", () => {
  it("restores activeAt in the middle of `for`, and a firing alert without a new startsAt", async () => {
    const path = join(dir, "restart.duckdb");
    let store = await openStore(path);
    await write(store, "t1", [
      gauge("load", [["host", "h1"]], 0, Array(41).fill(5)),
      gauge("load", [["host", "h2"]], 0, [...Array(4).fill(1), ...Array(37).fill(5)]),
    ]);
    const rules = ruleFile(
      [
        "groups:",
        "  - name: load",
        "    rules:",
        "      - alert: HighLoad",
        "        expr: load > 3",
        "        for: 2m",
      ].join("\n"),
    );
    const clock = new Clock(T0);
    const run = async (ruler: Ruler, untilS: number) => {
      for (; clock.ms <= T0 + untilS * S; clock.ms += 15 * S) await ruler.evaluateDue();
    };
    const first = makeRuler(store, clock, { ruleFiles: [rules] });
    first.reload();
    await run(first, 150);
    // h1 active since T0, firing since +120 s; h2 active since +60 s, pending.
    const before = first.groups("t1")[0]!.states.values().next().value!.list();
    assert.deepEqual(
      before.map((a) => [a.labels["host"], a.state, a.activeAtMs - T0]),
      [
        ["h1", "firing", 0],
        ["h2", "pending", 60 * S],
      ],
    );
    await store.close();

    // Down for 45 s; the restarted service reads the state back from the store.
    clock.ms += 45 * S;
    store = await openStore(path);
    const second = makeRuler(store, clock, { ruleFiles: [rules] });
    const sink = new Collect();
    second.addSink(sink);
    second.reload();
    await second.evaluateDue();
    const after = second.groups("t1")[0]!.states.values().next().value!.list();
    assert.deepEqual(
      after.map((a) => [a.labels["host"], a.state, a.activeAtMs - T0]),
      [
        ["h1", "firing", 0],
        ["h2", "firing", 60 * S],
      ],
    );
    const evalS = (clock.ms - T0) / S;
    // h2 fires at the first evaluation 2 min after its activeAt (+180 s or later), not 2 min after the restart.
    assert.ok(evalS >= 180 && evalS < 240, String(evalS));
    const h1 = sink.last.find((n) => n.labels["host"] === "h1")!;
    assert.equal(h1.startsAt, new Date(T0 + 120 * S).toISOString(), "the same alert, not a new page");
    await store.close();
  });

  it("does not restore state older than the outage tolerance", async () => {
    const store = await openStore();
    await write(store, "t1", [gauge("load", [["host", "h1"]], 0, Array(300).fill(5))]);
    const rules = ruleFile(
      [
        "groups:",
        "  - name: load",
        "    rules:",
        "      - alert: HighLoad",
        "        expr: load > 3",
        "        for: 10m",
      ].join("\n"),
    );
    const clock = new Clock(T0);
    const first = makeRuler(store, clock, { ruleFiles: [rules], outageToleranceMs: 60 * S });
    first.reload();
    await first.evaluateDue();
    clock.ms = T0 + 5 * 60 * S;
    const second = makeRuler(store, clock, { ruleFiles: [rules], outageToleranceMs: 60 * S });
    second.reload();
    await second.evaluateDue();
    assert.equal(second.groups("t1")[0]!.states.values().next().value!.list()[0]!.activeAtMs, T0 + 5 * 60 * S);
    await store.close();
  });
});

describe("anomaly rules", () => {
  it("computes z-score and MAD bands, the MAD one unmoved by an outlier in the history", () => {
    const history = [10, 11, 9, 10, 11, 9, 10, 11, 9, 10];
    const z = anomalyBand(history, 10, "zscore", 3, 5)!;
    assert.equal(z.baseline, 10);
    assert.ok(Math.abs(z.upper - (10 + 3 * Math.sqrt(0.6))) < 1e-12);
    const mad = anomalyBand([...history, 1000], 10, "mad", 3, 5)!;
    assert.deepEqual([mad.baseline, mad.upper, mad.lower], [10, 10 + 3 * 1.4826, 10 - 3 * 1.4826]);
    assert.equal(anomalyBand(history.slice(0, 4), 10, "zscore", 3, 5), undefined);
  });

  for (const method of ["zscore", "mad"] as const) {
    it(`fires on a spike and writes baseline and band series (${method})`, async () => {
      const store = await openStore();
      // 45 minutes of a request rate around 100 (±2), then a spike to 160 for two evaluations.
      const values = Array.from({ length: 180 }, (_, i) => 100 + [0, 2, -2, 1, -1][i % 5]!);
      await write(store, "t1", [
        gauge("requests", [["svc", "api"]], -180 * 15, values),
        gauge("requests", [["svc", "api"]], 0, [100, 160, 160, 101]),
      ]);
      const rules = ruleFile(
        [
          "groups:",
          "  - name: anomalies",
          "    interval: 15s",
          "    rules:",
          "      - anomaly: requests_anomaly",
          "        expr: requests",
          `        method: ${method}`,
          "        window: 30m",
          "        min_samples: 20",
          "        sensitivity: 4",
          "        labels: {severity: warn}",
          "        annotations: {summary: '{{ $labels.svc }} at {{ $value }}'}",
        ].join("\n"),
      );
      const clock = new Clock(T0);
      const ruler = makeRuler(store, clock, { ruleFiles: [rules] });
      const sink = new Collect();
      ruler.addSink(sink);
      assert.deepEqual(ruler.reload(), []);
      const firing: number[] = [];
      for (let s = 0; s <= 45; s += 15) {
        clock.ms = T0 + s * S;
        await ruler.evaluateDue();
        if (sink.batches.length > 0 && sink.last.some((n) => n.state === "firing")) firing.push(s);
      }
      assert.deepEqual(firing, [15, 30]);
      assert.deepEqual(sink.batches.flat()[0]!.annotations, { summary: "api at 160" });
      assert.equal(sink.last.find((n) => n.state === "resolved")?.labels["alertname"], "requests_anomaly");
      const [baseline] = await valueAt(store, "t1", "requests_anomaly:baseline", T0 + 15 * S);
      assert.deepEqual(baseline!.labels, { __name__: "requests_anomaly:baseline", severity: "warn", svc: "api" });
      assert.ok(Math.abs(baseline!.value - 100) < 1, String(baseline!.value));
      const [upper] = await valueAt(store, "t1", "requests_anomaly:upper", T0 + 15 * S);
      const [lower] = await valueAt(store, "t1", "requests_anomaly:lower", T0 + 15 * S);
      assert.ok(upper!.value > 104 && upper!.value < 160 && lower!.value < 96, `${lower!.value} ${upper!.value}`);
      await store.close();
    });
  }

  it("reads the history one season back", async () => {
    const store = await openStore();
    // Yesterday around this time the value was 500; now it is 100 (normal for the last hour, anomalous for the season).
    await write(store, "t1", [
      gauge(
        "orders",
        [],
        -86_400 - 900,
        Array(121)
          .fill(500)
          .map((v, i) => v + (i % 3)),
      ),
      gauge("orders", [], 0, [100]),
    ]);
    const rules = ruleFile(
      [
        "groups:",
        "  - name: s",
        "    rules:",
        "      - anomaly: orders_anomaly",
        "        expr: orders",
        "        window: 30m",
        "        seasonality: 1d",
        "        min_samples: 20",
      ].join("\n"),
    );
    const clock = new Clock(T0);
    const ruler = makeRuler(store, clock, { ruleFiles: [rules] });
    assert.deepEqual(ruler.reload(), []);
    await ruler.evaluateDue();
    const [baseline] = await valueAt(store, "t1", "orders_anomaly:baseline", T0);
    assert.ok(Math.abs(baseline!.value - 501) < 1, String(baseline!.value));
    assert.equal(ruler.groups("t1")[0]!.states.values().next().value!.list()[0]!.state, "firing");
    await store.close();
  });
});

describe("LogQL rules", () => {
  it("alert on and record a log rate, read from the tenant's streams", async () => {
    const store = await openStore();
    // One error line every 5 s for the api from T0 - 60 s; the web app logs only info lines.
    const entries = (line: string, count: number) =>
      Array.from({ length: count }, (_, i) => ({
        timeUnixNano: BigInt(T0 - 60 * S + i * 5 * S) * 1_000_000n,
        line,
        metadata: labelsOf([]),
      }));
    await store.appendLogs([
      {
        id: "test/logs",
        tenant: "t1",
        streams: [
          { labels: labelsOf([["app", "api"]]), entries: entries("level=error msg=boom", 30) },
          { labels: labelsOf([["app", "web"]]), entries: entries("level=info msg=ok", 30) },
        ],
      },
    ]);
    const rules = ruleFile(
      [
        "groups:",
        "  - name: logs",
        "    rules:",
        "      - alert: ErrorBurst",
        '        expr: sum by (app) (count_over_time({app=~".+"} |= "error" [1m])) > 5',
        "        annotations: {summary: '{{ $labels.app }}: {{ $value }} errors a minute'}",
        "      - record: app:log_lines:rate1m",
        '        expr: sum by (app) (rate({app=~".+"}[1m]))',
      ].join("\n"),
    );
    const clock = new Clock(T0);
    const ruler = makeRuler(store, clock, { ruleFiles: [rules] });
    const sink = new Collect();
    ruler.addSink(sink);
    assert.deepEqual(ruler.reload(), []);
    assert.deepEqual(
      ruler.groups("t1")[0]!.group.rules.map((r) => r.expr.language),
      ["logql", "logql"],
    );
    await ruler.evaluateDue();
    // (T0 - 60 s, T0] holds the lines at -55 s, -50 s, ... 0 s: 12 of each app, 0.2 a second.
    assert.deepEqual(
      sink.last.map((n) => [n.labels["app"], n.state, n.annotations["summary"]]),
      [["api", "firing", "api: 12 errors a minute"]],
    );
    const rates = await valueAt(store, "t1", "app:log_lines:rate1m", T0);
    assert.deepEqual(
      rates.map((s) => [s.labels["app"], s.value]),
      [
        ["api", 0.2],
        ["web", 0.2],
      ],
    );
    await store.close();
  });
});
