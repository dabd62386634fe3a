import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { Kafka, logLevel } from "kafkajs";
import protobuf from "protobufjs";
import { compressSync } from "snappy";
import { Batcher } from "../collector/buffer/batcher.js";
import { remoteWriteRoute } from "../collector/receivers/remote-write.js";
import { TenantRateLimiter } from "../common/rate-limit.js";
import { Admission } from "../common/admission.js";
import { admissionFromConfig } from "../common/ingest-contract.js";
import { Wal } from "../collector/buffer/wal.js";
import { Authenticator } from "../common/auth.js";
import { configSchema } from "../config.js";
import { TenantLimits } from "../common/limits.js";
import { type Batch, SampleKind } from "../proto/batch.js";
import { decodeBatch } from "../proto/codec.js";
import { isStaleMarker, STALE_NAN } from "../proto/staleness.js";
import { CollectorProcess, consumeAll } from "./helpers/collector-process.js";
import { prometheusMissing, type RunningPrometheus, servePrometheus } from "./helpers/prometheus.js";
import { createTopics, deleteTopics, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";
import { until } from "./helpers/wait.js";

// The remote write receiver: the protocol as the specification asks (1.0 and 2.0, answers, limits, malformed
// input by the thousand), then Debian's Prometheus 2.42 remote-writing what it scrapes to a collector process
// that is killed (-9) in the middle: every sample Prometheus scraped must reach Kafka.

const LIMITS = { max_labels: 10, max_label_name_bytes: 64, max_label_value_bytes: 256, max_line_bytes: 1024 };
const proto = (name: string) => fileURLToPath(new URL(`../proto/prometheus/${name}`, import.meta.url));
const WriteRequest = protobuf.loadSync(proto("remote.proto")).lookupType("prometheus.WriteRequest");
const RequestV2 = protobuf.loadSync(proto("write-v2.proto")).lookupType("io.prometheus.write.v2.Request");

const V1_TYPE = "application/x-protobuf";
const V2_TYPE = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

function receiver(options: { maxBodyBytes?: number; rate?: number; walBytes?: number; admission?: Admission } = {}) {
  const wal = Wal.open({
    dir: mkdtempSync(join(tmpdir(), "bifrost-remote-write-")),
    maxBytes: options.walBytes ?? 64 << 20,
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
  const config = configSchema().parse({
    collector: { limits: { max_labels: LIMITS.max_labels, rate_entries_per_s: options.rate ?? 0, burst_entries: 60 } },
  });
  const tenantLimits = new TenantLimits(config);
  const rejected = new Map<string, number>();
  let accepted = 0;
  const app = new Hono();
  app.use(new Authenticator(config.auth, "fake").middleware());
  remoteWriteRoute(app, {
    batcher,
    admission: options.admission ?? admissionFromConfig(config.collector.limits),
    limits: LIMITS,
    tenantLimits,
    rate: options.rate ? new TenantRateLimiter(tenantLimits) : undefined,
    maxBodyBytes: options.maxBodyBytes ?? 1 << 20,
    onAccepted: (_tenant, samples) => (accepted += samples),
    onRejected: (reason, samples) => rejected.set(reason, (rejected.get(reason) ?? 0) + samples),
  });
  const write = (body: Uint8Array, headers: Record<string, string> = {}) =>
    app.request("/api/v1/write", {
      method: "POST",
      body,
      headers: { "Content-Type": V1_TYPE, "Content-Encoding": "snappy", ...headers },
    });
  const batches = (): Batch[] => wal.read(1000).map((r) => decodeBatch(r.payload));
  return { write, batches, rejected, accepted: () => accepted };
}

const v1 = (message: object) =>
  compressSync(Buffer.from(WriteRequest.encode(WriteRequest.fromObject(message)).finish()));
const v2 = (message: object) => compressSync(Buffer.from(RequestV2.encode(RequestV2.fromObject(message)).finish()));

const series = (labels: Record<string, string>, samples: [number, number][]) => ({
  labels: Object.entries(labels).map(([name, value]) => ({ name, value })),
  samples: samples.map(([timestamp, value]) => ({ timestamp, value })),
});

describe("remote write receiver", () => {
  it("buffers 1.0 samples before answering 204, with kinds from metadata and staleness markers kept", async () => {
    const { write, batches, accepted } = receiver();
    const metadata = await write(v1({ metadata: [{ type: 1, metricFamilyName: "http_requests_total" }] }));
    assert.equal(metadata.status, 204);
    const response = await write(
      v1({
        timeseries: [
          series({ __name__: "http_requests_total", job: "api", code: "200" }, [
            [1_700_000_000_000, 1],
            [1_700_000_015_000, 5],
          ]),
          series({ __name__: "temperature", job: "api", empty: "" }, [[1_700_000_000_000, 21.5]]),
          series({ __name__: "lat_bucket", le: "0.5" }, [[1_700_000_000_000, 3]]),
          series({ __name__: "gone" }, [[1_700_000_030_000, STALE_NAN]]),
        ],
      }),
    );
    assert.equal(response.status, 204, await response.text());
    assert.equal(accepted(), 5);
    const stored = batches().flatMap((b) => b.series);
    assert.deepEqual(
      stored.map((s) => [
        s.name,
        { ...s.labels },
        s.kind,
        s.points.map((p) => (isStaleMarker(p.value) ? "stale" : p.value)),
      ]),
      [
        ["http_requests_total", { job: "api", code: "200", node: "edge-1" }, SampleKind.Counter, [1, 5]],
        ["temperature", { job: "api", node: "edge-1" }, SampleKind.Gauge, [21.5]],
        ["lat_bucket", { le: "0.5", node: "edge-1" }, SampleKind.HistogramBucket, [3]],
        ["gone", { node: "edge-1" }, SampleKind.Gauge, ["stale"]],
      ],
    );
  });

  it("reads 2.0 requests through their symbols and answers with the written counts", async () => {
    const { write, batches } = receiver();
    const response = await write(
      v2({
        symbols: ["", "__name__", "jobs_total", "job", "batch", "help text"],
        timeseries: [
          {
            labelsRefs: [1, 2, 3, 4],
            samples: [{ value: 7, timestamp: 1_700_000_000_000 }],
            metadata: { type: 1, helpRef: 5 },
          },
        ],
      }),
      { "Content-Type": V2_TYPE },
    );
    assert.equal(response.status, 204, await response.text());
    assert.equal(response.headers.get("X-Prometheus-Remote-Write-Samples-Written"), "1");
    assert.equal(response.headers.get("X-Prometheus-Remote-Write-Histograms-Written"), "0");
    const [stored] = batches().flatMap((b) => b.series);
    assert.deepEqual([stored!.name, stored!.labels["job"], stored!.kind], ["jobs_total", "batch", SampleKind.Counter]);
    const bad = await write(v2({ symbols: ["", "__name__"], timeseries: [{ labelsRefs: [1, 9] }] }), {
      "Content-Type": V2_TYPE,
    });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /symbol reference 9 beyond the 2 symbols/);
  });

  it("keeps the good series of a request and answers 400 naming what it refused", async () => {
    const { write, batches, rejected } = receiver();
    const wide = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`l${i}`, "v"]));
    const response = await write(
      v1({
        timeseries: [
          series({ __name__: "ok" }, [[1, 1]]),
          series({ __name__: "wide", ...wide }, [[1, 1]]),
          series({ job: "nameless" }, [[1, 1]]),
          series({ __name__: "bad name" }, [[1, 1]]),
          series({ __name__: "x", "bad-label": "v" }, [[1, 1]]),
          { labels: [{ name: "__name__", value: "native" }], histograms: [Buffer.from([8, 1])] },
        ],
      }),
    );
    assert.equal(response.status, 400);
    const text = await response.text();
    assert.match(text, /^1 samples written; /);
    for (const reason of ["too_many_labels", "missing_metric_name", "invalid_metric_name", "invalid_label_name"])
      assert.match(text, new RegExp(`1 samples refused \\(${reason}\\)`));
    assert.match(text, /1 histograms refused \(native_histogram\): native histograms are not stored/);
    assert.deepEqual(
      batches().flatMap((b) => b.series.map((s) => s.name)),
      ["ok"],
    );
    assert.equal(rejected.get("too_many_labels"), 1);
    assert.equal(rejected.get("native_histogram"), 1);
  });

  it("answers 415, 413 and 400 for what is not remote write, and never 5xx for malformed bodies", async () => {
    const { write } = receiver({ maxBodyBytes: 4096 });
    assert.equal((await write(v1({}), { "Content-Type": "application/json" })).status, 415);
    assert.equal((await write(v1({}), { "Content-Type": "application/x-protobuf;proto=other.Request" })).status, 415);
    assert.equal((await write(v1({}), { "Content-Encoding": "gzip" })).status, 415);
    assert.equal((await write(Buffer.alloc(8192))).status, 413);
    const huge = Buffer.from([0xff, 0xff, 0xff, 0x7f, 0]);
    const answer = await write(huge);
    assert.equal(answer.status, 400);
    assert.match(await answer.text(), /decompressed body would be/);
    assert.equal((await write(Buffer.from("not snappy at all"))).status, 400);
    let state = 0x12345678;
    const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0), state);
    const valid = Buffer.from(
      WriteRequest.encode(
        WriteRequest.fromObject({ timeseries: [series({ __name__: "m", a: "b" }, [[1, 2]])] }),
      ).finish(),
    );
    const statuses = new Map<number, number>();
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(valid);
      for (let m = 0; m < 1 + (random() % 4); m++) bytes[random() % bytes.length] = random() & 0xff;
      const raw =
        i % 10 === 0 ? Buffer.from(Array.from({ length: random() % 64 }, () => random() & 0xff)) : compressSync(bytes);
      const status = (await write(raw)).status;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    assert.deepEqual(
      [...statuses.keys()].filter((s) => s >= 500),
      [],
      JSON.stringify([...statuses]),
    );
    assert.ok((statuses.get(400) ?? 0) > 100 && (statuses.get(204) ?? 0) > 100, JSON.stringify([...statuses]));
  });

  it("answers 429 with Retry-After over the tenant's rate, and 503 with Retry-After while the buffer is full", async () => {
    const limited = receiver({ rate: 1 });
    const many = v1({
      timeseries: [
        series(
          { __name__: "m" },
          Array.from({ length: 50 }, (_, i): [number, number] => [i, i]),
        ),
      ],
    });
    const answers = [await limited.write(many), await limited.write(many)];
    assert.deepEqual(
      answers.map((a) => a.status),
      [204, 429],
    );
    assert.ok(Number(answers[1]!.headers.get("Retry-After")) > 0);
    const full = receiver({ walBytes: 4096 });
    let status = 204;
    let retryAfter: string | null = null;
    for (let i = 0; i < 50 && status === 204; i++) {
      const response = await full.write(many);
      status = response.status;
      retryAfter = response.headers.get("Retry-After");
    }
    assert.equal(status, 503);
    assert.equal(retryAfter, "10");
    assert.ok(full.rejected.get("buffer_full")! > 0);
  });

  it("answers 503 with Retry-After while the receivers' requests in flight hold the whole admission budget", async () => {
    const admission = new Admission({ maxBytes: 64 << 10, maxWaitMs: 50 });
    const busy = receiver({ admission });
    const body = v1({ timeseries: [series({ __name__: "m" }, [[1, 1]])] });
    // Another receiver's request holds the budget, as a slow disk buffer would keep it held.
    const held = await admission.enter(64 << 10);
    const refused = await busy.write(body);
    assert.equal(refused.status, 503, await refused.text());
    assert.equal(refused.headers.get("Retry-After"), "1");
    assert.ok(busy.rejected.has("overloaded"));
    assert.equal(busy.batches().length, 0, "nothing buffered from a refused request");
    held.release();
    const accepted = await busy.write(body);
    assert.equal(accepted.status, 204, await accepted.text());
    assert.equal(admission.heldBytes, 0, "every request gives its reservation back");
  });
});

