import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Kafka } from "kafkajs";
import { stringify } from "yaml";
import { edgeProfile } from "../../deploy/edge/profile.js";
import { type Batch, batchId } from "../../proto/batch.js";
import { decodeBatch } from "../../proto/codec.js";
import { until } from "./aggregation.js";
import { freePort, REPO_ROOT, uniqueName } from "./services.js";

/** `bifrost collector --config <yaml>` as a child process, its JSON logs appended to `<dir>/collector.log`. */
export class CollectorProcess {
  child: ChildProcess | undefined;
  readonly url: string;
  readonly logFile: string;
  private readonly configFile: string;

  private constructor(
    dir: string,
    port: number,
    config: Record<string, unknown>,
    private readonly edge: boolean,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.logFile = join(dir, "collector.log");
    this.configFile = join(dir, "collector.yaml");
    writeFileSync(this.configFile, stringify(config));
  }

  /**
   * Writes the configuration: `collector` is merged over a listener on a free port, OTLP/gRPC off and the WAL in
   * `<dir>/wal`; `kafka` over the given brokers and topic. With `edge`, the process runs as the systemd unit
   * runs it on an edge node (the edge bundle, its V8 options and environment; deploy/edge/profile.ts).
   */
  static async configure(
    dir: string,
    options: {
      nodeId: string;
      kafka: Record<string, unknown>;
      collector?: Record<string, unknown>;
      edge?: boolean;
      /** More of the node section: site, region. */
      node?: Record<string, string>;
      /** The aggregator section, whose limits the collector's ingestion contract checks shipped data against. */
      aggregator?: Record<string, unknown>;
    },
  ): Promise<CollectorProcess> {
    const port = await freePort();
    const { wal, batch, ...rest } = (options.collector ?? {}) as { wal?: object; batch?: object };
    return new CollectorProcess(
      dir,
      port,
      {
        log: { level: "info" },
        node: { id: options.nodeId, ...options.node },
        kafka: options.kafka,
        ...(options.aggregator ? { aggregator: options.aggregator } : {}),
        collector: {
          listen: `127.0.0.1:${port}`,
          otlp: { grpc_enabled: false },
          wal: { dir: join(dir, "wal"), ...wal },
          batch: { max_age_ms: 50, ...batch },
          ...rest,
        },
      },
      options.edge ?? false,
    );
  }

  /**
   * Starts the process and waits until it listens (its /ready may still say 503, e.g. with a full buffer). With
   * `killAt` (see kill-at.ts) the process SIGKILLs itself at that point, perhaps before it listens.
   */
  async start(killAt?: string): Promise<void> {
    const previous = this.child;
    assert.ok(
      !previous || previous.exitCode !== null || previous.signalCode !== null,
      "the previous collector process still runs",
    );
    const preload =
      killAt === undefined
        ? []
        : ["--import", pathToFileURL(join(REPO_ROOT, "dist", "test", "helpers", "kill-at.js")).href];
    const log = openSync(this.logFile, "a");
    const edge = this.edge ? edgeProfile() : undefined;
    const command = edge ? [...edge.nodeArgs, join(REPO_ROOT, edge.script)] : [join(REPO_ROOT, "dist", "cli.js")];
    const child = spawn(process.execPath, [...preload, ...command, "collector", "--config", this.configFile], {
      env: { ...process.env, ...edge?.env, ...(killAt === undefined ? {} : { BIFROST_TEST_KILL_AT: killAt }) },
      stdio: ["ignore", log, "pipe"],
    });
    closeSync(log);
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    this.child = child;
    await until(
      "the collector listening",
      async () => {
        if (child.exitCode !== null || (child.signalCode !== null && killAt === undefined))
          throw new Error(`the collector exited with ${child.exitCode ?? child.signalCode}: ${stderr}`);
        return child.signalCode !== null || (await fetch(`${this.url}/ready`).catch(() => null)) !== null;
      },
      60_000,
    );
  }

  /** Waits for the process to end by itself; returns the signal that ended it, or its exit code. */
  async exited(timeoutMs = 60_000): Promise<string> {
    const child = this.child!;
    await until("the collector ending", () => child.exitCode !== null || child.signalCode !== null, timeoutMs);
    return child.signalCode ?? String(child.exitCode);
  }

  /** Stops it with `signal` and waits for the exit; SIGTERM must end in a clean exit. */
  async stop(signal: "SIGKILL" | "SIGTERM" = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<[number | null, string | null]>((resolve) =>
      child.once("exit", (code, sig) => resolve([code, sig])),
    );
    child.kill(signal);
    const [code, sig] = await exited;
    if (signal === "SIGTERM") assert.equal(code, 0, `the collector exited with ${code ?? sig} on SIGTERM`);
  }

