import { readdir, readFile, statfs } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../common/log.js";
import { SampleKind, type Series } from "../../proto/batch.js";
import { labelsOf } from "../../proto/labels.js";
import type { Batcher } from "../buffer/batcher.js";
import { WalFullError } from "../buffer/wal.js";
import {
  parseDiskstats,
  parseLoadavg,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parsePidStat,
  parseStat,
  parseStatusRss,
  type ProcStat,
  type Sample,
} from "./procfs.js";

// Host metrics read from /proc every interval, named as node_exporter names them, and per-process metrics
// for configured groups of processes named as process-exporter names them, so that dashboards and rules
// written for those exporters work unchanged. The self-healing rules act on the process groups: a service's
// CPU running away (rate of namedprocess_namegroup_cpu_seconds_total) or the service gone
// (namedprocess_namegroup_num_procs == 0; every configured group is sent, with or without processes).

export interface ProcessGroup {
  name: string;
  /** A process belongs to the first group whose every given condition holds. */
  match: { comm?: string; cmdline?: RegExp; pidfile?: string };
}

export interface HostMetricsOptions {
  batcher: Pick<Batcher, "add">;
  tenant: string;
  intervalMs: number;
  mountPoints: string[];
  processes: ProcessGroup[];
  /** Where procfs is mounted (a fixture directory in tests). */
  procRoot?: string;
  /** fs.statfs; replaceable so that fixtures can give exact file system sizes. */
  statfs?: (
    path: string,
  ) => Promise<{ bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number }>;
  log?: Logger;
  onScrape?: () => void;
  /** A source that could not be read this time (`stat`, `meminfo`, ..., `processes`), or `buffer_full`. */
  onError?: (source: string) => void;
}

/** A CPU counter going back by less than this is kernel accounting noise, not a reset (node_exporter's rule). */
const CPU_JUMP_BACK_SECONDS = 3;

interface GroupState {
  user: number;
  system: number;
  /** CPU seconds of each live process at the last scrape, by pid and start time. */
  seen: Map<string, { user: number; system: number }>;
}

