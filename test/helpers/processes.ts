import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { REPO_ROOT } from "./services.js";

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
