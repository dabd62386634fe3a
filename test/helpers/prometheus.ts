import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { stringify } from "yaml";
import type { Series } from "../../proto/batch.js";
import { openMetrics } from "./promql-data.js";
import { freePort } from "./services.js";

// Debian's Prometheus: over a fixed set of series imported with promtool (the reference of the PromQL tests and
// the peer of the PromQL benchmark), or scraping and remote-writing with a configuration of the test's (the peer
// of the scrape and remote write tests and benchmarks).

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
  // Imported samples may be older than any default retention, which would delete their blocks.
  return servePrometheus(dir, {}, ["--storage.tsdb.retention.time=100y"]);
}

/**
 * Prometheus with `config` (prometheus.yml as an object: scrape_configs, remote_write...) and a fresh TSDB
 * under dir, on a free port, once ready.
 */
export async function servePrometheus(
  dir: string,
  config: Record<string, unknown>,
  flags: string[] = [],
): Promise<RunningPrometheus> {
  writeFileSync(join(dir, "prometheus.yml"), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const log = openSync(join(dir, "prometheus.log"), "a");
  const prometheus: ChildProcess = spawn(
    "prometheus",
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      ...flags,
    ],
    { stdio: ["ignore", "ignore", log] },
  );
  closeSync(log);
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

/** Why Debian's node_exporter cannot run here, or false when it can. */
export function nodeExporterMissing(): string | false {
  return onPath("prometheus-node-exporter")
    ? false
    : "prometheus-node-exporter not installed (Debian package prometheus-node-exporter; .ci/run installs it)";
}

/** Debian's node_exporter on a free port; its address (host:port) once it answers. */
export async function startNodeExporter(): Promise<{ address: string; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn("prometheus-node-exporter", [`--web.listen-address=127.0.0.1:${port}`], { stdio: "ignore" });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node_exporter exited with ${child.exitCode}`);
    if ((await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => null))?.ok)
      return { address: `127.0.0.1:${port}`, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error("node_exporter did not answer within 30 s");
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
