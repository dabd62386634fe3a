import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { Registry } from "prom-client";
import { Batcher } from "../collector/buffer/batcher.js";
import { compileRelabelConfigs } from "../collector/processing/relabel.js";
import { jobTiming, parseByteSize, scrapeSchema } from "../collector/receivers/scrape-config.js";
import { ScrapeClient } from "../collector/receivers/scrape-http.js";
import { ScrapeLoop, type ScrapeOutcome } from "../collector/receivers/scrape-loop.js";
import { targetsOf } from "../collector/receivers/scrape-targets.js";
import { ScrapeManager } from "../collector/receivers/scrape.js";
import { Wal } from "../collector/buffer/wal.js";
import { Authenticator } from "../common/auth.js";
import { configSchema } from "../config.js";
import { createLogger } from "../common/log.js";
import { SampleKind, type Series } from "../proto/batch.js";
import type { Labels } from "../proto/labels.js";
import { decodeBatch } from "../proto/codec.js";
import { isStaleMarker } from "../proto/staleness.js";
import { testPki } from "./helpers/certs.js";
import { waitFor } from "./helpers/wait.js";

// The scrape input against real HTTP targets served by the test: one target's loop scrape by scrape (labels,
// report series, staleness, limits, failures), the HTTP side (gzip, authentication, TLS, size and time limits),
// and the manager with file discovery, the disk buffer and GET /api/v1/targets.

const LIMITS = { max_labels: 30, max_label_name_bytes: 1024, max_label_value_bytes: 2048, max_line_bytes: 1 << 20 };

/** An exporter whose answer the test sets; it records each request. */
class TestTarget {
  body = "";
  status = 200;
  contentType = "text/plain; version=0.0.4";
  gzip = false;
  delayMs = 0;
  requests: IncomingMessage[] = [];
  server: Server;

  constructor(tls?: { cert: string; key: string }) {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.requests.push(req);
      setTimeout(() => {
        const body = this.gzip ? gzipSync(this.body) : Buffer.from(this.body);
        res.writeHead(this.status, {
          "Content-Type": this.contentType,
          ...(this.gzip ? { "Content-Encoding": "gzip" } : {}),
        });
        res.end(body);
      }, this.delayMs);
    };
    this.server = tls
      ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler)
      : createHttpServer(handler);
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** One target's loop for a job given in Prometheus's YAML shape, and the outcomes of its scrapes. */
function loopFor(job: Record<string, unknown>, address: string, labels: Record<string, string> = {}) {
  const section = scrapeSchema().parse({ scrape_configs: [{ job_name: "test", ...job }] });
  const config = section.scrape_configs[0]!;
  const { intervalMs, timeoutMs } = jobTiming(section.global, config);
  const set = targetsOf(
    {
      name: config.job_name,
      intervalMs,
      timeoutMs,
      metricsPath: config.metrics_path,
      scheme: config.scheme,
      params: config.params,
      relabel: compileRelabelConfigs(config.relabel_configs),
    },
    [{ targets: [address], labels: labels as Labels }],
  );
  assert.equal(set.active.length, 1, JSON.stringify(set));
  const outcomes: ScrapeOutcome[] = [];
  const client = new ScrapeClient(config, parseByteSize(config.body_size_limit)!);
  const loop = new ScrapeLoop(
    set.active[0]!,
    {
      honorLabels: config.honor_labels,
      honorTimestamps: config.honor_timestamps,
      metricRelabel: compileRelabelConfigs(config.metric_relabel_configs),
      sampleLimit: config.sample_limit,
      labelLimit: config.label_limit,
      labelNameLengthLimit: config.label_name_length_limit,
      labelValueLengthLimit: config.label_value_length_limit,
      limits: LIMITS,
    },
    client,
    (outcome) => outcomes.push(outcome),
  );
  const scrape = async (timeMs: number) => {
    await loop.scrapeAndReport(timeMs);
    return outcomes[outcomes.length - 1]!;
  };
  return { loop, scrape, client, target: set.active[0]! };
}