  /** The value of a metric (summed over the label sets matching `labels`), 0 when absent. */
  async metric(name: string, labels = ""): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    let sum = 0;
    for (const line of text.split("\n")) {
      const match = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (match && match[1] === name && (match[2] ?? "").includes(labels)) sum += Number(match[3]);
    }
    return sum;
  }

  /** Waits until the buffer holds nothing undelivered, read after the gauge's 1 s refresh (no input may arrive meanwhile). */
  async drained(timeoutMs = 90_000): Promise<void> {
    await new Promise((r) => setTimeout(r, 1200));
    await until(
      "the disk buffer drained",
      async () => (await this.metric("bifrost_collector_buffer_batches")) === 0,
      timeoutMs,
    );
  }

  /** The collector's log lines, parsed. */
  logs(): Record<string, unknown>[] {
    return readFileSync(this.logFile, "utf8")
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

/** One entry a client pushed, identified by client and counter, which its line also carries. */
export interface PushedEntry {
  client: string;
  n: number;
  ns: string;
  line: string;
}

/**
 * Steady Loki push load: `clients` senders, each posting `entriesPerPush` new entries as soon as the previous
 * post was answered (never re-sending, so each entry is identified by its line). Remembers what got a 2xx
 * (acknowledged) and what was sent at all (a post cut off by a crash may or may not have been buffered).
 */
export class LokiLoad {
  readonly acknowledged: PushedEntry[] = [];
  readonly attempted = new Map<string, PushedEntry>();
  readonly statuses = new Map<string, number>();
  private running = false;
  private loops: Promise<void>[] = [];
  /** Entry k is at this time plus k microseconds: now, inside the collector's timestamp window. */
  private readonly startNs = BigInt(Date.now()) * 1_000_000n;

  constructor(
    private readonly target: () => string,
    private readonly options: {
      clients: number;
      entriesPerPush: number;
      tenant: string;
      pauseMs?: number;
      /** Random (incompressible) bytes per line. */ padBytes?: number;
    },
  ) {}

  start(): void {
    this.running = true;
    const salt = uniqueName("p");
    this.loops = Array.from({ length: this.options.clients }, (_, c) => this.client(`c${c}`, salt));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Posts one request of `count` new entries from `client`; its status is "error" when the connection failed. */
  async pushOnce(
    client: string,
    n: number,
    count = this.options.entriesPerPush,
    salt = "once",
  ): Promise<{ status: string; body: string; retryAfter: string | null }> {
    const entries = Array.from({ length: count }, (_, i) => {
      const k = n + i;
      return {
        client,
        n: k,
        ns: String(this.startNs + BigInt(k) * 1000n),
        line: `client=${client} n=${k} salt=${salt} pad=${randomBytes(this.options.padBytes ?? 8).toString("base64")}`,
      };
    });
    for (const e of entries) this.attempted.set(e.line, e);
    let answer = { status: "error", body: "", retryAfter: null as string | null };
    try {
      const response = await fetch(`${this.target()}/loki/api/v1/push`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Scope-OrgID": this.options.tenant },
        body: JSON.stringify({
          streams: [{ stream: { app: "load", client }, values: entries.map((e) => [e.ns, e.line]) }],
        }),
      });
      answer = {
        status: String(response.status),
        body: await response.text(),
        retryAfter: response.headers.get("Retry-After"),
      };
      if (response.ok) this.acknowledged.push(...entries);
    } catch {
      // connection refused or reset: the collector is down or was killed mid-request
    }
    this.statuses.set(answer.status, (this.statuses.get(answer.status) ?? 0) + 1);
    return answer;
  }

  private async client(client: string, salt: string): Promise<void> {
    let n = 0;
    while (this.running) {
      const { status } = await this.pushOnce(client, n, this.options.entriesPerPush, salt);
      n += this.options.entriesPerPush;
      await new Promise((r) => setTimeout(r, status === "204" ? (this.options.pauseMs ?? 5) : 50));
    }
  }
}

/** Every message of `topic` up to the partitions' current high watermarks, decoded, in offset order per partition. */
export async function consumeAll(
  kafka: Kafka,
  topic: string,
): Promise<{ partition: number; offset: string; value: Buffer; batch: Batch }[]> {
  const admin = kafka.admin();
  await admin.connect();
  const high = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  await admin.disconnect();
  const out: { partition: number; offset: string; value: Buffer; batch: Batch }[] = [];
  const next = new Map<number, bigint>();
  const consumer = kafka.consumer({ groupId: uniqueName("verify") });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        out.push({ partition, offset: message.offset, value: message.value!, batch: decodeBatch(message.value!) });
        next.set(partition, BigInt(message.offset) + 1n);
      },
    });
    await until(
      "every message up to the high watermarks",
      () => [...high].every(([p, h]) => (next.get(p) ?? 0n) >= h),
      60_000,
    );
  } finally {
    await consumer.disconnect();
  }
  return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

