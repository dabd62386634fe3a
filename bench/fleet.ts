import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { procUsage } from "../test/helpers/pipeline.js";
import { freePort, REPO_ROOT } from "../test/helpers/services.js";

// npm run bench:fleet — one fleet server (`bifrost fleet`, embedded store) and BENCH_FLEET_AGENTS (10,000)
// simulated light-weight OpAMP agents in BENCH_FLEET_WORKERS worker threads (bench/fleet-agents.ts), each a
// WebSocket connection that heartbeats every 30 s. Measured: the fleet server's CPU (share of one core) and
// resident memory in the steady state, and how long a configuration change (a new base.yaml in the source
// directory, all at once) takes to reach every agent: p50, p99 and the last, from the moment the file is written
// (the source poll interval, 500 ms here, and the 250 ms settle included). Beside it, the floor in the same run:
// a bare WebSocket server on the same library (bench/fleet-floor.ts) that only decodes and answers, against the
// same agents. Prints one JSON line; progress on stderr.

const AGENTS = Number(process.env["BENCH_FLEET_AGENTS"] ?? 10_000);
const WORKERS = Number(process.env["BENCH_FLEET_WORKERS"] ?? 8);
const HEARTBEAT_MS = Number(process.env["BENCH_FLEET_HEARTBEAT_MS"] ?? 30_000);
const STEADY_MS = Number(process.env["BENCH_FLEET_STEADY_MS"] ?? 60_000);
const CONNECT_SPREAD_MS = Number(process.env["BENCH_FLEET_CONNECT_SPREAD_MS"] ?? 20_000);
const POLL_MS = 500;

