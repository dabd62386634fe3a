import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort } from "../test/helpers/services.js";
import { type DataSet, streamsOf } from "./logql-data.js";
import { peakRssMib, resetPeakRss } from "./peak-rss.js";

// The peer of bench:logql: a Grafana Loki binary the user built (LOKI_BIN, with LOKI_CONFIG or loki-local.yaml
// beside it, parameterised by LOKI_DIR, LOKI_PORT and LOKI_GRPC_PORT), fed the same lines and asked the same
// queries over HTTP. Its ingestion limits are raised on the command line so that pushing the data set is not
// throttled, and its series limit matches the one the Bifrost query process runs with.

export interface Loki {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function lokiBinary(): string | undefined {
  const bin = process.env.LOKI_BIN;
  return bin !== undefined && bin !== "" && existsSync(bin) ? bin : undefined;
}

export async function startLoki(bin: string): Promise<Loki> {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-bench-loki-"));
  const port = await freePort();
  const config = process.env.LOKI_CONFIG ?? join(dirname(bin), "loki-local.yaml");
  const child = spawn(
    bin,
    [
      `-config.file=${config}`,
      "-config.expand-env=true",
      "-distributor.ingestion-rate-limit-mb=100000",
      "-distributor.ingestion-burst-size-mb=100000",
      "-ingester.per-stream-rate-limit=100GB",
      "-ingester.per-stream-rate-limit-burst=100GB",
      "-querier.max-query-series=100000",
      // Loki would add detected_level as structured metadata and service_name as a stream label, which Bifrost
      // does not: with them its series would not be the same as Bifrost's.
      "-validation.discover-log-levels=false",
      "-validation.discover-service-name=",
      "-querier.query-timeout=10m",
    ],
    {
      // Some of Loki's stores write under the working directory whatever the configuration's paths say.
      cwd: dir,
      env: { ...process.env, LOKI_DIR: dir, LOKI_PORT: String(port), LOKI_GRPC_PORT: String(await freePort()) },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`loki exited: ${stderr}`);
    const ready = await fetch(`${url}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`loki not ready after 120 s: ${stderr}`);
    }
    await sleep(500);
  }
  return { url, pid: child.pid!, stop };
}

/** Pushes every line of the data set, `batch` lines per request, through Loki's JSON push API. */
export async function pushToLoki(loki: Loki, tenant: string, data: DataSet, batch: number): Promise<void> {
  for (let first = 0; first < data.lines; first += batch) {
    const streams = streamsOf(data, first, batch).map((s) => ({
      stream: { ...s.labels },
      values: s.entries.map((e) => [e.timeUnixNano.toString(), e.line]),
    }));
    const response = await fetch(`${loki.url}/loki/api/v1/push`, {
      method: "POST",
      headers: { "content-type": "application/json", "X-Scope-OrgID": tenant },
      body: JSON.stringify({ streams }),
    });
    if (response.status !== 204) throw new Error(`loki push: ${response.status} ${await response.text()}`);
  }
}

/** Each query `runs` times through Loki's query_range, with its latencies, series count and Loki's peak RSS. */
export async function queryLoki(
  loki: Loki,
  tenant: string,
  queries: { name: string; query: string }[],
  range: { startNs: string; endNs: string; stepSeconds: number },
  runs: number,
): Promise<Record<string, { times_ms: number[]; series: number; peak_rss_mib: number }>> {
  const results: Record<string, { times_ms: number[]; series: number; peak_rss_mib: number }> = {};
  for (const { name, query } of queries) {
    const params = new URLSearchParams({
      query,
      start: range.startNs,
      end: range.endNs,
      step: `${range.stepSeconds}s`,
    });
    resetPeakRss(loki.pid);
    const times: number[] = [];
    let series = 0;
    for (let run = 0; run < runs; run++) {
      const started = performance.now();
      const response = await fetch(`${loki.url}/loki/api/v1/query_range?${params}`, {
        headers: { "X-Scope-OrgID": tenant },
      });
      const body = await response.text();
      if (response.status !== 200) throw new Error(`loki ${name}: ${response.status} ${body}`);
      times.push(performance.now() - started);
      series = (JSON.parse(body) as { data: { result: unknown[] } }).data.result.length;
    }
    results[name] = { times_ms: times, series, peak_rss_mib: Number(peakRssMib(loki.pid).toFixed(1)) };
    process.stderr.write(`logql bench: loki ${name} ${times.map((t) => t.toFixed(0)).join(" ")} ms\n`);
  }
  return results;
}
