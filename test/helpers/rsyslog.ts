import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "./wait.js";

// Debian's rsyslogd in the foreground with a configuration, work directory and pid file of its own (no system
// inputs: only what `config` loads), as the tests' and benchmarks' real syslog peer.

export interface Rsyslogd {
  pid: number;
  dir: string;
  /** What rsyslogd wrote to stderr so far (the last 4 KB), for failure messages. */
  stderr(): string;
  stop(): Promise<void>;
}

export async function startRsyslogd(dir: string, config: string[]): Promise<Rsyslogd> {
  mkdirSync(join(dir, "work"), { recursive: true });
  const conf = join(dir, "rsyslog.conf");
  writeFileSync(
    conf,
    [`global(workDirectory="${join(dir, "work")}" maxMessageSize="64k")`, ...config].join("\n") + "\n",
  );
  const pidFile = join(dir, "rsyslogd.pid");
  const child = spawn("rsyslogd", ["-n", "-f", conf, "-i", pidFile], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // rsyslogd has no readiness endpoint: it is set up once it has written its pid file.
  await waitFor("rsyslogd's pid file", () => {
    if (child.exitCode !== null) throw new Error(`rsyslogd exited during start: ${stderr}`);
    try {
      return readFileSync(pidFile, "utf8").trim() === String(child.pid);
    } catch {
      return false;
    }
  });
  return {
    pid: child.pid!,
    dir,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