/** A scrape's series as `name{labels} value@time`, markers as `stale`, sorted. */
function show(series: Series[]): string[] {
  return series
    .flatMap((s) =>
      s.points.map((p) => {
        const labels = Object.keys(s.labels)
          .sort()
          .map((k) => `${k}=${JSON.stringify(s.labels[k])}`)
          .join(",");
        return `${s.name}{${labels}} ${isStaleMarker(p.value) ? "stale" : p.value}@${p.timeUnixMs}`;
      }),
    )
    .sort();
}

const report = (series: Series[], name: string) => series.find((s) => s.name === name)?.points[0]?.value;

describe("scrape loop", () => {
  const target = new TestTarget();
  let address = "";
  before(async () => (address = await target.listen()));
  after(() => target.close());

  it("labels samples with the target, renames clashes exported_, applies metric_relabel_configs and reports", async () => {
    target.body = [
      "# TYPE reqs_total counter",
      'reqs_total{code="200",job="exposed"} 10',
      'reqs_total{code="500",job="exposed"} 1',
      "# TYPE temp gauge",
      'temp{instance="x"} 21.5',
      "go_gc 1",
      "",
    ].join("\n");
    const { scrape } = loopFor(
      {
        metric_relabel_configs: [
          { source_labels: ["__name__"], regex: "go_.*", action: "drop" },
          { source_labels: ["code"], regex: "5..", target_label: "error", replacement: "yes" },
        ],
      },
      address,
      { site: "a" },
    );
    const first = await scrape(1_000_000);
    const instance = address;
    assert.deepEqual(show(first.series), [
      `reqs_total{code="200",exported_job="exposed",instance="${instance}",job="test",site="a"} 10@1000000`,
      `reqs_total{code="500",error="yes",exported_job="exposed",instance="${instance}",job="test",site="a"} 1@1000000`,
      `scrape_duration_seconds{instance="${instance}",job="test",site="a"} ${report(first.series, "scrape_duration_seconds")}@1000000`,
      `scrape_samples_post_metric_relabeling{instance="${instance}",job="test",site="a"} 3@1000000`,
      `scrape_samples_scraped{instance="${instance}",job="test",site="a"} 4@1000000`,
      `scrape_series_added{instance="${instance}",job="test",site="a"} 3@1000000`,
      `temp{exported_instance="x",instance="${instance}",job="test",site="a"} 21.5@1000000`,
      `up{instance="${instance}",job="test",site="a"} 1@1000000`,
    ]);
    assert.equal(first.series.find((s) => s.name === "reqs_total")!.kind, SampleKind.Counter);
    assert.equal(first.series.find((s) => s.name === "temp")!.kind, SampleKind.Gauge);
    const second = await scrape(1_015_000);
    assert.equal(report(second.series, "scrape_series_added"), 0);
    assert.equal(report(second.series, "up"), 1);
  });

  it("marks a vanished series stale at the next scrape, and every series when a scrape fails", async () => {
    target.body = 'a{x="1"} 1\na{x="2"} 2\nb 3\n';
    const { scrape, loop } = loopFor({}, address);
    await scrape(2_000_000);
    target.body = 'a{x="1"} 1\nb 3\n';
    const vanished = show((await scrape(2_015_000)).series).filter((s) => s.startsWith("a") || s.startsWith("b"));
    assert.deepEqual(vanished, [
      `a{instance="${address}",job="test",x="1"} 1@2015000`,
      `a{instance="${address}",job="test",x="2"} stale@2015000`,
      `b{instance="${address}",job="test"} 3@2015000`,
    ]);
    target.status = 500;
    const failed = await scrape(2_030_000);
    target.status = 200;
    assert.equal(report(failed.series, "up"), 0);
    assert.equal(loop.lastError, "server returned HTTP status 500 Internal Server Error");
    assert.deepEqual(
      show(failed.series).filter((s) => !s.startsWith("scrape_") && !s.startsWith("up")),
      [`a{instance="${address}",job="test",x="1"} stale@2030000`, `b{instance="${address}",job="test"} stale@2030000`],
    );
    // Nothing was exposed by the failed scrape, so nothing more is marked when the target is back.
    const back = show((await scrape(2_045_000)).series);
    assert.ok(!back.some((s) => s.includes("stale")), back.join("\n"));
    // A failing OpenMetrics exposition marks what its scrape did not read before failing, as Prometheus does.
    target.contentType = "application/openmetrics-text; version=1.0.0";
    target.body = 'a{x="1"} 1\n# a comment\nb 3\n# EOF\n';
    try {
      const broken = await scrape(2_060_000);
      assert.equal(loop.lastError, 'line 2: a comment other than HELP, TYPE, UNIT or EOF: "# a comment"');
      assert.deepEqual(
        show(broken.series).filter((s) => s.includes("stale")),
        [`b{instance="${address}",job="test"} stale@2060000`],
      );
    } finally {
      target.contentType = "text/plain; version=0.0.4";
    }
  });

  it("fails the whole scrape on a parse error, sample_limit or label_limit, keeping none of it", async () => {
    target.body = "ok 1\nbroken{ 2\n";
    const parse = loopFor({}, address);
    const broken = await parse.scrape(3_000_000);
    assert.equal(report(broken.series, "up"), 0);
    assert.equal(report(broken.series, "scrape_samples_scraped"), 1);
    assert.ok(!broken.series.some((s) => s.name === "ok"));
    assert.match(parse.loop.lastError, /line 2: expected label name/);

    target.body = "a 1\nb 2\nc 3\n";
    const limited = loopFor({ sample_limit: 2 }, address);
    const over = await limited.scrape(3_000_000);
    assert.equal(limited.loop.lastError, "sample limit exceeded");
    assert.deepEqual(
      [
        report(over.series, "up"),
        report(over.series, "scrape_samples_scraped"),
        report(over.series, "scrape_samples_post_metric_relabeling"),
      ],
      [0, 3, 3],
    );
    assert.equal(over.series.filter((s) => !s.name.startsWith("scrape_") && s.name !== "up").length, 0);

    target.body = 'a{b="1",c="2"} 1\n';
    const labeled = loopFor({ label_limit: 3 }, address);
    await labeled.scrape(3_000_000);
    assert.match(labeled.loop.lastError, /^label_limit exceeded \(metric: a, number of labels: 5, limit: 3\)$/);
  });

  it("honors exposed labels and timestamps when told to", async () => {
    target.body = 'm{job="mine"} 1 1234\n';
    const honoring = loopFor({ honor_labels: true }, address);
    assert.ok(show((await honoring.scrape(4_000_000)).series).includes(`m{instance="${address}",job="mine"} 1@1234`));
    const overriding = loopFor({ honor_timestamps: false }, address);
    assert.ok(
      show((await overriding.scrape(4_000_000)).series).includes(
        `m{exported_job="mine",instance="${address}",job="test"} 1@4000000`,
      ),
    );
  });

  it("leaves out series over the collector's limits, counted, and keeps the rest", async () => {
    const labels = Array.from({ length: 40 }, (_, i) => `l${i}="v"`).join(",");
    target.body = `wide{${labels}} 1\nnarrow 2\n`;
    const { scrape } = loopFor({}, address);
    const outcome = await scrape(5_000_000);
    assert.equal(report(outcome.series, "up"), 1);
    assert.deepEqual([...outcome.rejected], [["too_many_labels", 1]]);
    assert.ok(outcome.series.some((s) => s.name === "narrow"));
    assert.ok(!outcome.series.some((s) => s.name === "wide"));
  });

  it("reads OpenMetrics when the target answers with it, and gzip", async () => {
    target.contentType = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    target.gzip = true;
    target.body = "# TYPE c counter\nc_total 5 1.5\nc_created 1\n# EOF\n";
    try {
      const { scrape } = loopFor({}, address);
      const outcome = await scrape(6_000_000);
      assert.deepEqual(
        show(outcome.series).filter((s) => s.startsWith("c_")),
        [`c_created{instance="${address}",job="test"} 1@6000000`, `c_total{instance="${address}",job="test"} 5@1500`],
      );
      const request = target.requests[target.requests.length - 1]!;
      assert.match(request.headers.accept!, /^application\/openmetrics-text;version=1.0.0/);
      assert.equal(request.headers["accept-encoding"], "gzip");
    } finally {
      target.contentType = "text/plain; version=0.0.4";
      target.gzip = false;
    }
  });

  it("sends basic auth, bearer tokens from files and params; keeps to body_size_limit and scrape_timeout", async () => {
    target.body = "m 1\n";
    const dir = mkdtempSync(join(tmpdir(), "bifrost-scrape-"));
    writeFileSync(join(dir, "token"), "s3cret\n");
    const basic = loopFor({ basic_auth: { username: "u", password: "p" }, params: { module: ["a", "b"] } }, address);
    await basic.scrape(7_000_000);
    let request = target.requests[target.requests.length - 1]!;
    assert.equal(request.headers.authorization, `Basic ${Buffer.from("u:p").toString("base64")}`);
    assert.equal(request.url, "/metrics?module=a&module=b");
    const bearer = loopFor({ authorization: { credentials_file: join(dir, "token") } }, address);
    await bearer.scrape(7_000_000);
    request = target.requests[target.requests.length - 1]!;
    assert.equal(request.headers.authorization, "Bearer s3cret");
    assert.equal(request.headers["x-prometheus-scrape-timeout-seconds"], "10");

    target.body = "m 1\n".repeat(100);
    const small = loopFor({ body_size_limit: 100 }, address);
    await small.scrape(7_000_000);
    assert.equal(small.loop.lastError, "body size limit exceeded");

    target.delayMs = 500;
    try {
      const slow = loopFor({ scrape_interval: "1s", scrape_timeout: "100ms" }, address);
      await slow.scrape(7_000_000);
      assert.match(slow.loop.lastError, /context deadline exceeded/);
    } finally {
      target.delayMs = 0;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("scrapes https targets with the job's CA, and refuses a certificate it cannot verify", async () => {
    const pki = testPki();
    const leaf = pki.issue("target", { commonName: "target", ips: ["127.0.0.1"] });
    const secure = new TestTarget(leaf);
    const secureAddress = await secure.listen();
    secure.body = "m 1\n";
    try {
      const trusted = loopFor({ scheme: "https", tls_config: { ca_file: pki.caCert } }, secureAddress);
      assert.equal(report((await trusted.scrape(8_000_000)).series, "up"), 1, trusted.loop.lastError);
      const untrusted = loopFor({ scheme: "https" }, secureAddress);
      assert.equal(report((await untrusted.scrape(8_000_000)).series, "up"), 0);
      assert.match(untrusted.loop.lastError, /certificate/);
    } finally {
      await secure.close();
      rmSync(pki.dir, { recursive: true, force: true });
    }
  });
});

describe("scrape manager", () => {
  const targets = [new TestTarget(), new TestTarget()];
  const addresses: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), "bifrost-scrape-manager-"));
  before(async () => {
    for (const t of targets) addresses.push(await t.listen());
  });
  after(async () => {
    await Promise.all(targets.map((t) => t.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("follows file_sd changes, buffers every scrape, marks a removed target stale and lists targets", async () => {
    targets[0]!.body = "first 1\n";
    targets[1]!.body = "second 2\n";
    const sdFile = join(dir, "targets.json");
    const writeTargets = (list: string[]) => {
      writeFileSync(`${sdFile}.tmp`, JSON.stringify([{ targets: list, labels: { env: "test" } }]));
      renameSync(`${sdFile}.tmp`, sdFile);
    };
    writeTargets([addresses[0]!]);
    const wal = Wal.open({
      dir: join(dir, "wal"),
      maxBytes: 64 << 20,
      segmentBytes: 1 << 20,
      fsync: "never",
      whenFull: "block",
    });
    const batcher = new Batcher({
      node: { id: "edge-1", site: "", region: "" },
      wal,
      maxEntries: 1,
      maxBytes: 1 << 20,
      maxAgeMs: 10,
      maxBatchBytes: 3 << 20,
    });
    const registry = new Registry();
    const config = scrapeSchema().parse({
      global: { scrape_interval: "200ms", scrape_timeout: "100ms" },
      scrape_configs: [
        {
          job_name: "files",
          file_sd_configs: [{ files: [join(dir, "*.json")], refresh_interval: "1h" }],
          relabel_configs: [{ source_labels: ["__address__"], regex: "nothing-here", action: "drop" }],
        },
        {
          job_name: "dropped",
          static_configs: [{ targets: ["10.0.0.1:9100"] }],
          relabel_configs: [{ source_labels: ["__address__"], regex: "10\\..*", action: "drop" }],
        },
        { job_name: "other-tenant", tenant: "acme", static_configs: [{ targets: [addresses[1]!] }] },
      ],
    });
    const manager = new ScrapeManager({
      config,
      defaultTenant: "fake",
      limits: LIMITS,
      batcher,
      registry,
      log: createLogger("silent"),
    });
    const app = new Hono();
    app.use(new Authenticator(configSchema().parse({}).auth, "fake").middleware());
    manager.route(app);
    const seen = () => {
      const out: string[] = [];
      for (const record of wal.read(100_000)) {
        const batch = decodeBatch(record.payload);
        out.push(...show(batch.series).map((s) => `${batch.tenant} ${s}`));
      }
      return out;
    };
    manager.start();
    try {
      await waitFor("the first target scraped", () => seen().some((s) => s.startsWith("fake first{")), 10_000);
      await waitFor(
        "the other tenant's target scraped",
        () => seen().some((s) => s.startsWith("acme second{")),
        10_000,
      );
      writeTargets([addresses[1]!]);
      await waitFor("the new file target", () => seen().some((s) => s.startsWith("fake second{")), 10_000);
      await waitFor(
        "staleness markers of the removed target",
        () =>
          seen().some((s) => s.startsWith("fake first{") && s.includes(" stale@")) &&
          seen().some((s) => s.startsWith(`fake up{env="test",instance="${addresses[0]}"`) && s.includes(" stale@")),
        10_000,
      );
      const answer = (await (await app.request("/api/v1/targets")).json()) as {
        data: { activeTargets: Record<string, unknown>[]; droppedTargets: { discoveredLabels: Labels }[] };
      };
      assert.deepEqual(
        answer.data.activeTargets.map((t) => ({
          ...t,
          lastScrape: typeof t.lastScrape,
          lastScrapeDuration: typeof t.lastScrapeDuration,
        })),
        [
          {
            discoveredLabels: {
              __address__: addresses[1],
              __meta_filepath: sdFile,
              __metrics_path__: "/metrics",
              __scheme__: "http",
              __scrape_interval__: "200ms",
              __scrape_timeout__: "100ms",
              env: "test",
              job: "files",
            },
            labels: { env: "test", instance: addresses[1], job: "files" },
            scrapePool: "files",
            scrapeUrl: `http://${addresses[1]}/metrics`,
            globalUrl: `http://${addresses[1]}/metrics`,
            lastError: "",
            lastScrape: "string",
            lastScrapeDuration: "number",
            health: "up",
            scrapeInterval: "200ms",
            scrapeTimeout: "100ms",
          },
        ],
      );
      assert.deepEqual(
        answer.data.droppedTargets.map((t) => t.discoveredLabels["__address__"]),
        ["10.0.0.1:9100"],
      );
      const dropped = (await (await app.request("/api/v1/targets?state=dropped")).json()) as typeof answer;
      assert.equal(dropped.data.activeTargets.length, 0);
      const acme = (await (
        await app.request("/api/v1/targets", { headers: { "X-Scope-OrgID": "acme" } })
      ).json()) as typeof answer;
      assert.deepEqual(
        acme.data.activeTargets.map((t) => t.scrapePool),
        ["other-tenant"],
      );
      const metrics = await registry.metrics();
      assert.match(metrics, /bifrost_collector_scrapes_total\{job="files",result="up"\} [1-9]/);
      assert.match(metrics, /bifrost_collector_scrape_targets\{job="files"\} 1/);
    } finally {
      await manager.stop();
      batcher.flush();
      wal.close();
    }
  });
});
