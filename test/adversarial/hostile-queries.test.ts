import assert from "node:assert/strict";
import { type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { until } from "../helpers/aggregation.js";
import { output, runBifrost, stopChild, waitForReady } from "../helpers/processes.js";
import { freePort } from "../helpers/services.js";

// Hostile LogQL and PromQL against `bifrost all`, the mode where one process serves queries and ingestion: every
// query is answered with a 4xx and its reason, or processed correctly; while each runs, the collector's /ready
// answers, in the median, within READY_BOUND_MS, and never stalls as long as READY_STALL_MS (a query holding the
// event loop would hold it for seconds; a single slow answer on a shared 2-core machine is a GC pause or the
// scheduler, so one answer alone is not held to 100 ms), and the process stays under RSS_BOUND_BYTES. A PromQL query holds at most
// MAX_SAMPLES samples, each ~200 bytes in this engine, so the bound is what `all` holds at rest plus that.

const READY_BOUND_MS = 100;
const READY_STALL_MS = 1_000;
const RSS_BOUND_BYTES = 1024 * 1024 * 1024;
const QUERY_TIMEOUT_MS = 2_000;
const MAX_SAMPLES = 1_000_000;

/** 40 `a`s and a character that makes every nested-quantifier pattern fail: exponential on a backtracking engine. */
const EVIL = "a".repeat(40) + "!";

interface Probe {
  readyMs: number[];
  maxRssBytes: number;
}

/** Polls the collector's /ready and reads the process's RSS until stopped. */
function probe(readyUrl: string, pid: number): { stop: () => Promise<Probe> } {
  const result: Probe = { readyMs: [], maxRssBytes: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      const start = performance.now();
      const response = await fetch(readyUrl);
      await response.text();
      result.readyMs.push(performance.now() - start);
      assert.equal(response.status, 200);
      const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      result.maxRssBytes = Math.max(result.maxRssBytes, Number(rss![1]) * 1024);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return result;
    },
  };
}

interface Answer {
  status: number;
  body: string;
}

interface Case {
  name: string;
  path: string;
  params: Record<string, string>;
  check: (answer: Answer) => void;
}

function refused(status: number, reason: RegExp): (answer: Answer) => void {
  return ({ status: actual, body }) => {
    assert.equal(actual, status, body);
    assert.match(body, reason);
  };
}

function logLines(expected: string[]): (answer: Answer) => void {
  return ({ status, body }) => {
    assert.equal(status, 200, body);
    const data = (JSON.parse(body) as { data: { result: { values: [string, string][] }[] } }).data;
    assert.deepEqual(data.result.flatMap((s) => s.values.map(([, line]) => line)).sort(), [...expected].sort());
  };
}

function resultCount(count: number): (answer: Answer) => void {
  return ({ status, body }) => {
    assert.equal(status, 200, body);
    assert.equal((JSON.parse(body) as { data: { result: unknown[] } }).data.result.length, count, body);
  };
}

const deep = (open: string, inner: string, close: string, depth: number) =>
  open.repeat(depth) + inner + close.repeat(depth);