export class HostMetrics {
  private readonly root: string;
  private readonly cpu = new Map<string, number>();
  private readonly groups = new Map<string, GroupState>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: HostMetricsOptions) {
    this.root = options.procRoot ?? "/proc";
    for (const group of options.processes) this.groups.set(group.name, { user: 0, system: 0, seen: new Map() });
  }

  start(): void {
    const tick = () => {
      this.running = this.scrapeAndSend().finally(() => {
        this.running = undefined;
      });
    };
    tick();
    this.timer = setInterval(() => this.running ?? tick(), this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async scrapeAndSend(): Promise<void> {
    const series = await this.scrape();
    try {
      await this.options.batcher.add(this.options.tenant, { series });
    } catch (err) {
      // Counters carry their totals, so the next scrape makes up for one not buffered.
      this.options.onError?.(err instanceof WalFullError ? "buffer_full" : "batcher");
      if (!(err instanceof WalFullError)) this.options.log?.error({ err }, "the batcher refused host metrics");
    }
  }

  /** Reads every source once; a source that fails is reported and left out, the others still count. */
  async scrape(now = Date.now()): Promise<Series[]> {
    const samples: Sample[] = [];
    const read = async (source: string, produce: () => Promise<Sample[]>) => {
      try {
        samples.push(...(await produce()));
      } catch (err) {
        this.options.onError?.(source);
        this.options.log?.warn({ err, source }, "cannot read a host metrics source");
      }
    };
    const text = (file: string) => readFile(join(this.root, file), "utf8");
    await read("stat", async () => this.monotonicCpu(parseStat(await text("stat"))));
    await read("meminfo", async () => parseMeminfo(await text("meminfo")));
    await read("loadavg", async () => parseLoadavg(await text("loadavg")));
    await read("diskstats", async () => parseDiskstats(await text("diskstats")));
    await read("netdev", async () => parseNetDev(await text("net/dev")));
    if (this.options.mountPoints.length > 0)
      await read("filesystem", async () => this.filesystems(await text("mounts")));
    if (this.options.processes.length > 0) await read("processes", () => this.processGroups());
    this.options.onScrape?.();
    return samples.map((s) => ({
      name: s.name,
      labels: s.labels,
      kind: s.kind,
      points: [{ timeUnixMs: now, value: s.value }],
    }));
  }

  /** Keeps node_cpu_seconds_total monotonic: idle and iowait may step back a little on some kernels. */
  private monotonicCpu(samples: Sample[]): Sample[] {
    return samples.map((sample) => {
      if (sample.name !== "node_cpu_seconds_total") return sample;
      const key = `${sample.labels["cpu"]}/${sample.labels["mode"]}`;
      const last = this.cpu.get(key);
      const value =
        last !== undefined && sample.value < last && last - sample.value < CPU_JUMP_BACK_SECONDS ? last : sample.value;
      this.cpu.set(key, value);
      return { ...sample, value };
    });
  }

  private async filesystems(mountsText: string): Promise<Sample[]> {
    const mounts = parseMounts(mountsText);
    const statOf = this.options.statfs ?? ((path: string) => statfs(path));
    const out: Sample[] = [];
    for (const mountpoint of this.options.mountPoints) {
      const mount = mounts.get(mountpoint);
      if (!mount) throw new Error(`${mountpoint} is not a mount point`);
      const fs = await statOf(mountpoint);
      const labels = labelsOf([
        ["device", mount.device],
        ["fstype", mount.fstype],
        ["mountpoint", mountpoint],
      ]);
      const g = (name: string, value: number): Sample => ({ name, labels, kind: SampleKind.Gauge, value });
      out.push(
        g("node_filesystem_size_bytes", fs.blocks * fs.bsize),
        g("node_filesystem_free_bytes", fs.bfree * fs.bsize),
        g("node_filesystem_avail_bytes", fs.bavail * fs.bsize),
        g("node_filesystem_files", fs.files),
        g("node_filesystem_files_free", fs.ffree),
        g("node_filesystem_readonly", mount.readonly ? 1 : 0),
      );
    }
    return out;
  }

  private async processGroups(): Promise<Sample[]> {
    const pidfiles = new Map<string, number | undefined>();
    for (const group of this.options.processes) {
      const file = group.match.pidfile;
      if (file === undefined || pidfiles.has(file)) continue;
      const pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
      pidfiles.set(file, Number.isInteger(pid) && pid > 0 ? pid : undefined);
    }
    const members = new Map<string, { stat: ProcStat; rss: number }[]>(this.options.processes.map((g) => [g.name, []]));
    for (const name of await readdir(this.root)) {
      if (!/^\d+$/.test(name)) continue;
      // A process may exit between readdir and any read: it is then simply not counted.
      let stat: ProcStat;
      try {
        stat = parsePidStat(await readFile(join(this.root, name, "stat"), "utf8"));
      } catch {
        continue;
      }
      let cmdline: string | undefined;
      let group: ProcessGroup | undefined;
      for (const candidate of this.options.processes) {
        const { comm, cmdline: pattern, pidfile } = candidate.match;
        if (comm !== undefined && stat.comm !== comm) continue;
        if (pidfile !== undefined && pidfiles.get(pidfile) !== stat.pid) continue;
        if (pattern !== undefined) {
          cmdline ??= await readFile(join(this.root, name, "cmdline"), "utf8")
            .then((raw) => raw.replace(/\0+$/, "").replaceAll("\0", " "))
            .catch(() => "");
          if (!pattern.test(cmdline)) continue;
        }
        group = candidate;
        break;
      }
      if (!group) continue;
      const rss = await readFile(join(this.root, name, "status"), "utf8").then(parseStatusRss, () => 0);
      members.get(group.name)!.push({ stat, rss });
    }
    const out: Sample[] = [];
    for (const [groupname, procs] of members) {
      const state = this.groups.get(groupname)!;
      // The group's CPU counter only grows: each process adds what it used since the last scrape (all of it
      // when first seen), and a process that exits takes nothing away.
      const seen = new Map<string, { user: number; system: number }>();
      for (const { stat } of procs) {
        const key = `${stat.pid}/${stat.start}`;
        const before = state.seen.get(key) ?? { user: 0, system: 0 };
        state.user += Math.max(0, stat.user - before.user);
        state.system += Math.max(0, stat.system - before.system);
        seen.set(key, { user: stat.user, system: stat.system });
      }
      state.seen = seen;
      const labels = (...more: [string, string][]) => labelsOf([["groupname", groupname], ...more]);
      out.push(
        { name: "namedprocess_namegroup_num_procs", labels: labels(), kind: SampleKind.Gauge, value: procs.length },
        {
          name: "namedprocess_namegroup_num_threads",
          labels: labels(),
          kind: SampleKind.Gauge,
          value: procs.reduce((n, p) => n + p.stat.threads, 0),
        },
        {
          name: "namedprocess_namegroup_cpu_seconds_total",
          labels: labels(["mode", "user"]),
          kind: SampleKind.Counter,
          value: round(state.user),
        },
        {
          name: "namedprocess_namegroup_cpu_seconds_total",
          labels: labels(["mode", "system"]),
          kind: SampleKind.Counter,
          value: round(state.system),
        },
        {
          name: "namedprocess_namegroup_memory_bytes",
          labels: labels(["memtype", "resident"]),
          kind: SampleKind.Gauge,
          value: procs.reduce((n, p) => n + p.rss, 0),
        },
        {
          name: "namedprocess_namegroup_memory_bytes",
          labels: labels(["memtype", "virtual"]),
          kind: SampleKind.Gauge,
          value: procs.reduce((n, p) => n + p.stat.virtualBytes, 0),
        },
      );
    }
    return out;
  }
}

/** Sums of tick fractions (0.01 s) gather float noise; the counters are exact to the tick. */
function round(seconds: number): number {
  return Math.round(seconds * 100) / 100;
}
