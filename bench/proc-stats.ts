import { readFileSync } from "node:fs";

const CLK_TCK = 100;

export interface ProcStats {
  cpuSeconds: number;
  rssBytes: number;
  peakRssBytes: number;
}

/** CPU seconds (user and system) and memory of one process, from /proc: the measured process only. */
export function procStats(pid: number): ProcStats {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)![1]) * 1024;
  return {
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLK_TCK,
    rssBytes: kib("VmRSS"),
    peakRssBytes: kib("VmHWM"),
  };
}
