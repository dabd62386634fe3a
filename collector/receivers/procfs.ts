import { SampleKind } from "../../proto/batch.js";
import { labelsOf, type Labels } from "../../proto/labels.js";

// Parsers for the /proc files the host metrics read, producing the series node_exporter produces from them,
// with its names, labels and units (seconds, bytes). Each takes the file's text, so fixtures test them exactly.

export interface Sample {
  name: string;
  labels: Labels;
  kind: SampleKind;
  value: number;
}

/** Clock ticks per second of /proc's CPU times: USER_HZ, 100 on every Linux ABI (procfs and node_exporter assume it too). */
export const USER_HZ = 100;

const counter = (name: string, value: number, labels: [string, string][] = []): Sample => ({
  name,
  labels: labelsOf(labels),
  kind: SampleKind.Counter,
  value,
});
const gauge = (name: string, value: number, labels: [string, string][] = []): Sample => ({
  name,
  labels: labelsOf(labels),
  kind: SampleKind.Gauge,
  value,
});

const CPU_MODES = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"] as const;

/** /proc/stat: per-CPU time by mode, context switches, forks, interrupts, boot time, running and blocked processes. */
export function parseStat(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const [key, ...fields] = line.trim().split(/\s+/);
    const values = fields.map(Number);
    if (key === undefined) continue;
    if (/^cpu\d+$/.test(key)) {
      const cpu = key.slice(3);
      CPU_MODES.forEach((mode, i) => {
        if (values[i] !== undefined)
          out.push(
            counter("node_cpu_seconds_total", values[i]! / USER_HZ, [
              ["cpu", cpu],
              ["mode", mode],
            ]),
          );
      });
      if (values[8] !== undefined)
        out.push(
          counter("node_cpu_guest_seconds_total", values[8] / USER_HZ, [
            ["cpu", cpu],
            ["mode", "user"],
          ]),
        );
      if (values[9] !== undefined)
        out.push(
          counter("node_cpu_guest_seconds_total", values[9] / USER_HZ, [
            ["cpu", cpu],
            ["mode", "nice"],
          ]),
        );
    } else if (key === "ctxt") out.push(counter("node_context_switches_total", values[0]!));
    else if (key === "processes") out.push(counter("node_forks_total", values[0]!));
    else if (key === "intr") out.push(counter("node_intr_total", values[0]!));
    else if (key === "btime") out.push(gauge("node_boot_time_seconds", values[0]!));
    else if (key === "procs_running") out.push(gauge("node_procs_running", values[0]!));
    else if (key === "procs_blocked") out.push(gauge("node_procs_blocked", values[0]!));
  }
  return out;
}

/** /proc/meminfo: `node_memory_<Field>_bytes` for fields in kB, `node_memory_<Field>` for counts; `(x)` becomes `_x`. */
export function parseMeminfo(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const match = /^([^:]+):\s+(\d+)(?:\s+(kB))?\s*$/.exec(line);
    if (!match) continue;
    const field = match[1]!.replace(/\((.*)\)/, "_$1");
    out.push(
      match[3]
        ? gauge(`node_memory_${field}_bytes`, Number(match[2]) * 1024)
        : gauge(`node_memory_${field}`, Number(match[2])),
    );
  }
  return out;
}

/** /proc/loadavg. */
export function parseLoadavg(text: string): Sample[] {
  const [one, five, fifteen] = text.trim().split(/\s+/).map(Number);
  if (![one, five, fifteen].every((v) => Number.isFinite(v)))
    throw new Error(`unexpected /proc/loadavg: ${text.slice(0, 100)}`);
  return [gauge("node_load1", one!), gauge("node_load5", five!), gauge("node_load15", fifteen!)];
}

/** node_exporter's default --collector.diskstats.device-exclude: RAM disks, loop devices and partitions. */
export const DISK_EXCLUDE = /^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$/;
const SECTOR_BYTES = 512;

