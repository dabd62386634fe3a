import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import protobuf from "protobufjs";
import { compressSync } from "snappy";
import { stringify } from "yaml";
import {
  createTopics,
  deleteTopics,
  freePort,
  KAFKA_BROKERS,
  REPO_ROOT,
  uniqueName,
} from "../test/helpers/services.js";
import { postTo, procStats, type Running, sleep } from "./collector-processes.js";

// The Prometheus inputs of npm run bench:collector (also runnable alone: node dist/bench/prometheus-inputs.js):
//
// - scrape: SCRAPE_TARGETS targets of SCRAPE_SERIES series each, every 15 s, scraped at the same time by the
//   collector (shipping to Kafka) and by Debian's Prometheus 2.42 (into its TSDB), one scrape configuration for
//   both. After every target has been scraped twice, CPU seconds and memory of each process over SCRAPE_SECONDS:
//   each does its whole job (the collector: scrape, parse, label, buffer, ship; Prometheus: scrape, parse, label,
//   append to its head and WAL).
// - remote write: RW_SAMPLES samples in requests of 500 series with one sample each (Prometheus 2.42's
//   max_samples_per_send), snappy protobuf built before the clock starts, posted by RW_CLIENTS concurrent clients
//   (Prometheus's shards; each request waits for the group commit of its batch) into the collector's disk buffer
//   (its broker a closed port, as the Loki push figures): samples per second and per CPU second of the collector.

const SCRAPE_TARGETS = Number(process.env.BENCH_SCRAPE_TARGETS ?? 1000);
const SCRAPE_SERIES = Number(process.env.BENCH_SCRAPE_SERIES ?? 500);
const SCRAPE_INTERVAL_S = 15;
const SCRAPE_SECONDS = Number(process.env.BENCH_SCRAPE_SECONDS ?? 90);
const RW_SAMPLES = Number(process.env.BENCH_RW_SAMPLES ?? 1_000_000);
const RW_PER_REQUEST = 500;
const RW_CLIENTS = 32;
const MIB = 1 << 20;

const progress = (message: string) => process.stderr.write(`prometheus inputs bench: ${message}\n`);

function start(command: string, args: string[], log: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const fd = openSync(log, "a");
  const child = spawn(command, args, { stdio: ["ignore", "pipe", fd], env });
  closeSync(fd);
  return child;
}

function stopper(child: ChildProcess): Running {
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`no ${what} after ${timeoutMs / 1000} s`);
    await sleep(500);
  }
}

/** A metric of a /metrics page, summed over its label sets. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].reduce((n, m) => n + Number(m[1]), 0);
}

/** How many of a scraper's targets have been scraped and are up. */
async function targetsUp(url: string): Promise<{ scraped: number; up: number }> {
  const answer = (await (await fetch(`${url}/api/v1/targets?state=active`)).json()) as {
    data: { activeTargets: { health: string; lastScrape: string }[] };
  };
  const targets = answer.data.activeTargets;
  return {
    scraped: targets.filter((t) => !t.lastScrape.startsWith("0001")).length,
    up: targets.filter((t) => t.health === "up").length,
  };
}

/** A collector process with `collector` merged into its section; its URL once ready. */
async function startCollector(dir: string, brokers: string[], topic: string, collector: Record<string, unknown>) {
  const port = await freePort();
  const configFile = join(dir, "collector.yaml");
  writeFileSync(
    configFile,
    stringify({
      log: { level: "error" },
      node: { id: "bench-edge" },
      kafka: { brokers, topic },
      collector: {
        listen: `127.0.0.1:${port}`,
        wal: { dir: join(dir, "wal") },
        otlp: { http_enabled: false, grpc_enabled: false },
        ...collector,
      },
    }),
  );
  const child = start(
    process.execPath,
    [join(REPO_ROOT, "dist", "cli.js"), "collector", "--config", configFile],
    join(dir, "collector.log"),
  );
  const url = `http://127.0.0.1:${port}`;
  await until("ready collector", async () => (await fetch(`${url}/ready`)).ok, 60_000);
  return { ...stopper(child), url };
}

