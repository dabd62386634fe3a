import { closeSync, fdatasyncSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { Agent } from "node:http";
import { join } from "node:path";
import { postTo, procStats, progress, startCollector } from "./collector-processes.js";
import { freePort } from "../test/helpers/services.js";

// The sequential push phase of bench:collector: one client, one request at a time (as Promtail and Alloy send
// each batch), LINES_PER_PUSH-line Loki pushes for SECONDS, into a collector whose broker is a closed port, so
// that what is measured is the answer to a push: decoding, the ingestion contract, the disk buffer. Under the
// default fsync policy (`interval`) and under `always`, beside the physical limit of `always` measured in the
// same run on the same disk: sequential write+fdatasync of a small record in a loop, the rate a client waiting for
// each fsync can reach at most. Issue 16's target: at least 50 pushes per second under the default policy.

const LINES_PER_PUSH = 1000;
const SECONDS = Number(process.env.BENCH_SEQUENTIAL_SECONDS ?? 10);
const TARGET_PUSHES_PER_S = 50;

/** write + fdatasync of a 512-byte record, appended in a loop for `ms`, in `dir`: the disk's sequential fsyncs/s. */
export function diskFsyncsPerSecond(dir: string, ms = 3000): number {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "fsync-probe");
  const fd = openSync(file, "a");
  const record = Buffer.alloc(512, 120);
  let count = 0;
  const t0 = performance.now();
  try {
    while (performance.now() - t0 < ms) {
      writeSync(fd, record);
      fdatasyncSync(fd);
      count++;
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return Math.round(count / ((performance.now() - t0) / 1000));
}

/** A Loki JSON push of LINES_PER_PUSH of `lines`, each entry at its own time so that none is a duplicate. */
function pushBody(lines: string[], push: number, t0: bigint): Buffer {
  const values = Array.from({ length: LINES_PER_PUSH }, (_, i) => {
    const k = push * LINES_PER_PUSH + i;
    return [String(t0 + BigInt(k)), lines[k % lines.length]!];
  });
  return Buffer.from(JSON.stringify({ streams: [{ stream: { job: "bench", app: "sequential" }, values }] }));
}

/** Pushes one at a time for SECONDS into a collector with fsync policy `fsync`. */
async function sequentialPushes(root: string, lines: string[], fsync: "interval" | "always") {
  const name = `sequential-${fsync}`;
  const collector = await startCollector(
    join(root, name),
    name,
    [`127.0.0.1:${await freePort()}`],
    "unused",
    false,
    undefined,
    { fsync },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const t0ns = BigInt(Date.now()) * 1_000_000n;
  const before = procStats(collector.pid);
  const t0 = performance.now();
  let pushes = 0;
  let bodyBytes = 0;
  while (performance.now() - t0 < SECONDS * 1000) {
    // Made while the clock runs, as a client makes each batch: it counts against the client, not the collector.
    const body = pushBody(lines, pushes, t0ns);
    bodyBytes += body.length;
    await postTo(agent, `${collector.url}/loki/api/v1/push`, { "Content-Type": "application/json" }, body);
    pushes++;
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = procStats(collector.pid);
  const accepted = await collector.metric("bifrost_collector_entries_accepted_total");
  agent.destroy();
  await collector.stop();
  if (accepted !== pushes * LINES_PER_PUSH)
    throw new Error(`the collector accepted ${accepted} of ${pushes * LINES_PER_PUSH} pushed lines`);
  const result = {
    pushes,
    pushes_per_s: Number((pushes / seconds).toFixed(1)),
    ms_per_push: Number(((seconds * 1000) / pushes).toFixed(2)),
    request_bytes: Math.round(bodyBytes / pushes),
    collector_cpu_seconds_per_push: Number(((after.cpuSeconds - before.cpuSeconds) / pushes).toFixed(4)),
    // What one free core would answer: on a shared machine (see the load average) the wall-clock rate is lower.
    pushes_per_collector_cpu_second: Math.round(pushes / (after.cpuSeconds - before.cpuSeconds)),
  };
  progress(`sequential pushes, fsync ${fsync}: ${result.pushes_per_s} pushes/s of ${LINES_PER_PUSH} lines`);
  return result;
}

export async function sequentialPushBench(root: string, lines: string[]) {
  const disk = diskFsyncsPerSecond(join(root, "fsync-probe"));
  progress(`the disk: ${disk} sequential write+fdatasync per second`);
  const interval = await sequentialPushes(root, lines, "interval");
  const always = await sequentialPushes(root, lines, "always");
  return {
    lines_per_push: LINES_PER_PUSH,
    seconds: SECONDS,
    default_fsync_interval: interval,
    fsync_always: always,
    disk_sequential_fsyncs_per_s: disk,
    always_vs_disk_fsyncs: Number((always.pushes_per_s / disk).toFixed(2)),
    target_pushes_per_s: TARGET_PUSHES_PER_S,
    peer: "none run: no Loki binary on this machine (issue 16 measured 24 sequential pushes in 1.5 s into Loki, 16/s)",
  };
}