export interface DeliveryCheck {
  messages: number;
  /** Messages carrying a batch id already seen: redeliveries after a crash or a lost broker ack. */
  duplicateBatches: number;
  /** Entries received more than once (all of them within duplicate batches). */
  duplicateEntries: number;
  acknowledged: number;
  /** Entries that arrived although their post got no 2xx (cut off by the crash after the WAL append). */
  unacknowledgedArrived: number;
  hash: string;
}

const hashOf = (entries: PushedEntry[]) =>
  createHash("sha256")
    .update(entries.map((e) => `${e.client}\u0000${e.ns}\u0000${e.line}\n`).join(""))
    .digest("hex");

/**
 * Checks at-least-once delivery of `load` (its streams have app="load") in `messages` (from one node): no acknowledged entry missing, nothing
 * arrived that was never sent, a redelivered batch byte-identical to its first copy, batches in sequence order
 * and each client's entries in the order it pushed them, and the content hash of the deduplicated acknowledged
 * entries equal to that of what was acknowledged.
 */
export function checkDelivery(load: LokiLoad, messages: { value: Buffer; batch: Batch }[]): DeliveryCheck {
  const firstCopy = new Map<string, Buffer>();
  const batches: Batch[] = [];
  let duplicateBatches = 0;
  let lastSequence = 0;
  for (const { value, batch } of messages) {
    const key = batchId(batch);
    const seen = firstCopy.get(key);
    if (seen) {
      assert.ok(seen.equals(value), `batch ${key} redelivered with different content`);
      duplicateBatches++;
      continue;
    }
    assert.ok(
      batch.sequence > lastSequence,
      `batch ${batch.sequence} arrived after ${lastSequence}: order per node broken`,
    );
    lastSequence = batch.sequence;
    firstCopy.set(key, value);
    batches.push(batch);
  }
  const arrived: PushedEntry[] = [];
  const lines = new Set<string>();
  let duplicateEntries = 0;
  const loadStreams = (batch: Batch) => batch.streams.filter((s) => s.labels["app"] === "load");
  for (const { batch } of messages) for (const s of loadStreams(batch)) duplicateEntries += s.entries.length;
  for (const batch of batches) {
    for (const stream of loadStreams(batch)) {
      for (const entry of stream.entries) {
        const sent = load.attempted.get(entry.line);
        assert.ok(sent, `an entry that was never sent arrived: ${entry.line.slice(0, 80)}`);
        assert.equal(stream.labels["client"], sent.client);
        assert.ok(!lines.has(entry.line), `entry ${entry.line.slice(0, 40)} in two different batches`);
        lines.add(entry.line);
        arrived.push({ client: sent.client, n: sent.n, ns: String(entry.timeUnixNano), line: entry.line });
      }
    }
  }
  duplicateEntries -= arrived.length;
  const byClient = new Map<string, number>();
  for (const e of arrived) {
    assert.ok(e.n > (byClient.get(e.client) ?? -1), `${e.client}'s entry ${e.n} arrived after a later one`);
    byClient.set(e.client, e.n);
  }
  const acknowledged = new Set(load.acknowledged.map((e) => e.line));
  const missing = load.acknowledged.filter((e) => !lines.has(e.line));
  assert.equal(missing.length, 0, `${missing.length} acknowledged entries lost, e.g. ${missing[0]?.line.slice(0, 40)}`);
  const order = (a: PushedEntry, b: PushedEntry) => (a.client < b.client ? -1 : a.client > b.client ? 1 : a.n - b.n);
  const expected = hashOf([...load.acknowledged].sort(order));
  const hash = hashOf(arrived.filter((e) => acknowledged.has(e.line)).sort(order));
  assert.equal(hash, expected, "content of the acknowledged entries changed");
  return {
    messages: messages.length,
    duplicateBatches,
    duplicateEntries,
    acknowledged: load.acknowledged.length,
    unacknowledgedArrived: arrived.length - acknowledged.size,
    hash,
  };
}
