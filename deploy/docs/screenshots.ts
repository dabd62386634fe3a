#!/usr/bin/env node
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { until } from "../../test/helpers/wait.js";
import { freePort, REPO_ROOT } from "../../test/helpers/services.js";

// npm run docs:screenshots  (or: node dist/deploy/docs/screenshots.js [chromium path])
//
// Takes the pictures in docs/images/ from a real run, not in CI: `bifrost all` (collector, aggregator, embedded
// store and query in one process, no Kafka) with demo logs and metrics pushed through the collector, Debian's
// Prometheus scraping Bifrost's /metrics, and Debian's Chromium, headless, driven by playwright-core.
// Grafana itself is not installable from the package registries this project may use (docs/grafana.md), so
// the pictures show the answers Grafana's data sources get and Prometheus's view of Bifrost's own metrics.

const CHROMIUM = process.argv[2] ?? "/usr/bin/chromium";
const IMAGES = join(REPO_ROOT, "docs", "images");
const DEMO_MINUTES = 30;
const APPS = ["checkout", "payments", "search"];

function progress(message: string): void {
  process.stderr.write(`screenshots: ${message}\n`);
}

async function ready(url: string, child: ChildProcess): Promise<void> {
  await until(
    url,
    async () => {
      if (child.exitCode !== null) throw new Error(`${child.spawnargs.join(" ")} exited with ${child.exitCode}`);
      return fetch(url).then(
        (r) => r.ok,
        () => false,
      );
    },
    60_000,
  );
}

/** A deterministic mix of requests per app and minute, so that the pictures are the same on every run. */
function requestsAt(app: number, minute: number): number {
  return 20 + 10 * app + Math.round(8 * Math.sin((minute + 3 * app) / 4));
}

async function pushDemoData(collector: string, nowMs: number): Promise<void> {
  const streams = APPS.flatMap((app, a) =>
    ["info", "error"].map((level) => ({
      stream: { app, env: "demo", level },
      values: Array.from({ length: DEMO_MINUTES }, (_, m) => {
        const count = level === "error" ? Math.max(0, requestsAt(a, m) - 24 - 4 * a) : 3;
        return Array.from({ length: count }, (_, i) => {
          const ns = BigInt(nowMs - (DEMO_MINUTES - m) * 60_000 + i * 997) * 1_000_000n;
          const line =
            level === "error"
              ? `level=error app=${app} msg="upstream timeout" route=/api/${app} duration_ms=${900 + i * 13}`
              : `level=info app=${app} msg="request served" route=/api/${app} status=200`;
          return [String(ns), line];
        });
      }).flat(),
    })),
  );
  const logs = await fetch(`${collector}/loki/api/v1/push`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ streams }),
  });
  if (logs.status !== 204) throw new Error(`log push answered ${logs.status}: ${await logs.text()}`);

  const resourceMetrics = APPS.map((app, a) => {
    let total = 0;
    const dataPoints = Array.from({ length: DEMO_MINUTES * 4 }, (_, q) => {
      total += requestsAt(a, Math.floor(q / 4)) * 15;
      return {
        timeUnixNano: String(BigInt(nowMs - (DEMO_MINUTES * 4 - q) * 15_000) * 1_000_000n),
        asInt: String(total),
        attributes: [{ key: "env", value: { stringValue: "demo" } }],
      };
    });
    return {
      resource: { attributes: [{ key: "service.name", value: { stringValue: app } }] },
      scopeMetrics: [
        {
          metrics: [{ name: "http_requests_total", sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints } }],
        },
      ],
    };
  });
  const metrics = await fetch(`${collector}/v1/metrics`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ resourceMetrics }),
  });
  if (metrics.status !== 200) throw new Error(`OTLP push answered ${metrics.status}: ${await metrics.text()}`);
}

