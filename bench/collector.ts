import { spawn } from "node:child_process";
import { appendFileSync, linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { compressSync } from "snappy";
import { remoteWriteBench, scrapeBench } from "./prometheus-inputs.js";
import { sequentialPushBench } from "./collector-sequential.js";
import { rsyslogTcpToKafka, syslogToKafka } from "./collector-syslog.js";
import { makeBatch } from "../test/helpers/batches.js";
import {
  EDGE,
  kafka,
  linesInBatches,
  messagesIn,
  postTo,
  procStats,
  type ProcStats,
  progress,
  type Running,
  sleep,
  startCollector,
  startRsyslog,
  until,
} from "./collector-processes.js";
import { createTopics, deleteTopics, freePort, KAFKA_BROKERS, uniqueName } from "../test/helpers/services.js";

// npm run bench:collector — the collector process (`node dist/cli.js collector`) taking BENCH_LINES log lines of
// 200 bytes: (a) pushed over the Loki API by PUSH_CLIENTS concurrent clients, JSON and snappy protobuf, into the
// disk buffer; (b) tailed from a file into the disk buffer, and (b') as JSON lines, plain and through a processing pipeline; (c) tailed from the same file and shipped to Kafka
// until the broker acknowledged every batch. Beside (c), on the same file in the same run, the peer: Debian's
// rsyslogd (imfile -> omkafka, LZ4 like the collector) until the broker holds every line. (d) The same lines as
// RFC 3164 syslog over one TCP connection into the collector's syslog listener and on to Kafka, beside
// rsyslogd's imtcp -> omkafka on the same input. Then both fed at a
// steady STEADY_RATE lines/s by appending to a file, for the memory they hold while shipping. For (a) and (b)
// the collector's broker is a closed port, so shipping costs nothing; the disk buffer uses the default fsync
// policy `interval`. CPU seconds come from /proc/<pid>/stat and memory from /proc/<pid>/status of the measured
// process only, so the bench's own clients do not count; lines per CPU second is the per-core figure, the
// meaningful one on a shared machine (load average reported). Then the Prometheus inputs (bench/prometheus-inputs.ts):
// a scrape of 1,000 targets x 500 series beside Debian's Prometheus, and remote write into the disk buffer. Then
// sequential pushes, one request at a time, beside the disk's fsyncs per second (bench/collector-sequential.ts).
// BENCH_PHASES=<name>,... runs only those phases (the keys of the JSON line, e.g. sequential_push).
// Prints one JSON line; progress goes to stderr.

const LINES = Number(process.env.BENCH_LINES ?? 1_000_000);
const LINE_BYTES = 200;
const PUSH_CLIENTS = 4;
/** Lines per push request, in STREAMS_PER_PUSH streams: about 500 KB of JSON, half of Promtail's 1 MiB batch. */
const PUSH_LINES = 2_000;
const STREAMS_PER_PUSH = 4;
const STEADY_RATE = 10_000;
const STEADY_SECONDS = Number(process.env.BENCH_STEADY_SECONDS ?? 20);
const MIB = 1 << 20;

const root = mkdtempSync(join(tmpdir(), "bifrost-bench-collector-"));

/** The input: logfmt access-log lines of LINE_BYTES bytes, the same for every run and for the peer. */
function inputLines(): string[] {
  const lines: string[] = [];
  for (let sequence = 1; lines.length < LINES; sequence++) {
    const batch = makeBatch({ sequence, streams: 10, entriesPerStream: 1000, lineBytes: LINE_BYTES, series: 0 });
    for (const stream of batch.streams) for (const entry of stream.entries) lines.push(entry.line);
  }
  return lines.slice(0, LINES);
}

const lines = inputLines();
const inputFile = join(root, "input.log");
writeFileSync(inputFile, lines.join("\n") + "\n");
const inputBytes = lines.reduce((n, line) => n + Buffer.byteLength(line), 0);
const inputSize = inputBytes + lines.length;

function figures(seconds: number, before: ProcStats, after: ProcStats) {
  const cpu = after.cpuSeconds - before.cpuSeconds;
  return {
    seconds: Number(seconds.toFixed(2)),
    lines_per_s: Math.round(LINES / seconds),
    mb_per_s: Number((inputBytes / MIB / seconds).toFixed(1)),
    cpu_seconds_per_million_lines: Number(((cpu / LINES) * 1e6).toFixed(2)),
    lines_per_cpu_second: Math.round(LINES / cpu),
    peak_rss_mib: Number((after.peakRssBytes / MIB).toFixed(1)),
  };
}

type Encoding = "json" | "protobuf";

const PushRequest = protobuf
  .loadSync(fileURLToPath(new URL("../proto/loki/push.proto", import.meta.url)))
  .lookupType("logproto.PushRequest");

/** The input as push requests of PUSH_LINES lines, encoded before the clock starts. */
function pushBodies(encoding: Encoding): Buffer[] {
  const bodies: Buffer[] = [];
  const t0 = BigInt(Date.now()) * 1_000_000n;
  for (let from = 0; from < LINES; from += PUSH_LINES) {
    const chunk = lines.slice(from, from + PUSH_LINES);
    const perStream = Math.ceil(chunk.length / STREAMS_PER_PUSH);
    const streams = Array.from({ length: STREAMS_PER_PUSH }, (_, s) => ({
      labels: { job: "bench", app: `app-${s}`, level: s === 0 ? "warn" : "info" },
      lines: chunk
        .slice(s * perStream, (s + 1) * perStream)
        .map((line, i) => ({ ns: t0 + BigInt(from + s * perStream + i), line })),
    })).filter((s) => s.lines.length > 0);
    if (encoding === "json") {
      bodies.push(
        Buffer.from(
          JSON.stringify({
            streams: streams.map((s) => ({ stream: s.labels, values: s.lines.map((e) => [String(e.ns), e.line]) })),
          }),
        ),
      );
    } else {
      const message = PushRequest.create({
        streams: streams.map((s) => ({
          labels: `{${Object.entries(s.labels)
            .map(([k, v]) => `${k}="${v}"`)
            .join(", ")}}`,
          entries: s.lines.map((e) => ({
            timestamp: { seconds: Number(e.ns / 1_000_000_000n), nanos: Number(e.ns % 1_000_000_000n) },
            line: e.line,
          })),
        })),
      });
      bodies.push(compressSync(Buffer.from(PushRequest.encode(message).finish())));
    }
  }
  return bodies;
}

/** (a) PUSH_CLIENTS clients pushing the input over keep-alive connections; each 204 means in the disk buffer. */
async function pushToWal(encoding: Encoding) {
  const bodies = pushBodies(encoding);
  const collector = await startCollector(
    join(root, `push-${encoding}`),
    `push-${encoding}`,
    [`127.0.0.1:${await freePort()}`],
    "unused",
  );
  const agent = new Agent({ keepAlive: true, maxSockets: PUSH_CLIENTS });
  let next = 0;
  const [before, t0] = [procStats(collector.pid), performance.now()];
  await Promise.all(
    Array.from({ length: PUSH_CLIENTS }, async () => {
      while (next < bodies.length)
        await postTo(
          agent,
          `${collector.url}/loki/api/v1/push`,
          { "Content-Type": encoding === "json" ? "application/json" : "application/x-protobuf" },
          bodies[next++]!,
        );
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const after = procStats(collector.pid);
  const accepted = await collector.metric("bifrost_collector_entries_accepted_total");
  agent.destroy();
  await collector.stop();
  if (accepted !== LINES) throw new Error(`the collector accepted ${accepted} of ${LINES} pushed lines`);
  const result = {
    ...figures(seconds, before, after),
    request_bytes: Math.round(bodies.reduce((n, b) => n + b.length, 0) / bodies.length),
  };
  progress(
    `push ${encoding} -> disk buffer: ${result.lines_per_s} lines/s, ${result.lines_per_cpu_second} lines per CPU second`,
  );
  return result;
}

/**
 * Whether the collector's saved file positions say the whole input is in the disk buffer: read from disk, not
 * from /metrics, whose scrapes would cost the measured process CPU.
 */
function positionsAtEnd(positionsFile: string, size: number): boolean {
  try {
    const { files } = JSON.parse(readFileSync(positionsFile, "utf8")) as { files: { offset: number }[] };
    return files.some((f) => f.offset === size);
  } catch {
    return false;
  }
}

/**
 * (b) and (c): the input file appears (a hard link, at once whole) in the tailed directory; timed until the
 * disk buffer has it all, and then until `shipped` says so.
 */
async function tailCollector(
  name: string,
  brokers: string[],
  topic: string,
  shipped?: (batches: number) => Promise<boolean>,
  input: { file: string; size: number; pipelineStages?: unknown[] } = { file: inputFile, size: inputSize },
) {
  const collector = await startCollector(
    join(root, name),
    name,
    brokers,
    topic,
    false,
    undefined,
    {},
    input.pipelineStages,
  );
  const [before, t0] = [procStats(collector.pid), performance.now()];
  linkSync(input.file, join(collector.inDir, "input.log"));
  await until(`all lines in the disk buffer of collector ${name}`, async () =>
    positionsAtEnd(collector.positionsFile, input.size),
  );
  if (shipped) {
    const batches = await collector.metric("bifrost_collector_batches_written_total");
    await until(`all batches of collector ${name} in Kafka`, () => shipped(batches));
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = procStats(collector.pid);
  const read = await collector.metric("bifrost_collector_file_lines_read_total");
  await collector.stop();
  if (read !== LINES) throw new Error(`collector ${name} read ${read} of ${LINES} lines`);
  return figures(seconds, before, after);
}

async function tailToWal() {
  const result = await tailCollector("tail-wal", [`127.0.0.1:${await freePort()}`], "unused");
  progress(
    `file tail -> disk buffer: ${result.lines_per_s} lines/s, ${result.lines_per_cpu_second} lines per CPU second`,
  );
  return result;
}

/**
 * (b') The processing pipeline's cost: the input as JSON lines of about LINE_BYTES bytes (each with its own time,
 * one in ten at level debug), tailed into the disk buffer plain and through json + timestamp + labels + drop
 * (the debug lines dropped), on the same file in the same run. Lines per CPU second count every line read.
 */
async function pipelineToWal() {
  const start = Date.now() - LINES;
  const jsonLines = lines.map((line, i) => {
    const doc = { ts: new Date(start + i).toISOString(), level: i % 10 === 0 ? "debug" : "info", msg: "", app: "web" };
    doc.msg = line.slice(0, Math.max(0, LINE_BYTES - JSON.stringify(doc).length));
    return JSON.stringify(doc);
  });
  const file = join(root, "input.json.log");
  writeFileSync(file, jsonLines.join("\n") + "\n");
  const size = jsonLines.reduce((n, line) => n + Buffer.byteLength(line) + 1, 0);
  const stages = [
    { json: { expressions: { ts: "ts", level: "level", app: "app" } } },
    { timestamp: { source: "ts", format: "RFC3339Nano" } },
    { labels: { level: null, app: null } },
    { redact: {} },
    { drop: { source: "level", value: "debug" } },
  ];
  const closed = `127.0.0.1:${await freePort()}`;
  const plain = await tailCollector("json-plain", [closed], "unused", undefined, { file, size });
  const processed = await tailCollector("json-pipeline", [closed], "unused", undefined, {
    file,
    size,
    pipelineStages: stages,
  });
  const cpuRatio = Number((plain.lines_per_cpu_second / processed.lines_per_cpu_second).toFixed(2));
  progress(
    `file tail -> pipeline -> disk buffer: ${processed.lines_per_cpu_second} lines per CPU second, plain ${plain.lines_per_cpu_second} (CPU per line x${cpuRatio})`,
  );
  return {
    stages: stages.map((s) => Object.keys(s)[0]),
    plain,
    pipeline: processed,
    cpu_per_line_vs_plain: cpuRatio,
    target_cpu_per_line_vs_plain: 2,
  };
}

async function tailToKafka() {
  const topic = uniqueName("bench_collector");
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const result = await tailCollector(
    "tail-kafka",
    KAFKA_BROKERS,
    topic,
    async (batches) => (await messagesIn(topic)) >= batches,
  );
  const inKafka = await linesInBatches(topic);
  await deleteTopics(kafka, [topic]);
  if (inKafka !== LINES) throw new Error(`Kafka holds ${inKafka} of ${LINES} lines from the collector`);
  progress(`file tail -> Kafka: ${result.lines_per_s} lines/s, ${result.lines_per_cpu_second} lines per CPU second`);
  return result;
}

async function rsyslogToKafka() {
  const topic = uniqueName("bench_rsyslog");
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const rsyslog = await startRsyslog(join(root, "rsyslog-kafka"), "rsyslog-kafka", topic);
  const [before, t0] = [procStats(rsyslog.pid), performance.now()];
  linkSync(inputFile, join(rsyslog.inDir, "input.log"));
  await until("all lines through rsyslogd", async () => (await messagesIn(topic)) >= LINES);
  const seconds = (performance.now() - t0) / 1000;
  const after = procStats(rsyslog.pid);
  await rsyslog.stop();
  const inKafka = await messagesIn(topic);
  await deleteTopics(kafka, [topic]);
  if (inKafka !== LINES) throw new Error(`Kafka holds ${inKafka} of ${LINES} lines from rsyslogd`);
  const result = figures(seconds, before, after);
  progress(
    `rsyslogd file -> Kafka: ${result.lines_per_s} lines/s, ${result.lines_per_cpu_second} lines per CPU second`,
  );
  return result;
}

/** Appends the input at STEADY_RATE lines/s for STEADY_SECONDS, sampling the process's resident memory. */
async function steady(name: string, target: Running & { inDir: string }) {
  const file = join(target.inDir, "steady.log");
  const tick = 100;
  const perTick = (STEADY_RATE * tick) / 1000;
  const samples: number[] = [];
  const before = procStats(target.pid);
  const t0 = performance.now();
  for (let i = 0; performance.now() - t0 < STEADY_SECONDS * 1000; i++) {
    const from = (i * perTick) % LINES;
    appendFileSync(file, lines.slice(from, from + perTick).join("\n") + "\n");
    // The first seconds are start-up and warm-up; from then on the process should hold steady.
    if (performance.now() - t0 > 5000) samples.push(procStats(target.pid).rssBytes);
    await sleep(Math.max(0, t0 + (i + 1) * tick - performance.now()));
  }
  const after = procStats(target.pid);
  await target.stop();
  const seconds = (performance.now() - t0) / 1000;
  const result = {
    lines_per_s: STEADY_RATE,
    rss_mib_max: Number((Math.max(...samples) / MIB).toFixed(1)),
    rss_mib_mean: Number((samples.reduce((a, b) => a + b, 0) / samples.length / MIB).toFixed(1)),
    peak_rss_mib: Number((after.peakRssBytes / MIB).toFixed(1)),
    cpu_share: Number(((after.cpuSeconds - before.cpuSeconds) / seconds).toFixed(3)),
  };
  progress(`${name} at ${STEADY_RATE} lines/s: RSS ${result.rss_mib_max} MiB at most, ${result.cpu_share} of a core`);
  return result;
}

async function steadyCollector(edge: boolean) {
  const topic = uniqueName("bench_collector_steady");
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const result = await steady(
    edge ? "collector (edge profile)" : "collector",
    await startCollector(
      join(root, edge ? "steady-edge" : "steady"),
      edge ? "steady-edge" : "steady",
      KAFKA_BROKERS,
      topic,
      edge,
    ),
  );
  await deleteTopics(kafka, [topic]);
  return result;
}

async function steadyRsyslog() {
  const topic = uniqueName("bench_rsyslog_steady");
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const result = await steady("rsyslogd", await startRsyslog(join(root, "rsyslog-steady"), "rsyslog-steady", topic));
  await deleteTopics(kafka, [topic]);
  return result;
}

const load = [loadavg()[0]!];
progress(
  `${LINES.toLocaleString()} lines of ${LINE_BYTES} bytes (${(inputBytes / MIB).toFixed(0)} MiB) in ${inputFile}`,
);
const phases = (process.env.BENCH_PHASES ?? "").split(",").filter((p) => p !== "");
/** The phase's result, or undefined when BENCH_PHASES leaves it out. */
const phase = <T>(name: string, run: () => Promise<T>): Promise<T | undefined> =>
  phases.length === 0 || phases.includes(name) ? run() : Promise.resolve(undefined);
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? undefined : Number((a / b).toFixed(2));
const pushJson = await phase("push_json_to_wal", () => pushToWal("json"));
const pushProtobuf = await phase("push_protobuf_to_wal", () => pushToWal("protobuf"));
const tailWal = await phase("file_tail_to_wal", tailToWal);
const pipelineWal = await phase("file_tail_pipeline_to_wal", pipelineToWal);
const tailKafka = await phase("file_tail_to_kafka", tailToKafka);
const peerKafka = await phase("file_tail_to_kafka", rsyslogToKafka);
const syslogOurs = await phase("syslog_tcp_to_kafka", async () => {
  const result = await syslogToKafka(root, lines, figures);
  progress(`syslog TCP -> Kafka: ${result.lines_per_s} lines/s, ${result.lines_per_cpu_second} lines per CPU second`);
  return result;
});
const syslogPeer = await phase("syslog_tcp_to_kafka", async () => {
  const result = await rsyslogTcpToKafka(root, lines, figures);
  progress(
    `rsyslogd imtcp -> Kafka: ${result.lines_per_s} lines/s, ${result.lines_per_cpu_second} lines per CPU second`,
  );
  return result;
});
const steadyOurs = await phase("steady_collector", () => steadyCollector(false));
const steadyEdge = await phase("steady_collector_edge_profile", () => steadyCollector(true));
const steadyPeer = await phase("steady_collector", steadyRsyslog);
const remoteWrite = await phase("prometheus_remote_write", () => remoteWriteBench(root));
const scrape = await phase("prometheus_scrape", () => scrapeBench(root));
const sequential = await phase("sequential_push", () => sequentialPushBench(root, lines));
load.push(loadavg()[0]!);
rmSync(root, { recursive: true, force: true });
const rsyslogVersion = /rsyslogd\s+([\d.]+)/.exec(
  await new Promise<string>((resolve) => {
    const child = spawn("rsyslogd", ["-v"], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.once("exit", () => resolve(out));
  }),
)?.[1];
process.stdout.write(
  JSON.stringify({
    bench: "collector",
    lines: LINES,
    line_bytes: LINE_BYTES,
    push_clients: PUSH_CLIENTS,
    push_lines_per_request: PUSH_LINES,
    push_json_to_wal: pushJson,
    push_protobuf_to_wal: pushProtobuf,
    file_tail_to_wal: tailWal,
    file_tail_pipeline_to_wal: pipelineWal,
    file_tail_to_kafka: tailKafka,
    peer_rsyslog_file_to_kafka: peerKafka,
    kafka_vs_peer_lines_per_cpu_second: ratio(tailKafka?.lines_per_cpu_second, peerKafka?.lines_per_cpu_second),
    syslog_tcp_to_kafka: syslogOurs,
    peer_rsyslog_imtcp_to_kafka: syslogPeer,
    syslog_vs_peer_lines_per_cpu_second: ratio(syslogOurs?.lines_per_cpu_second, syslogPeer?.lines_per_cpu_second),
    steady_collector: steadyOurs,
    steady_collector_edge_profile: steadyEdge && {
      node_args: EDGE.nodeArgs.join(" "),
      script: EDGE.script,
      env: EDGE.env,
      otlp: "off",
      ...steadyEdge,
    },
    steady_peer_rsyslog: steadyPeer,
    prometheus_scrape: scrape,
    prometheus_remote_write: remoteWrite,
    sequential_push: sequential,
    target_wal_lines_per_cpu_second: 150_000,
    target_steady_rss_mib: 80,
    load_average_1m: load.map((l) => Number(l.toFixed(2))),
    cpus: cpus().length,
    peer: `rsyslogd ${rsyslogVersion} (imfile, omkafka)`,
    node: process.version,
  }) + "\n",
);