/** The scrape of SCRAPE_TARGETS x SCRAPE_SERIES at 15 s by the collector and by Prometheus side by side. */
export async function scrapeBench(root: string) {
  const dir = join(root, "scrape");
  mkdirSync(join(dir, "prometheus"), { recursive: true });
  const server = start(
    process.execPath,
    [join(REPO_ROOT, "dist", "bench", "scrape-target-server.js"), String(SCRAPE_TARGETS), String(SCRAPE_SERIES)],
    join(dir, "targets.log"),
  );
  const targetServer = stopper(server);
  const port = await new Promise<string>((resolve) =>
    server.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim())),
  );
  const scrape = {
    global: { scrape_interval: `${SCRAPE_INTERVAL_S}s`, scrape_timeout: "10s" },
    scrape_configs: [
      {
        job_name: "bench",
        static_configs: Array.from({ length: SCRAPE_TARGETS }, (_, n) => ({
          targets: [`127.0.0.1:${port}`],
          labels: { __metrics_path__: `/t/${n}`, target: `t${n}` },
        })),
      },
    ],
  };
  const topic = uniqueName("bench_scrape");
  const kafka = new Kafka({ clientId: "bifrost-bench-scrape", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  writeFileSync(join(dir, "prometheus", "prometheus.yml"), stringify(scrape));
  const promPort = await freePort();
  const prometheusUrl = `http://127.0.0.1:${promPort}`;
  const prometheus = stopper(
    start(
      "prometheus",
      [
        `--config.file=${join(dir, "prometheus", "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "prometheus", "tsdb")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      join(dir, "prometheus.log"),
    ),
  );
  // Every scraped series keeps its Series.previous (counter increases across batches), as a deployment of this
  // size must be configured.
  const collector = await startCollector(dir, KAFKA_BROKERS, topic, {
    scrape,
    batch: { max_tracked_series: SCRAPE_TARGETS * (SCRAPE_SERIES + 5) },
  });
  try {
    await until("Prometheus ready", async () => (await fetch(`${prometheusUrl}/-/ready`)).ok, 60_000);
    progress(
      `${SCRAPE_TARGETS} targets x ${SCRAPE_SERIES} series at ${SCRAPE_INTERVAL_S} s: waiting for two rounds of scrapes`,
    );
    for (const url of [collector.url, prometheusUrl])
      await until("every target scraped", async () => (await targetsUp(url)).scraped === SCRAPE_TARGETS, 120_000);
    await sleep(SCRAPE_INTERVAL_S * 1000);
    const counters = () =>
      Promise.all([
        metric(collector.url, "bifrost_collector_scrape_samples_buffered_total"),
        metric(prometheusUrl, "prometheus_tsdb_head_samples_appended_total"),
        metric(collector.url, "bifrost_collector_scrapes_total"),
        metric(prometheusUrl, "prometheus_target_interval_length_seconds_count"),
      ]);
    const samplesBefore = await counters();
    const before = [procStats(collector.pid), procStats(prometheus.pid)];
    const t0 = performance.now();
    progress(`measuring for ${SCRAPE_SECONDS} s`);
    await sleep(SCRAPE_SECONDS * 1000);
    const seconds = (performance.now() - t0) / 1000;
    const after = [procStats(collector.pid), procStats(prometheus.pid)];
    const samplesAfter = await counters();
    const up = await Promise.all([targetsUp(collector.url), targetsUp(prometheusUrl)]);
    const figures = (i: number) => {
      const cpu = after[i]!.cpuSeconds - before[i]!.cpuSeconds;
      const samples = samplesAfter[i]! - samplesBefore[i]!;
      return {
        targets_up: up[i]!.up,
        scrapes: samplesAfter[i + 2]! - samplesBefore[i + 2]!,
        samples_per_s: Math.round(samples / seconds),
        cpu_seconds: Number(cpu.toFixed(2)),
        cpu_percent_of_a_core: Number(((100 * cpu) / seconds).toFixed(1)),
        samples_per_cpu_second: Math.round(samples / cpu),
        rss_mib: Number((after[i]!.rssBytes / MIB).toFixed(1)),
        peak_rss_mib: Number((after[i]!.peakRssBytes / MIB).toFixed(1)),
      };
    };
    const ours = figures(0);
    const peer = figures(1);
    return {
      targets: SCRAPE_TARGETS,
      series_per_target: SCRAPE_SERIES,
      interval_s: SCRAPE_INTERVAL_S,
      measured_s: Number(seconds.toFixed(1)),
      expected_scrapes: Math.round((SCRAPE_TARGETS * seconds) / SCRAPE_INTERVAL_S),
      collector: ours,
      peer_prometheus: peer,
      cpu_vs_peer: Number((ours.cpu_seconds / peer.cpu_seconds).toFixed(2)),
      rss_vs_peer: Number((ours.rss_mib / peer.rss_mib).toFixed(2)),
    };
  } finally {
    await Promise.all([collector.stop(), prometheus.stop(), targetServer.stop()]);
    await deleteTopics(kafka, [topic]);
  }
}

const WriteRequest = protobuf
  .loadSync(fileURLToPath(new URL("../proto/prometheus/remote.proto", import.meta.url)))
  .lookupType("prometheus.WriteRequest");

/** RW_SAMPLES samples as remote write 1.0 requests of RW_PER_REQUEST series with one sample each. */
const REMOTE_WRITE_HEADERS = { "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy" };

function writeRequests(): Buffer[] {
  const bodies: Buffer[] = [];
  const t0 = Date.now() - 3_600_000;
  for (let from = 0, round = 0; from < RW_SAMPLES; from += RW_PER_REQUEST, round++) {
    const timeseries = Array.from({ length: Math.min(RW_PER_REQUEST, RW_SAMPLES - from) }, (_, i) => ({
      labels: [
        { name: "__name__", value: i % 5 === 0 ? "node_cpu_seconds_total" : "http_requests_total" },
        { name: "instance", value: `host-${(from + i) % 997}:9100` },
        { name: "job", value: "node" },
        { name: "series", value: `s${i}` },
        { name: "region", value: "eu-west" },
      ],
      samples: [{ value: round * 10 + i, timestamp: t0 + round * 1000 }],
    }));
    bodies.push(compressSync(Buffer.from(WriteRequest.encode(WriteRequest.fromObject({ timeseries })).finish())));
  }
  return bodies;
}

/** RW_SAMPLES remote-written samples into the collector's disk buffer. */
export async function remoteWriteBench(root: string) {
  const dir = join(root, "remote-write");
  mkdirSync(dir, { recursive: true });
  const bodies = writeRequests();
  const collector = await startCollector(dir, [`127.0.0.1:${await freePort()}`], "unused", {});
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: RW_CLIENTS });
    let next = 0;
    const [before, t0] = [procStats(collector.pid), performance.now()];
    await Promise.all(
      Array.from({ length: RW_CLIENTS }, async () => {
        while (next < bodies.length)
          await postTo(agent, `${collector.url}/api/v1/write`, REMOTE_WRITE_HEADERS, bodies[next++]!);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const after = procStats(collector.pid);
    agent.destroy();
    const cpu = after.cpuSeconds - before.cpuSeconds;
    return {
      samples: RW_SAMPLES,
      samples_per_request: RW_PER_REQUEST,
      clients: RW_CLIENTS,
      seconds: Number(seconds.toFixed(2)),
      samples_per_s: Math.round(RW_SAMPLES / seconds),
      samples_per_cpu_second: Math.round(RW_SAMPLES / cpu),
      peak_rss_mib: Number((after.peakRssBytes / MIB).toFixed(1)),
    };
  } finally {
    await collector.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const root = mkdtempSync(join(tmpdir(), "bifrost-bench-prometheus-"));
  const load = [loadavg()[0]!];
  try {
    const remoteWrite = await remoteWriteBench(root);
    const scrape = await scrapeBench(root);
    load.push(loadavg()[0]!);
    process.stdout.write(
      JSON.stringify({
        bench: "collector prometheus inputs",
        scrape,
        remote_write: remoteWrite,
        load_average_1m: load.map((l) => Number(l.toFixed(2))),
        cpus: cpus().length,
        node: process.version,
      }) + "\n",
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
