import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { type Agent, type OutgoingHttpHeaders, request } from "node:http";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { edgeProfile } from "../deploy/edge/profile.js";
import { decodeBatch } from "../proto/codec.js";
import { freePort, KAFKA_BROKERS, REPO_ROOT, uniqueName } from "../test/helpers/services.js";

// The processes bench:collector (bench/collector.ts) measures, the collector and its peer rsyslogd, with their
// CPU and memory from /proc, and what they shipped to Kafka.

const CLK_TCK = 100;

export const progress = (message: string) => process.stderr.write(`collector bench: ${message}\n`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const kafka = new Kafka({ clientId: "bifrost-bench", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });

/** POSTs `body` to the collector at `url` over `agent`; resolves on its 204 (the data is in the disk buffer). */
export function postTo(agent: Agent, url: string, headers: OutgoingHttpHeaders, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", agent, headers: { ...headers, "Content-Length": body.length } },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () =>
          res.statusCode === 204 ? resolve() : reject(new Error(`${url} answered ${res.statusCode}: ${text}`)),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

export interface ProcStats {
  cpuSeconds: number;
  rssBytes: number;
  peakRssBytes: number;
}

export function procStats(pid: number): ProcStats {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)![1]) * 1024;
  return {
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLK_TCK,
    rssBytes: kib("VmRSS"),
    peakRssBytes: kib("VmHWM"),
  };
}

export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`no ${what} after ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

export interface Running {
  pid: number;
  stop(): Promise<void>;
}

function watch(child: ChildProcess, name: string): Running {
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("exit", (code, signal) => {
    if (code !== 0 && signal !== "SIGTERM") progress(`${name} exited with ${code ?? signal}: ${stderr}`);
  });
  return {
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * The collector as deploy/systemd runs it on an edge node: that unit's ExecStart (the edge bundle and V8's
 * options) and runtime environment, read from the unit so the bench measures what is deployed, and only the
 * inputs an edge node there uses (no OTLP).
 */
export const EDGE = { ...edgeProfile(), otlp: { http_enabled: false, grpc_enabled: false } };

/**
 * A collector process of its own in `dir`, tailing `inDir/*.log` (and syslog over TCP on `syslogPort`), shipping to
 * `brokers`; with `edge`, as deployed on an edge node.
 */
export async function startCollector(
  dir: string,
  name: string,
  brokers: string[],
  topic: string,
  edge = false,
  syslogPort?: number,
  /** Over the defaults of collector.wal: the fsync policy. */
  wal: Record<string, unknown> = {},
  /** Processing stages of the tailed files (collector.files[].pipeline_stages). */
  pipelineStages?: unknown[],
): Promise<Running & { url: string; inDir: string; positionsFile: string; metric(name: string): Promise<number> }> {
  const inDir = join(dir, "in");
  mkdirSync(inDir, { recursive: true });
  const [port, grpc] = [await freePort(), await freePort()];
  const configFile = join(dir, "collector.yaml");
  writeFileSync(
    configFile,
    JSON.stringify({
      log: { level: "error" },
      node: { id: "bench-edge" },
      kafka: { brokers, topic },
      collector: {
        listen: `127.0.0.1:${port}`,
        wal: { dir: join(dir, "wal"), ...wal },
        otlp: edge ? EDGE.otlp : { grpc_listen: `127.0.0.1:${grpc}` },
        files: [
          {
            paths: [join(inDir, "*.log")],
            labels: { job: "bench" },
            ...(pipelineStages ? { pipeline_stages: pipelineStages } : {}),
          },
        ],
        files_sync_ms: 100,
        ...(syslogPort
          ? { syslog: [{ listen: `127.0.0.1:${syslogPort}`, protocol: "tcp", labels: { job: "bench" } }] }
          : {}),
      },
    }),
  );
  const env = edge ? { ...process.env, ...EDGE.env } : process.env;
  const command = edge ? [...EDGE.nodeArgs, join(REPO_ROOT, EDGE.script)] : [join(REPO_ROOT, "dist", "cli.js")];
  const child = spawn(process.execPath, [...command, "collector", "--config", configFile], {
    stdio: ["ignore", "ignore", "pipe"],
    env,
  });
  const running = watch(child, `collector ${name}`);
  const url = `http://127.0.0.1:${port}`;
  await until(
    "ready collector",
    async () => {
      if (child.exitCode !== null) throw new Error(`collector ${name} exited during start`);
      return fetch(`${url}/ready`).then(
        (r) => r.ok,
        () => false,
      );
    },
    60_000,
  );
  return {
    ...running,
    url,
    inDir,
    positionsFile: join(dir, "wal", "file-positions.json"),
    metric: async (metric) => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return [...text.matchAll(new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    },
  };
}

/** rsyslogd in the foreground with a configuration, work directory and pid file of its own in `dir`: imfile -> omkafka. */
export async function startRsyslog(dir: string, name: string, topic: string): Promise<Running & { inDir: string }> {
  const inDir = join(dir, "in");
  mkdirSync(join(dir, "work"), { recursive: true });
  mkdirSync(inDir, { recursive: true });
  const conf = join(dir, "rsyslog.conf");
  writeFileSync(
    conf,
    [
      `global(workDirectory="${join(dir, "work")}" maxMessageSize="64k")`,
      `module(load="imfile" mode="inotify")`,
      `module(load="omkafka")`,
      `template(name="line" type="string" string="%msg%")`,
      `input(type="imfile" File="${join(inDir, "*.log")}" Tag="bench" ruleset="ship")`,
      `ruleset(name="ship") {`,
      `  action(type="omkafka" broker=[${KAFKA_BROKERS.map((b) => `"${b}"`).join(",")}] topic="${topic}" template="line"`,
      `         confParam=["compression.codec=lz4"] topicConfParam=["request.required.acks=-1"])`,
      `}`,
    ].join("\n") + "\n",
  );
  const child = spawn("rsyslogd", ["-n", "-f", conf, "-i", join(dir, "rsyslogd.pid")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const running = watch(child, `rsyslogd ${name}`);
  // rsyslogd has no readiness endpoint: it is set up once it has written its pid file.
  await until(
    "rsyslogd pid file",
    async () => {
      if (child.exitCode !== null) throw new Error(`rsyslogd ${name} exited during start`);
      try {
        return readFileSync(join(dir, "rsyslogd.pid"), "utf8").trim() === String(child.pid);
      } catch {
        return false;
      }
    },
    30_000,
  );
  await sleep(500);
  return { ...running, inDir };
}

export async function messagesIn(topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Lines in the collector's batches on `topic`, decoded: the check that (c) shipped every line once. */
export async function linesInBatches(topic: string): Promise<number> {
  const expected = await messagesIn(topic);
  const consumer = kafka.consumer({ groupId: uniqueName("bench-verify") });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let [messages, count] = [0, 0];
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        count += decodeBatch(message.value!).streams.reduce((n, s) => n + s.entries.length, 0);
        if (++messages >= expected) resolve();
      },
    });
  });
  await consumer.disconnect();
  return count;
}