describe("remote write from Debian's Prometheus 2.42", { skip: prometheusMissing() }, () => {
  let target: Server;
  let targetAddress = "";
  let requests = 0;
  before(async () => {
    // Twenty counters that grow at every scrape, a gauge and a histogram.
    target = createServer((_req, res) => {
      requests++;
      const lines = ["# TYPE rw_events_total counter"];
      for (let i = 0; i < 20; i++) lines.push(`rw_events_total{shard="${i}"} ${requests * (i + 1)}`);
      lines.push("# TYPE rw_level gauge", `rw_level ${requests % 7}`);
      lines.push(
        "# TYPE rw_seconds histogram",
        `rw_seconds_bucket{le="1"} ${requests}`,
        `rw_seconds_bucket{le="+Inf"} ${2 * requests}`,
      );
      lines.push(`rw_seconds_sum ${requests / 2}`, `rw_seconds_count ${2 * requests}`, "");
      res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
      res.end(lines.join("\n"));
    });
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    targetAddress = `127.0.0.1:${(target.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => (target.listening ? target.close(() => resolve()) : resolve())));

  it("delivers every sample Prometheus scraped to Kafka, across a kill -9 of the collector", async () => {
    const topic = uniqueName("remote_write");
    const kafka = new Kafka({ clientId: "remote-write-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    await createTopics(kafka, [{ topic, numPartitions: 1 }]);
    const dir = mkdtempSync(join(tmpdir(), "bifrost-remote-write-peer-"));
    const collector = await CollectorProcess.configure(dir, {
      nodeId: "rw-edge",
      kafka: { brokers: KAFKA_BROKERS, topic },
      collector: { batch: { max_age_ms: 100 } },
    });
    let prometheus: RunningPrometheus | undefined;
    try {
      await collector.start();
      mkdirSync(join(dir, "prometheus"));
      prometheus = await servePrometheus(join(dir, "prometheus"), {
        global: { scrape_interval: "1s", scrape_timeout: "900ms" },
        scrape_configs: [{ job_name: "rw", static_configs: [{ targets: [targetAddress] }] }],
        remote_write: [
          {
            url: `${collector.url}/api/v1/write`,
            queue_config: {
              batch_send_deadline: "500ms",
              min_backoff: "100ms",
              max_backoff: "1s",
              retry_on_http_429: true,
            },
            metadata_config: { send_interval: "2s" },
          },
        ],
      });
      const prom = prometheus.url;
      /** A metric of Prometheus's own /metrics, summed over its label sets. */
      const promMetric = async (name: string) => {
        let sum = 0;
        for (const line of (await (await fetch(`${prom}/metrics`)).text()).split("\n"))
          if (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
            sum += Number(line.slice(line.lastIndexOf(" ") + 1));
        return sum;
      };
      await until(
        "samples arriving at the collector",
        async () => (await collector.metric("bifrost_collector_samples_accepted_total")) > 200,
        60_000,
      );
      await collector.stop("SIGKILL");
      // Prometheus keeps scraping; what it cannot send it retries from its own WAL.
      await until(
        "Prometheus retrying",
        async () =>
          (await promMetric("prometheus_remote_storage_samples_retried_total")) > 0 ||
          (await promMetric("prometheus_remote_storage_failed_samples_total")) > 0,
        60_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await collector.start();
      // The restarted process counts what it refuses on its /metrics, by reason, while Prometheus writes.
      const post = (body: Uint8Array) =>
        fetch(`${collector.url}/api/v1/write`, {
          method: "POST",
          body,
          headers: { "Content-Type": V1_TYPE, "Content-Encoding": "snappy" },
        });
      const refused = await post(Buffer.from("not snappy"));
      assert.equal(refused.status, 400);
      assert.match(await refused.text(), /snappy/);
      const partly = await post(
        v1({
          timeseries: [series({ __name__: "rw_other" }, [[Date.now(), 1]]), series({ a: "b" }, [[Date.now(), 1]])],
        }),
      );
      assert.equal(partly.status, 400);
      assert.match(await partly.text(), /1 samples refused \(missing_metric_name\)/);
      assert.equal(await collector.metric("bifrost_collector_requests_rejected_total", 'reason="bad_request"'), 1);
      assert.equal(
        await collector.metric("bifrost_collector_samples_rejected_total", 'reason="missing_metric_name"'),
        1,
      );
      await new Promise((resolve) => setTimeout(resolve, 3000));
      // Stop the scraping at a known point: the target goes away, and every sample up to then is compared.
      await new Promise<void>((resolve) => target.close(() => resolve()));
      target.closeAllConnections();
      const endMs = Date.now();
      await until(
        "Prometheus caught up with its WAL",
        async () => {
          const [highest, sent] = await Promise.all([
            promMetric("prometheus_remote_storage_highest_timestamp_in_seconds"),
            promMetric("prometheus_remote_storage_queue_highest_sent_timestamp_seconds"),
          ]);
          return (
            sent >= highest &&
            sent * 1000 >= endMs &&
            (await promMetric("prometheus_remote_storage_samples_pending")) === 0
          );
        },
        120_000,
      );
      assert.equal(
        await promMetric("prometheus_remote_storage_samples_dropped_total"),
        0,
        "Prometheus dropped samples",
      );
      assert.equal(
        await promMetric("prometheus_remote_storage_samples_failed_total"),
        0,
        "Prometheus gave up on samples",
      );
      // What Prometheus scraped, as raw samples from its TSDB...
      const scraped = (await (
        await fetch(`${prom}/api/v1/query?query=${encodeURIComponent('{job="rw"}[10m]')}&time=${endMs / 1000}`)
      ).json()) as { data: { result: { metric: Record<string, string>; values: [number, string][] }[] } };
      const key = (name: string, labels: Record<string, string>) =>
        `${name}{${Object.entries(labels)
          .filter(([k]) => k !== "__name__" && k !== "node")
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, v]) => `${k}=${v}`)
          .join(",")}}`;
      const expected = new Set<string>();
      for (const s of scraped.data.result)
        for (const [t, v] of s.values)
          expected.add(`${key(s.metric["__name__"]!, s.metric)} ${Math.round(t * 1000)} ${v}`);
      // Prometheus stops first: on shutdown it waits up to a minute to flush its queue, which it can while the
      // collector still runs.
      await prometheus.stop();
      await collector.drained();
      await collector.stop();
      // ...and what reached Kafka.
      const arrived = new Set<string>();
      for (const { batch } of await consumeAll(kafka, topic))
        for (const s of batch.series)
          for (const p of s.points)
            if (!isStaleMarker(p.value)) arrived.add(`${key(s.name, s.labels)} ${p.timeUnixMs} ${p.value}`);
      const missing = [...expected].filter((sample) => !arrived.has(sample));
      assert.ok(expected.size > 300, `only ${expected.size} samples scraped`);
      assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${expected.size} scraped samples never arrived`);
      await deleteTopics(kafka, [topic]);
    } finally {
      await prometheus?.stop();
      await collector.stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
