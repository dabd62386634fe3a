import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { compressSync } from "snappy";
import { REPO_ROOT } from "./services.js";

// The real pipeline as separate processes (`node dist/cli.js <role> --config <file>`), the load that a fleet of
// Promtail and OpenTelemetry senders puts on it, and reading everything back through the Loki API. Shared by the
// end-to-end fault suite (test/faults/) and `npm run bench:e2e`.

export type Role = "collector" | "aggregator" | "query" | "all";

export const PushRequest = protobuf
  .loadSync(fileURLToPath(new URL("../../proto/loki/push.proto", import.meta.url)))
  .lookupType("logproto.PushRequest");

/** One bifrost process with its config file; `start` again after a kill runs it on the same config and state. */
export class BifrostProcess {
  child: ChildProcess | undefined;

  constructor(
    readonly name: string,
    readonly role: Role,
    readonly configFile: string,
    readonly url: string,
    private readonly logFile: string,
  ) {}

  static write(dir: string, name: string, role: Role, url: string, config: object): BifrostProcess {
    const configFile = join(dir, `${name}.yaml`);
    writeFileSync(configFile, JSON.stringify(config, null, 1));
    return new BifrostProcess(name, role, configFile, url, join(dir, `${name}.log`));
  }

  get pid(): number {
    if (this.child?.pid === undefined) throw new Error(`${this.name} is not running`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): this {
    const log = openSync(this.logFile, "a");
    this.child = spawn(process.execPath, [join(REPO_ROOT, "dist", "cli.js"), this.role, "--config", this.configFile], {
      stdio: ["ignore", log, log],
    });
    return this;
  }

  async ready(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running)
        throw new Error(
          `${this.name} exited (${this.child?.exitCode ?? this.child?.signalCode}); see ${this.logFile}:\n${this.logTail()}`,
        );
      const status = await fetch(`${this.url}/ready`).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) return;
      if (Date.now() > deadline) throw new Error(`${this.name} not ready after ${timeoutMs} ms; see ${this.logFile}`);
      await sleep(200);
    }
  }

  /** Sends the signal and waits for the exit; SIGKILL after 30 s for anything else. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  }

  logTail(lines = 20): string {
    return readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
  }

  /** CPU seconds (user + system) and peak resident memory of the running process, from /proc. */
  usage(): { cpu_s: number; peak_rss_mb: number } {
    return procUsage(this.pid);
  }
}

