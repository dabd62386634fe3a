import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { Series } from "../../proto/batch.js";
import { openMetrics } from "./promql-data.js";
import { freePort } from "./services.js";

// Debian's Prometheus over a fixed set of series, imported with promtool: the reference of the PromQL tests and
// the peer of the PromQL benchmark.

function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => dir !== "" && existsSync(join(dir, command)));
}

/** Why Prometheus cannot run here, or false when it can. */
export function prometheusMissing(): string | false {
  const missing = ["prometheus", "promtool"].filter((command) => !onPath(command));
  return missing.length > 0
    ? `${missing.join(" and ")} not installed (Debian package prometheus; .ci/run installs it)`
    : false;
}

export interface RunningPrometheus {
  url: string;
  stop(): Promise<void>;
}

/** Imports the series into a TSDB under dir and serves it on a free port, once ready. */
export async function startPrometheus(dir: string, series: Series[]): Promise<RunningPrometheus> {
  writeFileSync(join(dir, "data.om"), openMetrics(series));
  execFileSync("promtool", ["tsdb", "create-blocks-from", "openmetrics", join(dir, "data.om"), join(dir, "tsdb")], {
    stdio: "ignore",
  });
  writeFileSync(join(dir, "prometheus.yml"), "global: {}\n");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const prometheus: ChildProcess = spawn(
    "prometheus",
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      // Imported samples may be older than any default retention, which would delete their blocks.
      "--storage.tsdb.retention.time=100y",
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: "ignore" },
  );
  const stop = async () => {
    if (prometheus.exitCode !== null || prometheus.signalCode !== null) return;
    const exited = new Promise((resolve) => prometheus.once("exit", resolve));
    prometheus.kill("SIGTERM");
    await exited;
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (prometheus.exitCode !== null) throw new Error(`prometheus exited with ${prometheus.exitCode}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) return { url, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error("prometheus was not ready within 60 s");
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
