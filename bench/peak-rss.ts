import { readFileSync, writeFileSync } from "node:fs";

// A process's peak RSS over one phase of a bench: reset the high-water mark, run the phase, read it.

/** The peak RSS since the last reset (VmHWM), in MiB. */
export function peakRssMib(pid: number | "self" = "self"): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) / 1024;
}

/** Resets the peak RSS to the current RSS ("5" in clear_refs, Linux 4.0+; the process must be ours). */
export function resetPeakRss(pid: number | "self" = "self"): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}
