import { spawn } from "node:child_process";

export type RunStatus = "succeeded" | "failed" | "timed_out";

export interface RunResult {
  status: RunStatus;
  exit_code: number | null;
  signal: string | null;
  duration_ms: number;
  stdout: string;
  stderr: string;
  /** Whether stdout or stderr was cut at the output limit. */
  truncated: boolean;
}

export interface RunOptions {
  timeoutMs: number;
  /** Bytes kept of each of stdout and stderr. */
  maxOutputBytes: number;
}

/** How long output may still arrive after the command exited, from descendants that kept its pipes open. */
const DRAIN_MS = 200;

/**
 * Runs argv without a shell in a process group of its own, so that on timeout the whole group (the command
 * and everything it started) is killed, not only its first process.
 */
export function runCommand(argv: string[], options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const output = { stdout: [] as Buffer[], stderr: [] as Buffer[], kept: { stdout: 0, stderr: 0 }, truncated: false };
    let timedOut = false;
    let settled = false;
    const child = spawn(argv[0]!, argv.slice(1), { shell: false, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const keep = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      const room = options.maxOutputBytes - output.kept[stream];
      if (chunk.length > room) output.truncated = true;
      if (room <= 0) return;
      const part = chunk.subarray(0, room);
      output[stream].push(part);
      output.kept[stream] += part.length;
    };
    child.stdout.on("data", keep("stdout"));
    child.stderr.on("data", keep("stderr"));
    const finish = (exitCode: number | null, signal: string | null, error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      const stderr = Buffer.concat(output.stderr).toString("utf8");
      resolve({
        status: timedOut ? "timed_out" : exitCode === 0 && error === undefined ? "succeeded" : "failed",
        exit_code: exitCode,
        signal,
        duration_ms: Date.now() - started,
        stdout: Buffer.concat(output.stdout).toString("utf8"),
        stderr: error === undefined ? stderr : `${stderr}${error.message}`,
        truncated: output.truncated,
      });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    child.once("error", (err) => finish(null, null, err));
    child.once("exit", (code, signal) => {
      const drained = setTimeout(() => finish(code, signal), DRAIN_MS);
      child.once("close", () => {
        clearTimeout(drained);
        finish(code, signal);
      });
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch (err) {
    // ESRCH: the group is already gone.
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}