describe("hostile queries against bifrost all", () => {
  let child: ChildProcess;
  let exited: ReturnType<typeof output>;
  let api: string;
  let readyUrl: string;
  let data: string;
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const lines = [EVIL, JSON.stringify({ msg: EVIL }), `msg=${EVIL}`];
  const range = { start: String(nowNs - 3_600_000_000_000n), end: String(nowNs + 60_000_000_000n) };
  const nowS = String(Number(nowNs / 1_000_000_000n));

  before(async () => {
    const [query, collector, aggregator, grpc] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    data = mkdtempSync(join(tmpdir(), "bifrost-hostile-"));
    child = runBifrost(["all"], {
      BIFROST_STORAGE__PATH: data,
      BIFROST_COLLECTOR__WAL__DIR: join(data, "wal"),
      BIFROST_QUERY__LISTEN: `127.0.0.1:${query}`,
      BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${collector}`,
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${grpc}`,
      BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${aggregator}`,
      BIFROST_QUERY__LIMITS__QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      BIFROST_QUERY__LIMITS__MAX_SAMPLES: String(MAX_SAMPLES),
    });
    exited = output(child);
    api = `http://127.0.0.1:${query}`;
    readyUrl = `http://127.0.0.1:${collector}/ready`;
    for (const port of [query, collector]) await waitForReady(`http://127.0.0.1:${port}/ready`, child);
    const pushed = await fetch(`http://127.0.0.1:${collector}/loki/api/v1/push`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        streams: [{ stream: { app: "hostile" }, values: lines.map((line, i) => [String(nowNs + BigInt(i)), line]) }],
      }),
    });
    assert.equal(pushed.status, 204);
    await until("the pushed lines through the Loki API", async () => {
      const params = new URLSearchParams({ query: '{app="hostile"}', ...range });
      const body = (await (await fetch(`${api}/loki/api/v1/query_range?${params}`)).json()) as {
        data: { result: { values: unknown[] }[] };
      };
      return body.data.result.reduce((n, s) => n + s.values.length, 0) === lines.length;
    });
  });

  after(async () => {
    await stopChild(child);
    const { code, stderr } = await exited;
    rmSync(data, { recursive: true, force: true });
    assert.equal(code, 0, stderr);
  });

  const loki = (name: string, query: string, check: Case["check"], extra: Record<string, string> = {}): Case => ({
    name: `LogQL: ${name}`,
    path: "/loki/api/v1/query_range",
    params: { query, ...range, ...extra },
    check,
  });
  const prom = (name: string, query: string, check: Case["check"], extra?: Record<string, string>): Case => ({
    name: `PromQL: ${name}`,
    path: extra === undefined ? "/api/v1/query" : "/api/v1/query_range",
    params: extra === undefined ? { query, time: nowS } : { query, ...extra },
    check,
  });
  const promRange = { start: String(Number(nowS) - 86_400), end: nowS, step: "60" };
  const nestedLabelReplace = `label_replace(label_replace(vector(1), "src", "${EVIL}", "", ""), "dst", "$1", "src", "(a+)+$")`;

  const cases: Case[] = [
    loki("ReDoS line filter", '{app="hostile"} |~ "(a+)+$"', logLines([])),
    loki("ReDoS negated line filter", '{app="hostile"} !~ "(a|aa)+$"', logLines(lines)),
    loki("ReDoS line filter matching", '{app="hostile"} |~ "(a+)+!"', logLines(lines)),
    loki("ReDoS stream matcher", '{app=~"(h+)+$|hostile"} |~ "(a|a?)+b"', logLines([])),
    loki("ReDoS label filter after json", '{app="hostile"} | json | msg=~"(a|aa)+$"', logLines([])),
    loki("ReDoS label filter after logfmt", '{app="hostile"} | logfmt | msg!~"(a|aa)+$"', logLines(lines)),
    loki("ReDoS regexp stage", '{app="hostile"} | regexp "(?P<x>(a+)+$)" | x != ""', logLines([])),
    loki(
      "ReDoS label_replace",
      `label_replace(sum by (msg) (count_over_time({app="hostile"} | json | __error__="" [1h])), "x", "$1", "msg", "(a|aa)+$")`,
      resultCount(1),
      { step: "60" },
    ),
    loki("regex with a backreference", '{app="hostile"} |~ "(a)\\\\1"', refused(400, /invalid escape sequence/)),
    loki("step too small for the range", 'count_over_time({app="hostile"}[1m])', refused(400, /11,000 points/), {
      step: "0.001",
    }),
    loki("range longer than max_query_length", '{app="hostile"}', refused(400, /max_query_length/), {
      start: String(nowNs - 400n * 86_400_000_000_000n),
    }),
    loki("limit over max_entries_limit_per_query", '{app="hostile"}', refused(400, /max entries limit/), {
      limit: "1000000000",
    }),
    loki(
      "parentheses 10,000 deep",
      deep("(", 'count_over_time({app="hostile"}[1m])', ")", 10_000),
      refused(400, /nested deeper/),
      { step: "60" },
    ),
    loki(
      "sum( 3,000 deep",
      deep("sum(", 'count_over_time({app="hostile"}[1m])', ")", 3_000),
      refused(400, /nested deeper/),
      { step: "60" },
    ),
    loki(
      "label filters 10,000 deep",
      `{app="hostile"} | ${deep("(", "x=1", ")", 10_000)}`,
      refused(400, /nested deeper/),
    ),
    loki(
      "an or-chain 2,000 long",
      `{app="hostile"} | ${Array(2_000).fill("x=1").join(" or ")}`,
      refused(400, /deeper than/),
    ),
    prom("ReDoS name matcher", '{__name__=~"(a+)+$"}', resultCount(0)),
    prom("ReDoS in label_replace", nestedLabelReplace, resultCount(1)),
    prom("huge subquery", "max_over_time(vector(1)[30d:1ms])", refused(422, /too many samples/)),
    prom("nested subqueries", "max_over_time(max_over_time(vector(1)[1d:1s])[1d:1s])", refused(503, /timed out/)),
    prom(
      "nested subqueries over max_samples",
      "max_over_time(max_over_time(vector(1)[1d:10ms])[1d:1s])",
      refused(422, /too many samples/),
    ),
    prom(
      "subquery over a range query",
      "max_over_time(vector(1)[1d:10ms])",
      refused(422, /too many samples/),
      promRange,
    ),
    prom("too many points per series", "vector(1)", refused(400, /11,000 points/), { ...promRange, step: "0.001" }),
    prom("a subquery just over max_samples", "max_over_time(vector(1)[1d:80ms])", refused(422, /too many samples/)),
    prom("a subquery within max_samples is evaluated", "count_over_time(vector(1)[1d:1s])", ({ status, body }) => {
      assert.equal(status, 200, body);
      assert.match(body, /"86400"/);
    }),
    prom(
      "a long evaluation runs into the query timeout",
      Array(400).fill("vector(1)").join(" + "),
      refused(503, /timed out/),
      { ...promRange, step: "8" },
    ),
    prom("parentheses 10,000 deep", deep("(", "1", ")", 10_000), refused(400, /nested deeper/)),
    prom("sum( 10,000 deep", deep("sum(", "vector(1)", ")", 10_000), refused(400, /nested deeper/)),
    prom("unary minus 10,000 deep", "-".repeat(10_000) + "1", refused(400, /nested deeper/)),
    prom("a chain 5,000 long", Array(5_000).fill("vector(1)").join(" + "), refused(400, /deeper than/)),
    prom("sum( 400 deep is evaluated", deep("sum(", "vector(1)", ")", 400), resultCount(1)),
    prom("regex with lookbehind", '{__name__=~"(?<=a)b"}', refused(400, /invalid or unsupported Perl syntax/)),
  ];

  for (const one of cases) {
    it(one.name, async (t) => {
      const running = probe(readyUrl, child.pid!);
      let answer: Answer;
      try {
        const response = await fetch(`${api}${one.path}`, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(one.params),
        });
        answer = { status: response.status, body: await response.text() };
      } finally {
        const { readyMs, maxRssBytes } = await running.stop();
        const sorted = [...readyMs].sort((a, b) => a - b);
        const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
        const slowest = sorted.at(-1) ?? 0;
        t.diagnostic(
          `collector /ready: ${sorted.length} answers, median ${median.toFixed(1)} ms, slowest ${slowest.toFixed(1)} ms`,
        );
        assert.ok(
          median < READY_BOUND_MS,
          `collector /ready took ${median.toFixed(1)} ms in the median during the query`,
        );
        assert.ok(slowest < READY_STALL_MS, `collector /ready took ${slowest.toFixed(1)} ms during the query`);
        assert.ok(maxRssBytes < RSS_BOUND_BYTES, `RSS reached ${(maxRssBytes / 2 ** 20).toFixed(0)} MiB`);
      }
      one.check(answer);
    });
  }
});