async function main(): Promise<void> {
  if (spawnSync("prometheus", ["--version"]).error !== undefined)
    throw new Error("prometheus is not installed (apt-get install prometheus)");
  mkdirSync(IMAGES, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), "bifrost-screenshots-"));
  const [query, collector, aggregator, grpc, prometheusPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const children: ChildProcess[] = [];
  try {
    progress("starting bifrost all");
    const bifrost = spawn(process.execPath, [join(REPO_ROOT, "dist", "cli.js"), "all"], {
      env: {
        ...process.env,
        BIFROST_STORAGE__PATH: join(dir, "data"),
        BIFROST_COLLECTOR__WAL__DIR: join(dir, "wal"),
        BIFROST_QUERY__NOTIFIER__STATE_FILE: join(dir, "notifier", "state.json"),
        BIFROST_QUERY__NOTIFIER__DEAD_LETTER_DIR: join(dir, "notifier", "dead-letter"),
        BIFROST_QUERY__LISTEN: `127.0.0.1:${query}`,
        BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${collector}`,
        BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${grpc}`,
        BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${aggregator}`,
        BIFROST_LOG__LEVEL: "warn",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(bifrost);
    const queryUrl = `http://127.0.0.1:${query}`;
    const collectorUrl = `http://127.0.0.1:${collector}`;
    for (const url of [queryUrl, collectorUrl, `http://127.0.0.1:${aggregator}`]) await ready(`${url}/ready`, bifrost);

    progress("starting prometheus, scraping bifrost's /metrics");
    const promConfig = join(dir, "prometheus.yml");
    writeFileSync(
      promConfig,
      `global: { scrape_interval: 5s }\nscrape_configs:\n  - job_name: bifrost\n    static_configs:\n      - targets: ["127.0.0.1:${query}", "127.0.0.1:${collector}", "127.0.0.1:${aggregator}"]\n`,
    );
    const prometheus = spawn(
      "prometheus",
      [
        `--config.file=${promConfig}`,
        `--storage.tsdb.path=${join(dir, "prometheus")}`,
        `--web.listen-address=127.0.0.1:${prometheusPort}`,
      ],
      { stdio: "ignore" },
    );
    children.push(prometheus);
    const prometheusUrl = `http://127.0.0.1:${prometheusPort}`;
    await ready(`${prometheusUrl}/-/ready`, prometheus);

    const nowMs = Date.now();
    progress("pushing demo logs and metrics");
    await pushDemoData(collectorUrl, nowMs);
    await until("the demo logs through the Loki API", async () => {
      const r = await fetch(
        `${queryUrl}/loki/api/v1/query?query=${encodeURIComponent('count_over_time({env="demo"}[1h])')}`,
      );
      const body = (await r.json()) as { data: { result: unknown[] } };
      return body.data.result.length === APPS.length * 2;
    });
    // A minute of live pushes, so that Prometheus's graph of Bifrost's own counters has a slope.
    progress("pushing live lines for a minute while prometheus scrapes");
    const liveUntil = Date.now() + 60_000;
    for (let i = 0; Date.now() < liveUntil; i++) {
      const ns = String(BigInt(Date.now()) * 1_000_000n);
      await fetch(`${collectorUrl}/loki/api/v1/push`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          streams: [
            {
              stream: { app: "checkout", env: "demo", level: "info" },
              values: Array.from({ length: 50 + 40 * (i % 7) }, (_, k) => [
                ns.slice(0, -3) + String(k).padStart(3, "0"),
                "live line",
              ]),
            },
          ],
        }),
      });
      await new Promise((r) => setTimeout(r, 1000));
    }

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
      const shoot = async (name: string, url: string) => {
        progress(`${name}: ${url}`);
        const response = await page.goto(url);
        await page.waitForLoadState("networkidle");
        const json = (response?.headers()["content-type"] ?? "").startsWith("application/json");
        // Chromium's JSON viewer keeps its pretty-print box in a closed shadow root: the keyboard reaches it.
        if (json) for (const key of ["Tab", "Space"]) await page.keyboard.press(key);
        await page.screenshot({ path: join(IMAGES, name), fullPage: json });
      };
      const end = (nowMs + 60_000) * 1e6;
      const start = (nowMs - DEMO_MINUTES * 60_000) * 1e6;
      // The requests Grafana's data sources send on "Save & test": Loki's health check and Prometheus's `1+1`.
      await shoot(
        "loki-health-check.png",
        `${queryUrl}/loki/api/v1/query?query=${encodeURIComponent("vector(1)+vector(1)")}`,
      );
      await shoot(
        "prometheus-health-check.png",
        `${queryUrl}/prometheus/api/v1/query?query=${encodeURIComponent("1+1")}`,
      );
      await shoot(
        "loki-logs-query.png",
        `${queryUrl}/loki/api/v1/query_range?limit=3&direction=backward&start=${start}&end=${end}&query=${encodeURIComponent('{env="demo", level="error"} | logfmt | duration_ms > 1000')}`,
      );
      await shoot(
        "loki-metric-query.png",
        `${queryUrl}/loki/api/v1/query_range?step=300&start=${start}&end=${end}&query=${encodeURIComponent('sum by (app) (count_over_time({env="demo", level="error"}[5m]))')}`,
      );
      // Grafana's Logs Drilldown: its service list (volume by the service_name added at ingestion), a service's
      // detected fields and its patterns, with the parameters Drilldown sends.
      const drilldown = (path: string, query: string, extra = "") =>
        `${queryUrl}/loki/api/v1/${path}?start=${start}&end=${end}${extra}&query=${encodeURIComponent(query)}`;
      await shoot(
        "loki-drilldown-services.png",
        drilldown("index/volume", '{service_name=~".+"}', "&limit=5000&targetLabels=service_name&aggregateBy=series"),
      );
      await shoot("loki-drilldown-fields.png", drilldown("detected_fields", '{service_name="checkout"}'));
      await shoot("loki-drilldown-patterns.png", drilldown("patterns", '{service_name="checkout"}', "&step=300s"));
      await shoot(
        "prometheus-rate-query.png",
        `${queryUrl}/prometheus/api/v1/query?query=${encodeURIComponent("sum by (job) (rate(http_requests_total[5m]))")}`,
      );
      const graph = new URLSearchParams({
        "g0.expr": "sum by (instance) (rate(bifrost_collector_entries_accepted_total[15s]))",
        "g0.tab": "0",
        "g0.range_input": "2m",
      });
      await shoot("prometheus-scraping-bifrost.png", `${prometheusUrl}/graph?${graph}`);
    } finally {
      await browser.close();
    }
  } finally {
    await Promise.all(children.filter((c) => c.exitCode === null).map((c) => (c.kill("SIGTERM"), once(c, "exit"))));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => progress(`done: ${IMAGES}`),
  (err: unknown) => {
    process.stderr.write(`screenshots: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
