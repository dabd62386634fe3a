import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { HostMetrics, type HostMetricsOptions } from "../collector/receivers/hostmetrics.js";
import { parsePidStat } from "../collector/receivers/procfs.js";
import { SampleKind, type Series } from "../proto/batch.js";
import { waitFor } from "./helpers/wait.js";

const noBatcher = { add: async () => {} };

function hostMetrics(options: Partial<HostMetricsOptions>): HostMetrics {
  return new HostMetrics({
    batcher: noBatcher,
    tenant: "acme",
    intervalMs: 60_000,
    mountPoints: [],
    processes: [],
    ...options,
  });
}

/** The value of the one series named `name` whose labels include `labels`. */
function value(series: Series[], name: string, labels: Record<string, string> = {}): number {
  const found = series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(found.length, 1, `one ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]!.points[0]!.value;
}

/** /proc/<pid>/stat with the given values in fields 14 (utime), 15 (stime), 20 (threads), 22 (start) and 23 (vsize). */
function pidStat(
  pid: number,
  comm: string,
  f: { utime: number; stime: number; threads: number; start: number; vsize: number },
): string {
  return `${pid} (${comm}) S 1 ${pid} ${pid} 0 -1 4194560 100 0 0 0 ${f.utime} ${f.stime} 0 0 20 0 ${f.threads} 0 ${f.start} ${f.vsize} 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n`;
}

function fixture(): {
  root: string;
  pidfile: string;
  proc: (pid: number, comm: string, cmdline: string[], rssKb: number, f: Parameters<typeof pidStat>[2]) => void;
} {
  const root = mkdtempSync(join(tmpdir(), "bifrost-proc-"));
  mkdirSync(join(root, "net"));
  writeFileSync(
    join(root, "stat"),
    [
      "cpu  300 2 100 1000 10 1 5 4 6 7",
      "cpu0 150 2 50 500 5 1 3 4 6 7",
      "cpu1 150 0 50 500 5 0 2 0 0 0",
      "intr 12345 1 2 3",
      "ctxt 999",
      "btime 1700000000",
      "processes 4242",
      "procs_running 3",
      "procs_blocked 1",
      "softirq 10 1 2",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(root, "meminfo"),
    "MemTotal:       16384 kB\nMemFree:         4096 kB\nMemAvailable:    8192 kB\nActive(anon):     100 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n",
  );
  writeFileSync(join(root, "loadavg"), "0.50 1.25 2.00 3/400 1234\n");
  writeFileSync(
    join(root, "diskstats"),
    [
      "   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
      " 253       0 vda 1000 10 20000 500 2000 20 40000 1500 2 1800 2100 5 0 80 3 7 9",
      " 253       1 vda1 900 10 18000 450 1900 20 38000 1400 0 1700 2000 0 0 0 0 0 0",
      "   8       0 sda 10 0 16 4 0 0 0 0 0 8 4",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(root, "net", "dev"),
    [
      "Inter-|   Receive                                                |  Transmit",
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
      "    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0",
      "  eth0:123456789 1000 3 4 0 0 0 5 987654 900 1 2 0 0 0 0",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(root, "mounts"),
    "/dev/vda / ext4 rw,relatime 0 0\ntmpfs /data tmpfs rw 0 0\n/dev/vdb /data\\040disk xfs ro,relatime 0 0\n",
  );
  const pidfile = join(root, "app.pid");
  const proc = (pid: number, comm: string, cmdline: string[], rssKb: number, f: Parameters<typeof pidStat>[2]) => {
    const dir = join(root, String(pid));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "stat"), pidStat(pid, comm, f));
    writeFileSync(join(dir, "cmdline"), cmdline.map((arg) => `${arg}\0`).join(""));
    writeFileSync(join(dir, "status"), `Name:\t${comm}\nVmRSS:\t  ${rssKb} kB\nThreads:\t${f.threads}\n`);
  };
  return { root, pidfile, proc };
}

describe("host metrics", () => {
  it("reads /proc text into node_exporter's series with exact values", async () => {
    const { root } = fixture();
    const sizes: Record<
      string,
      { bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number }
    > = {
      "/": { bsize: 4096, blocks: 1000, bfree: 400, bavail: 300, files: 500, ffree: 200 },
      "/data disk": { bsize: 1024, blocks: 10, bfree: 5, bavail: 5, files: 7, ffree: 6 },
    };
    const series = await hostMetrics({
      procRoot: root,
      mountPoints: ["/", "/data disk"],
      statfs: async (path) => sizes[path]!,
    }).scrape(1_764_000_000_000);
    assert.ok(series.every((s) => s.points.length === 1 && s.points[0]!.timeUnixMs === 1_764_000_000_000));
    assert.equal(value(series, "node_cpu_seconds_total", { cpu: "0", mode: "user" }), 1.5);
    assert.equal(value(series, "node_cpu_seconds_total", { cpu: "0", mode: "nice" }), 0.02);
    assert.equal(value(series, "node_cpu_seconds_total", { cpu: "0", mode: "steal" }), 0.04);
    assert.equal(value(series, "node_cpu_seconds_total", { cpu: "1", mode: "idle" }), 5);
    assert.equal(value(series, "node_cpu_guest_seconds_total", { cpu: "0", mode: "nice" }), 0.07);
    assert.equal(
      series.filter((s) => s.name === "node_cpu_seconds_total").length,
      16,
      "per CPU and mode, without the total line",
    );
    assert.equal(series.find((s) => s.name === "node_cpu_seconds_total")!.kind, SampleKind.Counter);
    assert.deepEqual(
      [
        "node_context_switches_total",
        "node_forks_total",
        "node_intr_total",
        "node_boot_time_seconds",
        "node_procs_running",
        "node_procs_blocked",
      ].map((n) => value(series, n)),
      [999, 4242, 12345, 1_700_000_000, 3, 1],
    );
    assert.equal(value(series, "node_memory_MemTotal_bytes"), 16384 * 1024);
    assert.equal(value(series, "node_memory_MemAvailable_bytes"), 8192 * 1024);
    assert.equal(value(series, "node_memory_Active_anon_bytes"), 100 * 1024);
    assert.equal(value(series, "node_memory_HugePages_Total"), 0);
    assert.equal(value(series, "node_memory_Hugepagesize_bytes"), 2048 * 1024);
    assert.equal(series.find((s) => s.name === "node_memory_MemTotal_bytes")!.kind, SampleKind.Gauge);
    assert.deepEqual(
      ["node_load1", "node_load5", "node_load15"].map((n) => value(series, n)),
      [0.5, 1.25, 2],
    );

    assert.deepEqual(
      [...new Set(series.filter((s) => s.name.startsWith("node_disk_")).map((s) => s.labels["device"]))],
      ["vda", "sda"],
      "no loop devices or partitions",
    );
    assert.equal(value(series, "node_disk_read_bytes_total", { device: "vda" }), 20000 * 512);
    assert.equal(value(series, "node_disk_written_bytes_total", { device: "vda" }), 40000 * 512);
    assert.equal(value(series, "node_disk_read_time_seconds_total", { device: "vda" }), 0.5);
    assert.equal(value(series, "node_disk_io_time_seconds_total", { device: "vda" }), 1.8);
    assert.equal(value(series, "node_disk_io_time_weighted_seconds_total", { device: "vda" }), 2.1);
    assert.equal(value(series, "node_disk_io_now", { device: "vda" }), 2);
    assert.equal(value(series, "node_disk_discarded_sectors_total", { device: "vda" }), 80);
    assert.equal(value(series, "node_disk_flush_requests_time_seconds_total", { device: "vda" }), 0.009);
    assert.ok(
      !series.some((s) => s.name === "node_disk_discards_completed_total" && s.labels["device"] === "sda"),
      "an older kernel's shorter lines",
    );

    assert.equal(value(series, "node_network_receive_bytes_total", { device: "eth0" }), 123456789);
    assert.equal(value(series, "node_network_receive_errs_total", { device: "eth0" }), 3);
    assert.equal(value(series, "node_network_receive_drop_total", { device: "eth0" }), 4);
    assert.equal(value(series, "node_network_receive_multicast_total", { device: "eth0" }), 5);
    assert.equal(value(series, "node_network_transmit_bytes_total", { device: "eth0" }), 987654);
    assert.equal(value(series, "node_network_transmit_errs_total", { device: "eth0" }), 1);
    assert.equal(value(series, "node_network_transmit_packets_total", { device: "lo" }), 10);

    assert.equal(
      value(series, "node_filesystem_size_bytes", { mountpoint: "/", device: "/dev/vda", fstype: "ext4" }),
      4096 * 1000,
    );
    assert.equal(value(series, "node_filesystem_free_bytes", { mountpoint: "/" }), 4096 * 400);
    assert.equal(value(series, "node_filesystem_avail_bytes", { mountpoint: "/" }), 4096 * 300);
    assert.equal(value(series, "node_filesystem_files_free", { mountpoint: "/" }), 200);
    assert.equal(
      value(series, "node_filesystem_readonly", { mountpoint: "/data disk", fstype: "xfs" }),
      1,
      "the last mount at a point wins; octal escapes decoded",
    );
  });

  it("counts process groups by comm, pidfile and cmdline, keeping CPU counters monotonic as processes come and go", async () => {
    const { root, pidfile, proc } = fixture();
    const mib = 1 << 20;
    proc(100, "nginx", ["nginx: master process /usr/sbin/nginx"], 4000, {
      utime: 250,
      stime: 50,
      threads: 1,
      start: 5000,
      vsize: 100 * mib,
    });
    proc(101, "nginx", ["nginx: worker process"], 6000, {
      utime: 100,
      stime: 100,
      threads: 2,
      start: 5001,
      vsize: 100 * mib,
    });
    proc(200, "java", ["java", "-jar", "/opt/app.jar"], 500_000, {
      utime: 1000,
      stime: 200,
      threads: 30,
      start: 6000,
      vsize: 2048 * mib,
    });
    proc(300, "my (weird) name", ["x"], 0, { utime: 1, stime: 1, threads: 1, start: 1, vsize: 0 });
    writeFileSync(pidfile, "200\n");
    const metrics = hostMetrics({
      procRoot: root,
      processes: [
        { name: "nginx", match: { comm: "nginx" } },
        { name: "app", match: { pidfile } },
        { name: "jar", match: { cmdline: /-jar \/opt\/app\.jar/ } },
        { name: "weird", match: { comm: "my (weird) name", cmdline: /^x$/ } },
        { name: "ghost", match: { comm: "ghost" } },
      ],
    });
    let series = await metrics.scrape();
    const group = (groupname: string) => ({
      procs: value(series, "namedprocess_namegroup_num_procs", { groupname }),
      threads: value(series, "namedprocess_namegroup_num_threads", { groupname }),
      user: value(series, "namedprocess_namegroup_cpu_seconds_total", { groupname, mode: "user" }),
      system: value(series, "namedprocess_namegroup_cpu_seconds_total", { groupname, mode: "system" }),
      resident: value(series, "namedprocess_namegroup_memory_bytes", { groupname, memtype: "resident" }),
      virtual: value(series, "namedprocess_namegroup_memory_bytes", { groupname, memtype: "virtual" }),
    });
    assert.deepEqual(group("nginx"), {
      procs: 2,
      threads: 3,
      user: 3.5,
      system: 1.5,
      resident: 10_000 * 1024,
      virtual: 200 * mib,
    });
    assert.deepEqual(group("app"), {
      procs: 1,
      threads: 30,
      user: 10,
      system: 2,
      resident: 500_000 * 1024,
      virtual: 2048 * mib,
    });
    assert.equal(group("jar").procs, 0, "a process counts in the first group it matches");
    assert.equal(group("weird").procs, 1);
    assert.deepEqual(group("ghost"), { procs: 0, threads: 0, user: 0, system: 0, resident: 0, virtual: 0 });
    assert.equal(series.find((s) => s.name === "namedprocess_namegroup_cpu_seconds_total")!.kind, SampleKind.Counter);
    assert.equal(series.find((s) => s.name === "namedprocess_namegroup_num_procs")!.kind, SampleKind.Gauge);

    // The worker exits, the master works on, a new worker starts, and the app restarts under the same pid.
    rmSync(join(root, "101"), { recursive: true });
    proc(100, "nginx", ["nginx: master process /usr/sbin/nginx"], 4000, {
      utime: 300,
      stime: 50,
      threads: 1,
      start: 5000,
      vsize: 100 * mib,
    });
    proc(102, "nginx", ["nginx: worker process"], 6000, {
      utime: 10,
      stime: 0,
      threads: 2,
      start: 7000,
      vsize: 100 * mib,
    });
    proc(200, "java", ["java", "-jar", "/opt/app.jar"], 1000, {
      utime: 5,
      stime: 1,
      threads: 30,
      start: 9000,
      vsize: 2048 * mib,
    });
    series = await metrics.scrape();
    assert.deepEqual([group("nginx").procs, group("nginx").user, group("nginx").system], [2, 4.1, 1.5]);
    assert.deepEqual([group("app").procs, group("app").user, group("app").system], [1, 10.05, 2.01]);
    rmSync(pidfile);
    series = await metrics.scrape();
    assert.deepEqual([group("app").procs, group("app").user], [0, 10.05], "gone: no processes, the counter stays");
  });

  it("parses a command name with spaces and parentheses", () => {
    const stat = parsePidStat(pidStat(42, "a) b (c", { utime: 12, stime: 34, threads: 5, start: 99, vsize: 4096 }));
    assert.deepEqual(stat, {
      pid: 42,
      comm: "a) b (c",
      user: 0.12,
      system: 0.34,
      threads: 5,
      start: 99,
      virtualBytes: 4096,
    });
  });

  it("keeps per-CPU counters monotonic through a small step back, and takes a large one as a reset", async () => {
    const { root } = fixture();
    const metrics = hostMetrics({ procRoot: root });
    const idle = async () => value(await metrics.scrape(), "node_cpu_seconds_total", { cpu: "0", mode: "idle" });
    assert.equal(await idle(), 5);
    writeFileSync(join(root, "stat"), "cpu0 150 2 50 450 5 1 3 4 6 7\n");
    assert.equal(await idle(), 5, "0.5 s back is noise");
    writeFileSync(join(root, "stat"), "cpu0 150 2 50 10 5 1 3 4 6 7\n");
    assert.equal(await idle(), 0.1, "4.9 s back is a reset");
  });

  it("reports a source it cannot read and still sends the others", async () => {
    const { root } = fixture();
    rmSync(join(root, "diskstats"));
    const errors: string[] = [];
    const series = await hostMetrics({
      procRoot: root,
      mountPoints: ["/nowhere"],
      onError: (source) => errors.push(source),
    }).scrape();
    assert.deepEqual(errors, ["diskstats", "filesystem"]);
    assert.ok(series.some((s) => s.name === "node_load1"));
  });

  it("sends each scrape to the batcher as counter and gauge samples", async () => {
    const { root } = fixture();
    const sent: { tenant: string; series: Series[] }[] = [];
    let scrapes = 0;
    const metrics = hostMetrics({
      procRoot: root,
      tenant: "ops",
      intervalMs: 50,
      batcher: { add: async (tenant, data) => void sent.push({ tenant, series: data.series ?? [] }) },
      onScrape: () => scrapes++,
    });
    metrics.start();
    await waitFor("two scrapes sent", async () => sent.length >= 2);
    await metrics.stop();
    assert.equal(sent[0]!.tenant, "ops");
    assert.ok(scrapes >= 2);
    assert.equal(value(sent[0]!.series, "node_load5"), 1.25);
    assert.ok(sent[1]!.series[0]!.points[0]!.timeUnixMs >= sent[0]!.series[0]!.points[0]!.timeUnixMs);
  });

  it("reads this machine's /proc: sane, consistent values, and a busy child process that appears, uses CPU and goes away", async () => {
    const metrics = hostMetrics({
      mountPoints: ["/"],
      processes: [{ name: "busy", match: { cmdline: /-e for\(;;\)\{\}$/ } }],
    });
    const first = await metrics.scrape();
    const child = spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" });
    try {
      assert.ok(value(first, "node_memory_MemTotal_bytes") > 0);
      assert.ok(value(first, "node_memory_MemAvailable_bytes") <= value(first, "node_memory_MemTotal_bytes"));
      assert.ok(value(first, "node_load1") >= 0);
      assert.ok(value(first, "node_boot_time_seconds") < Date.now() / 1000);
      assert.ok(
        value(first, "node_filesystem_avail_bytes", { mountpoint: "/" }) <=
          value(first, "node_filesystem_size_bytes", { mountpoint: "/" }),
      );
      assert.ok(value(first, "node_network_receive_bytes_total", { device: "lo" }) >= 0);
      assert.equal(value(first, "namedprocess_namegroup_num_procs", { groupname: "busy" }), 0);

      let busy = 0;
      let latest: Series[] = [];
      await waitFor("the busy child counted", async () => {
        latest = await metrics.scrape();
        busy = value(latest, "namedprocess_namegroup_cpu_seconds_total", { groupname: "busy", mode: "user" });
        return value(latest, "namedprocess_namegroup_num_procs", { groupname: "busy" }) === 1 && busy >= 0.2;
      });
      assert.ok(
        value(latest, "namedprocess_namegroup_memory_bytes", { groupname: "busy", memtype: "resident" }) > 1 << 20,
      );
      const cpu = (series: Series[]) =>
        new Map(
          series
            .filter((s) => s.name === "node_cpu_seconds_total")
            .map((s) => [`${s.labels["cpu"]}/${s.labels["mode"]}`, s.points[0]!.value]),
        );
      const before = cpu(first);
      const after = cpu(latest);
      assert.ok(before.size >= 8);
      for (const [key, v] of before) assert.ok(after.get(key)! >= v, `${key} did not go back`);
      assert.ok(after.get(`0/user`)! + after.get(`0/system`)! >= before.get(`0/user`)! + before.get(`0/system`)!);
      await waitFor(
        "its CPU seconds growing",
        async () =>
          value(await metrics.scrape(), "namedprocess_namegroup_cpu_seconds_total", {
            groupname: "busy",
            mode: "user",
          }) > busy,
      );
    } finally {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
    const gone = await metrics.scrape();
    assert.equal(value(gone, "namedprocess_namegroup_num_procs", { groupname: "busy" }), 0);
    assert.ok(
      value(gone, "namedprocess_namegroup_cpu_seconds_total", { groupname: "busy", mode: "user" }) > 0.2,
      "the counter keeps what the process used",
    );
  });
});