describe("a LogQL metric query over more lines than max_samples", () => {
  const MAX_LOGQL_SAMPLES = 5_000;
  const LINES = 10_000;
  let child: ChildProcess;
  let exited: ReturnType<typeof output>;
  let api: string;
  let readyUrl: string;
  let data: string;
  const nowNs = BigInt(Date.now()) * 1_000_000n;

  before(async () => {
    const [query, collector, aggregator, grpc] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    data = mkdtempSync(join(tmpdir(), "bifrost-hostile-samples-"));
    child = runBifrost(["all"], {
      BIFROST_STORAGE__PATH: data,
      BIFROST_COLLECTOR__WAL__DIR: join(data, "wal"),
      BIFROST_QUERY__LISTEN: `127.0.0.1:${query}`,
      BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${collector}`,
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${grpc}`,
      BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${aggregator}`,
      BIFROST_QUERY__LIMITS__MAX_SAMPLES: String(MAX_LOGQL_SAMPLES),
    });
    exited = output(child);
    api = `http://127.0.0.1:${query}`;
    readyUrl = `http://127.0.0.1:${collector}/ready`;
    for (const port of [query, collector]) await waitForReady(`http://127.0.0.1:${port}/ready`, child);
    // One line a millisecond for ten seconds.
    const values = Array.from({ length: LINES }, (_, i) => [String(nowNs + BigInt(i) * 1_000_000n), `n=${i}`]);
    const pushed = await fetch(`http://127.0.0.1:${collector}/loki/api/v1/push`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ streams: [{ stream: { app: "many" }, values }] }),
    });
    assert.equal(pushed.status, 204, await pushed.text());
    await until("every line countable", async () => {
      const params = new URLSearchParams({
        query: 'sum(count_over_time({app="many"}[1h]))',
        time: String(nowNs + 60_000_000_000n),
      });
      const body = (await (await fetch(`${api}/loki/api/v1/query?${params}`)).json()) as {
        data: { result: { value: [number, string] }[] };
      };
      return body.data.result[0]?.value[1] === String(LINES);
    });
  });

  after(async () => {
    await stopChild(child);
    const { code, stderr } = await exited;
    rmSync(data, { recursive: true, force: true });
    assert.equal(code, 0, stderr);
  });

  const run = async (query: string, step: string): Promise<Answer> => {
    const running = probe(readyUrl, child.pid!);
    try {
      const response = await fetch(`${api}/loki/api/v1/query_range`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          query,
          start: String(nowNs - 60_000_000_000n),
          end: String(nowNs + 60_000_000_000n),
          step,
        }),
      });
      return { status: response.status, body: await response.text() };
    } finally {
      const { readyMs, maxRssBytes } = await running.stop();
      assert.ok(Math.max(...readyMs) < READY_STALL_MS, `collector /ready took ${Math.max(...readyMs)} ms`);
      assert.ok(maxRssBytes < RSS_BOUND_BYTES, `RSS reached ${(maxRssBytes / 2 ** 20).toFixed(0)} MiB`);
    }
  };

  it(`refuses with 400 and the reason a range window that would hold all ${LINES} lines (max_samples ${MAX_LOGQL_SAMPLES})`, async () => {
    refused(
      400,
      /too many samples.*max_samples/,
    )(await run('count_over_time({app="many"} | logfmt | drop n [1h])', "60"));
  });

  it("evaluates the same lines through windows that each hold fewer than max_samples", async () => {
    const { status, body } = await run('sum(count_over_time({app="many"} | logfmt | drop n [1s]))', "1");
    assert.equal(status, 200, body);
    const points = (JSON.parse(body) as { data: { result: { values: [number, string][] }[] } }).data.result.flatMap(
      (s) => s.values,
    );
    // Windows of one second at steps of one second tile the range: every line is counted once.
    assert.equal(
      points.reduce((n, [, v]) => n + Number(v), 0),
      LINES,
    );
  });
});
