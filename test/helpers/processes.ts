import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, REPO_ROOT } from "./services.js";

const CLI = join(REPO_ROOT, "dist", "cli.js");

/** `bifrost <args>` as a child process of the test, with stdout and stderr piped. */
export function runBifrost(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Everything a child wrote, once it exited. */
export async function output(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

/** Polls until `url` answers with `status` (bounded), returning the last response. */
export async function waitForReady(
  url: string,
  child: ChildProcess,
  status = 200,
  timeoutMs = 30_000,
): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    assert.equal(child.exitCode, null, "bifrost exited before it was ready");
    try {
      const response = await fetch(url);
      if (response.status === status || Date.now() > deadline) return response;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer in ${timeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM, and the exit code once the child is gone. */
export async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, "exit") as Promise<[number | null]>;
  child.kill("SIGTERM");
  return (await exited)[0];
}

export interface AllInOne {
  child: ChildProcess;
  /** The query API, the collector's HTTP listener, and the collector's OTLP/gRPC address (host:port). */
  query: string;
  collector: string;
  otlpGrpc: string;
}

/** `bifrost all` on free ports with a fresh store, ready; the demo off unless `env` turns it on. */
export async function startAllInOne(env: Record<string, string> = {}): Promise<AllInOne> {
  const data = mkdtempSync(join(tmpdir(), "bifrost-all-in-one-"));
  const [query, collector, aggregator, grpc] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const child = runBifrost(["all"], {
    BIFROST_ALL__DEMO: "false",
    BIFROST_STORAGE__PATH: data,
    BIFROST_COLLECTOR__WAL__DIR: join(data, "wal"),
    BIFROST_QUERY__LISTEN: `127.0.0.1:${query}`,
    BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${collector}`,
    BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${grpc}`,
    BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${aggregator}`,
    ...env,
  });
  const started = {
    child,
    query: `http://127.0.0.1:${query}`,
    collector: `http://127.0.0.1:${collector}`,
    otlpGrpc: `127.0.0.1:${grpc}`,
  };
  for (const url of [started.query, started.collector]) await waitForReady(`${url}/ready`, child);
  return started;
}