/** /proc/diskstats, fields as in the kernel's Documentation/admin-guide/iostats.rst (times in ms). */
export function parseDiskstats(text: string, exclude: RegExp = DISK_EXCLUDE): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 14) continue;
    const device = parts[2]!;
    if (exclude.test(device)) continue;
    const f = parts.slice(3).map(Number);
    const labels: [string, string][] = [["device", device]];
    out.push(
      counter("node_disk_reads_completed_total", f[0]!, labels),
      counter("node_disk_reads_merged_total", f[1]!, labels),
      counter("node_disk_read_bytes_total", f[2]! * SECTOR_BYTES, labels),
      counter("node_disk_read_time_seconds_total", f[3]! / 1000, labels),
      counter("node_disk_writes_completed_total", f[4]!, labels),
      counter("node_disk_writes_merged_total", f[5]!, labels),
      counter("node_disk_written_bytes_total", f[6]! * SECTOR_BYTES, labels),
      counter("node_disk_write_time_seconds_total", f[7]! / 1000, labels),
      gauge("node_disk_io_now", f[8]!, labels),
      counter("node_disk_io_time_seconds_total", f[9]! / 1000, labels),
      counter("node_disk_io_time_weighted_seconds_total", f[10]! / 1000, labels),
    );
    if (f.length >= 15) {
      out.push(
        counter("node_disk_discards_completed_total", f[11]!, labels),
        counter("node_disk_discards_merged_total", f[12]!, labels),
        counter("node_disk_discarded_sectors_total", f[13]!, labels),
        counter("node_disk_discard_time_seconds_total", f[14]! / 1000, labels),
      );
    }
    if (f.length >= 17) {
      out.push(
        counter("node_disk_flush_requests_total", f[15]!, labels),
        counter("node_disk_flush_requests_time_seconds_total", f[16]! / 1000, labels),
      );
    }
  }
  return out;
}

const NETDEV_FIELDS = [
  "receive_bytes",
  "receive_packets",
  "receive_errs",
  "receive_drop",
  "receive_fifo",
  "receive_frame",
  "receive_compressed",
  "receive_multicast",
  "transmit_bytes",
  "transmit_packets",
  "transmit_errs",
  "transmit_drop",
  "transmit_fifo",
  "transmit_colls",
  "transmit_carrier",
  "transmit_compressed",
];

/** /proc/net/dev: `node_network_<direction>_<field>_total{device}`. */
export function parseNetDev(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const device = line.slice(0, colon).trim();
    const values = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (device === "" || values.length < NETDEV_FIELDS.length || values.some((v) => !Number.isFinite(v))) continue;
    NETDEV_FIELDS.forEach((field, i) =>
      out.push(counter(`node_network_${field}_total`, values[i]!, [["device", device]])),
    );
  }
  return out;
}

export interface Mount {
  device: string;
  fstype: string;
  readonly: boolean;
}

/** /proc/mounts (or /proc/self/mounts): the last mount at each mount point is the visible one. */
export function parseMounts(text: string): Map<string, Mount> {
  const unescape = (field: string) =>
    field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
  const mounts = new Map<string, Mount>();
  for (const line of text.split("\n")) {
    const [device, mountpoint, fstype, options] = line.split(" ");
    if (!device || !mountpoint || !fstype) continue;
    mounts.set(unescape(mountpoint), {
      device: unescape(device),
      fstype,
      readonly: (options ?? "").split(",").includes("ro"),
    });
  }
  return mounts;
}

export interface ProcStat {
  pid: number;
  comm: string;
  /** CPU seconds in user and kernel mode. */
  user: number;
  system: number;
  threads: number;
  /** Start time in clock ticks after boot: with the pid, it tells a process from a later one with the same pid. */
  start: number;
  virtualBytes: number;
}

/** /proc/<pid>/stat; the command name is in parentheses and may itself contain spaces and parentheses. */
export function parsePidStat(text: string): ProcStat {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) throw new Error(`unexpected /proc/<pid>/stat: ${text.slice(0, 100)}`);
  // Fields from the third on (state), so field n of proc(5) is rest[n - 3].
  const rest = text
    .slice(close + 2)
    .trim()
    .split(/\s+/)
    .map(Number);
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    user: rest[11]! / USER_HZ,
    system: rest[12]! / USER_HZ,
    threads: rest[17]!,
    start: rest[19]!,
    virtualBytes: rest[20]!,
  };
}

/** Resident memory from /proc/<pid>/status (VmRSS, kB); kernel threads have none. */
export function parseStatusRss(text: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return match ? Number(match[1]) * 1024 : 0;
}