export function procUsage(pid: number): { cpu_s: number; peak_rss_mb: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return {
    cpu_s: Number(((Number(fields[11]) + Number(fields[12])) / 100).toFixed(2)),
    peak_rss_mb: Number((Number(hwm?.[1] ?? 0) / 1024).toFixed(1)),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The wire forms a load generator sends; each makes one stream whose `source` label names it. */
export type PushKind = "loki-json" | "loki-protobuf" | "otlp-http";
export const PUSH_KINDS: PushKind[] = ["loki-json", "loki-protobuf", "otlp-http"];

export interface Entry {
  tsNs: bigint;
  line: string;
}

/** A push request as Promtail (JSON or snappy protobuf) or an OTLP/HTTP exporter (JSON) sends it. */
export function pushRequest(
  kind: PushKind,
  entries: Entry[],
  labels: Record<string, string> = { app: "loadgen", source: kind },
): { path: string; headers: Record<string, string>; body: Buffer } {
  switch (kind) {
    case "loki-json":
      return {
        path: "/loki/api/v1/push",
        headers: { "Content-Type": "application/json" },
        body: Buffer.from(
          JSON.stringify({ streams: [{ stream: labels, values: entries.map((e) => [String(e.tsNs), e.line]) }] }),
        ),
      };
    case "loki-protobuf": {
      const text = `{${Object.entries(labels)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(", ")}}`;
      const message = PushRequest.create({
        streams: [
          {
            labels: text,
            entries: entries.map((e) => ({
              timestamp: { seconds: Number(e.tsNs / 1_000_000_000n), nanos: Number(e.tsNs % 1_000_000_000n) },
              line: e.line,
            })),
          },
        ],
      });
      return {
        path: "/loki/api/v1/push",
        headers: { "Content-Type": "application/x-protobuf" },
        body: compressSync(Buffer.from(PushRequest.encode(message).finish())),
      };
    }
    case "otlp-http": {
      const attributes = Object.entries(labels).map(([key, value]) => ({
        key: key === "app" ? "service.name" : key,
        value: { stringValue: value },
      }));
      const body = {
        resourceLogs: [
          {
            resource: { attributes },
            scopeLogs: [
              { logRecords: entries.map((e) => ({ timeUnixNano: String(e.tsNs), body: { stringValue: e.line } })) },
            ],
          },
        ],
      };
      return {
        path: "/v1/logs",
        headers: { "Content-Type": "application/json" },
        body: Buffer.from(JSON.stringify(body)),
      };
    }
  }
}

export interface PusherStats {
  requests: number;
  accepted: number;
  acceptedEntries: number;
  /** Answers that asked for a retry (429, 503) or no answer at all (connection refused or reset). */
  retried: Record<string, number>;
  retryAfterSeen: number;
  /** Answers that are neither success nor a retry: the load generator stops on them. */
  failed: string[];
}

/**
 * Pushes `entriesPerPush` entries every `intervalMs` to one collector, turn by turn in each wire form, one
 * request at a time. A request answered 429 or 503 is sent again, unchanged, as Promtail does: after Retry-After
 * (at most `maxWaitMs`) or an exponential backoff; one with no answer too, and its entries are then "in doubt"
 * (the collector may have buffered them before it died). Only entries of a 2xx answer count as acknowledged.
 */
export class Pusher {
  readonly acked: Entry[] = [];
  readonly inDoubt = new Set<string>();
  readonly stats: PusherStats = {
    requests: 0,
    accepted: 0,
    acceptedEntries: 0,
    retried: {},
    retryAfterSeen: 0,
    failed: [],
  };
  private seq = 0;
  private lastTsNs = 0n;
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(
    readonly node: string,
    private readonly url: string,
    private readonly options: {
      entriesPerPush: number;
      intervalMs: number;
      lineBytes?: number;
      maxWaitMs?: number;
      kinds?: PushKind[];
      labels?: Record<string, string>;
      /** false: count acknowledged entries without keeping them (for long benchmarks). */
      keep?: boolean;
      /** Answers that send the same request again, unchanged (default 429 and 503, as Promtail retries). */
      retryStatuses?: number[];
      onAcked?: (entries: Entry[], sentAtMs: number) => void;
    },
  ) {}

  start(): this {
    this.loop = this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
  }

  /** A timestamp unique within this node, so that paging by time never splits a tie between pushes. */
  private nextTs(): bigint {
    const now = BigInt(Date.now()) * 1_000_000n;
    this.lastTsNs = now > this.lastTsNs ? now : this.lastTsNs + 1n;
    return this.lastTsNs;
  }

  private async run(): Promise<void> {
    let next = Date.now();
    let turn = 0;
    while (!this.stopping && this.stats.failed.length === 0) {
      const kinds = this.options.kinds ?? PUSH_KINDS;
      const kind = kinds[turn++ % kinds.length]!;
      // Random padding, so that the disk buffer's and Kafka's compression do not shrink it away.
      const pad = () => randomBytes(Math.max(0, (this.options.lineBytes ?? 0) - 40) >> 1).toString("hex");
      const entries = Array.from({ length: this.options.entriesPerPush }, () => ({
        tsNs: this.nextTs(),
        line: `${this.node} ${kind} seq=${++this.seq} ${pad()}`.trimEnd(),
      }));
      await this.send(kind, entries);
      next += this.options.intervalMs;
      const now = Date.now();
      if (next > now) await sleep(next - now);
      else next = now;
    }
  }

  private async send(kind: PushKind, entries: Entry[]): Promise<void> {
    const { path, headers, body } = pushRequest(kind, entries, this.options.labels);
    const sentAt = Date.now();
    // Past the stop, a request still waiting is abandoned after a while: its entries were never acknowledged.
    let abandonAt = Infinity;
    for (let attempt = 0; ; attempt++) {
      if (this.stopping && abandonAt === Infinity) abandonAt = Date.now() + 60_000;
      if (Date.now() > abandonAt) return;
      this.stats.requests++;
      let reason: string;
      let retryAfterMs: number | undefined;
      try {
        const response = await fetch(`${this.url}${path}`, {
          method: "POST",
          headers,
          body,
          signal: AbortSignal.timeout(30_000),
        });
        await response.arrayBuffer();
        if (response.ok) {
          this.stats.accepted++;
          this.stats.acceptedEntries += entries.length;
          if (this.options.keep !== false) this.acked.push(...entries);
          this.options.onAcked?.(entries, sentAt);
          return;
        }
        if (!(this.options.retryStatuses ?? [429, 503]).includes(response.status)) {
          this.stats.failed.push(`${kind}: ${response.status}`);
          return;
        }
        reason = String(response.status);
        const header = response.headers.get("Retry-After");
        if (header !== null) {
          this.stats.retryAfterSeen++;
          retryAfterMs = Number(header) * 1000;
        }
      } catch {
        reason = "no answer";
        for (const e of entries) this.inDoubt.add(e.line);
      }
      this.stats.retried[reason] = (this.stats.retried[reason] ?? 0) + 1;
      await sleep(Math.min(retryAfterMs ?? 250 * 2 ** attempt, this.options.maxWaitMs ?? 5_000));
    }
  }
}

/** Appends `linesPerTick` lines every `intervalMs` to a file a collector tails; a written line counts as acknowledged. */
export class FileWriter {
  readonly written: string[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly node: string,
    readonly path: string,
    private readonly options: { linesPerTick: number; intervalMs: number },
  ) {
    writeFileSync(path, "");
  }

  start(): this {
    this.timer = setInterval(() => {
      const first = this.written.length + 1;
      const lines = Array.from({ length: this.options.linesPerTick }, (_, i) => `${this.node} file seq=${first + i}`);
      this.written.push(...lines);
      appendFileSync(this.path, lines.map((l) => `${l}\n`).join(""));
    }, this.options.intervalMs);
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

interface QueryStreams {
  data: { resultType: string; result: { stream: Record<string, string>; values: [string, string][] }[] };
}

/**
 * Every entry of `selector` in [startNs, endNs), read through /loki/api/v1/query_range forward in pages of
 * `limit`, each page starting at the last timestamp of the one before. Entries at that timestamp which the
 * page before already returned are skipped once each, so a tie across a page boundary is neither lost nor
 * counted twice, while a stored duplicate still shows.
 */
export async function readAllEntries(
  queryUrl: string,
  selector: string,
  startNs: bigint,
  endNs: bigint,
  limit = 5000,
): Promise<Entry[]> {
  const all: Entry[] = [];
  let from = startNs;
  let boundary = new Map<string, number>();
  for (;;) {
    const url = `${queryUrl}/loki/api/v1/query_range?query=${encodeURIComponent(selector)}&start=${from}&end=${endNs}&direction=forward&limit=${limit}`;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`query_range ${selector}: ${response.status} ${await response.text()}`);
    const page = ((await response.json()) as QueryStreams).data.result
      .flatMap((s) => s.values.map(([ts, line]) => ({ tsNs: BigInt(ts), line })))
      .sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
    const skip = new Map(boundary);
    const fresh = page.filter((e) => {
      if (e.tsNs !== from) return true;
      const left = skip.get(e.line) ?? 0;
      if (left === 0) return true;
      skip.set(e.line, left - 1);
      return false;
    });
    all.push(...fresh);
    if (page.length < limit) return all;
    const last = page[page.length - 1]!.tsNs;
    if (last === from && fresh.length === 0)
      throw new Error(`more than ${limit} entries of ${selector} share the timestamp ${last}`);
    boundary = new Map();
    for (let i = all.length - 1; i >= 0 && all[i]!.tsNs === last; i--)
      boundary.set(all[i]!.line, (boundary.get(all[i]!.line) ?? 0) + 1);
    from = last;
  }
}

/** Stored entries per node over the last `window`, by a LogQL metric query (cheap enough to poll). */
export async function countByNode(queryUrl: string, window = "30m"): Promise<Map<string, number>> {
  const query = `sum by (node) (count_over_time({node=~".+"}[${window}]))`;
  const response = await fetch(
    `${queryUrl}/loki/api/v1/query?query=${encodeURIComponent(query)}&time=${Date.now() * 1_000_000}`,
  );
  if (!response.ok) throw new Error(`count query: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as {
    data: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  return new Map(body.data.result.map((r) => [r.metric["node"] ?? "", Number(r.value[1])]));
}