const progress = (message: string) => process.stderr.write(`bench:fleet: ${message}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

class Agents {
  private readonly workers: Worker[] = [];
  private arrivals: number[] = [];

  async start(url: string): Promise<number> {
    const started = Date.now();
    const per = Math.ceil(AGENTS / WORKERS);
    const connected: Promise<void>[] = [];
    for (let w = 0; w < WORKERS; w++) {
      const count = Math.min(per, AGENTS - w * per);
      if (count <= 0) break;
      const worker = new Worker(new URL("./fleet-agents.js", import.meta.url), {
        workerData: { url, count, first: w * per, heartbeatMs: HEARTBEAT_MS, connectSpreadMs: CONNECT_SPREAD_MS },
      });
      this.workers.push(worker);
      worker.on("message", (m: { type: string; arrivals?: number[] }) => {
        if (m.type === "arrivals") this.arrivals.push(...m.arrivals!);
      });
      connected.push(
        new Promise((resolve) => worker.on("message", (m: { type: string }) => m.type === "connected" && resolve())),
      );
    }
    await Promise.all(connected);
    return Date.now() - started;
  }

  /** Arrival times of configurations so far (and forgets them). */
  async collect(): Promise<number[]> {
    for (const worker of this.workers) worker.postMessage({ type: "report" });
    await sleep(200);
    return this.arrivals.splice(0);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            worker.on("message", (m: { type: string }) => m.type === "closed" && resolve());
            worker.postMessage({ type: "close" });
          }),
      ),
    );
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** CPU share of one core and RSS of `pid` over `ms`. */
async function usage(pid: number, ms: number): Promise<{ cpu_percent: number; rss_mb: number; peak_rss_mb: number }> {
  const before = procUsage(pid).cpu_s;
  await sleep(ms);
  const after = procUsage(pid);
  const rss = /^VmRSS:\s+(\d+) kB/m.exec((await import("node:fs")).readFileSync(`/proc/${pid}/status`, "utf8"));
  return {
    cpu_percent: Number(((((after.cpu_s - before) * 1000) / ms) * 100).toFixed(1)),
    rss_mb: Number((Number(rss?.[1] ?? 0) / 1024).toFixed(1)),
    peak_rss_mb: after.peak_rss_mb,
  };
}

/** Waits until `count` arrivals (or the timeout); returns their latencies from `t0`, sorted. */
async function pushLatencies(agents: Agents, t0: number, count: number, timeoutMs = 180_000): Promise<number[]> {
  const latencies: number[] = [];
  const deadline = Date.now() + timeoutMs;
  while (latencies.length < count && Date.now() < deadline) {
    latencies.push(...(await agents.collect()).map((at) => at - t0));
    await sleep(300);
  }
  return latencies.sort((a, b) => a - b);
}

function summary(latencies: number[]) {
  return {
    received: latencies.length,
    p50_ms: quantile(latencies, 0.5),
    p99_ms: quantile(latencies, 0.99),
    max_ms: latencies.at(-1) ?? NaN,
  };
}

async function fleetRun(dir: string) {
  const { privateKey } = generateKeyPairSync("ed25519");
  writeFileSync(join(dir, "key.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
  const source = join(dir, "source");
  mkdirSync(source);
  writeFileSync(join(source, "base.yaml"), "collector:\n  batch:\n    max_entries: 1000\n");
  const port = await freePort();
  writeFileSync(
    join(dir, "fleet.yaml"),
    JSON.stringify({
      log: { level: "warn" },
      storage: { engine: "embedded", path: join(dir, "data") },
      fleet: {
        listen: `127.0.0.1:${port}`,
        source_dir: source,
        poll_interval_ms: POLL_MS,
        keys: [{ id: "bench", algorithm: "ed25519", file: join(dir, "key.pem") }],
      },
    }),
  );
  const fleet = spawn(
    process.execPath,
    [join(REPO_ROOT, "dist", "cli.js"), "fleet", "--config", join(dir, "fleet.yaml")],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  const api = `http://127.0.0.1:${port}/fleet/api/v1`;
  while ((await fetch(`${api}/status`).catch(() => null))?.status !== 200) await sleep(200);
  const agents = new Agents();
  progress(`connecting ${AGENTS} agents to the fleet server`);
  const connectMs = await agents.start(`ws://127.0.0.1:${port}/v1/opamp`);
  const initial = await pushLatencies(agents, Date.now(), AGENTS);
  progress(`${initial.length} agents got the first configuration; steady state for ${STEADY_MS} ms`);
  const steady = await usage(fleet.pid!, STEADY_MS);
  const status = (await (await fetch(`${api}/status`)).json()) as { agents: Record<string, number> };
  progress("changing the configuration");
  const t0 = Date.now();
  writeFileSync(join(source, "base.yaml"), "collector:\n  batch:\n    max_entries: 2000\n");
  const pushUsage = usage(fleet.pid!, 10_000);
  const latencies = await pushLatencies(agents, t0, AGENTS);
  const rollouts = (await (await fetch(`${api}/rollouts`)).json()) as {
    rollouts: { created_ms: number; status: string }[];
  };
  const push = {
    ...summary(latencies),
    source_taken_ms: rollouts.rollouts[0]!.created_ms - t0,
    cpu_percent_first_10s: (await pushUsage).cpu_percent,
  };
  await agents.close();
  await stop(fleet);
  return { connect_ms: connectMs, agents_in_inventory: status.agents["total"], steady, push };
}

async function floorRun() {
  const floor = spawn(process.execPath, [join(REPO_ROOT, "dist", "bench", "fleet-floor.js")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve) =>
    floor.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))),
  );
  const agents = new Agents();
  progress(`connecting ${AGENTS} agents to the floor server`);
  const connectMs = await agents.start(`ws://127.0.0.1:${port}/v1/opamp`);
  const steady = await usage(floor.pid!, STEADY_MS);
  const t0 = Date.now();
  floor.kill("SIGUSR2");
  const push = summary(await pushLatencies(agents, t0, AGENTS));
  await agents.close();
  await stop(floor);
  return { connect_ms: connectMs, steady, push };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

const dir = mkdtempSync(join(tmpdir(), "bifrost-bench-fleet-"));
try {
  const fleet = await fleetRun(dir);
  const floor = await floorRun();
  process.stdout.write(
    `${JSON.stringify({
      bench: "fleet",
      agents: AGENTS,
      workers: WORKERS,
      heartbeat_ms: HEARTBEAT_MS,
      source_poll_ms: POLL_MS,
      fleet,
      floor_bare_websocket_server: floor,
    })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
