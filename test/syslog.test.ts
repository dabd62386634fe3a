import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { Registry } from "prom-client";
import { Batcher } from "../collector/buffer/batcher.js";
import { startCollector } from "../collector/index.js";
import { TenantRateLimiter } from "../common/rate-limit.js";
import type { SyslogListenerConfig } from "../collector/receivers/syslog/config.js";
import { startSyslog } from "../collector/receivers/syslog/listener.js";
import { Wal } from "../collector/buffer/wal.js";
import { configSchema, loadConfig } from "../config.js";
import { TenantLimits } from "../common/limits.js";
import { createLogger } from "../common/log.js";
import { createRegistry, exposition } from "../common/metrics.js";
import { decodeBatch } from "../proto/codec.js";
import { testPki } from "./helpers/certs.js";
import { startRsyslogd } from "./helpers/rsyslog.js";
import { freePort, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";
import { waitFor } from "./helpers/wait.js";

const run = promisify(execFile);
const LIMITS = { max_labels: 15, max_label_name_bytes: 64, max_label_value_bytes: 64, max_line_bytes: 4096 };

interface Got {
  labels: Record<string, string>;
  metadata: Record<string, string>;
  line: string;
  ns: bigint;
}

/** A listener's settings with the schema's defaults, as `collector.syslog` would give them. */
function listenerConfig(listen: string, settings: Record<string, unknown>): SyslogListenerConfig {
  return configSchema().parse({ collector: { syslog: [{ listen, ...settings }] } }).collector.syslog[0]!;
}

async function setup(
  listeners: Record<string, unknown>[],
  options: { walBytes?: number; maxPendingBytes?: number; rate?: number } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-syslog-"));
  const wal = Wal.open({
    dir: join(dir, "wal"),
    maxBytes: options.walBytes ?? 64 << 20,
    segmentBytes: options.walBytes ? 2 << 10 : 1 << 20,
    fsync: "never",
    whenFull: "block",
  });
  const batcher = new Batcher({
    node: { id: "edge-1", site: "", region: "" },
    wal,
    maxEntries: 10_000,
    maxBytes: 1 << 20,
    maxAgeMs: 5,
    maxBatchBytes: 3 << 20,
  });
  const configs = await Promise.all(listeners.map(async (l) => listenerConfig(`127.0.0.1:${await freePort()}`, l)));
  const registry = new Registry();
  const defaults = configSchema().parse({});
  const tenantLimits = new TenantLimits({
    ...defaults,
    collector: {
      ...defaults.collector,
      limits: { ...defaults.collector.limits, ...LIMITS, rate_entries_per_s: options.rate ?? 0 },
    },
  });
  const syslog = await startSyslog({
    listeners: configs,
    defaultTenant: "fake",
    batcher,
    limits: LIMITS,
    tenantLimits,
    rate: new TenantRateLimiter(tenantLimits),
    maxPendingBytes: options.maxPendingBytes ?? 1 << 20,
    registry,
  });
  const got = (): Got[] =>
    wal.read(1_000_000).flatMap((record) =>
      decodeBatch(record.payload).streams.flatMap((stream) =>
        stream.entries.map((e) => ({
          labels: { ...stream.labels },
          metadata: { ...e.metadata },
          line: e.line,
          ns: e.timeUnixNano,
        })),
      ),
    );
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const text = (await exposition(registry)).body;
    let total = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, "gm")))
      if (Object.entries(labels).every(([k, v]) => (m[1] ?? "").includes(`${k}="${v}"`))) total += Number(m[2]);
    return total;
  };
  return { dir, wal, syslog, ports: syslog.addresses.map((a) => a.port), got, metric };
}

const byLine = (got: Got[], line: string) => got.filter((g) => g.line === line);

// The real senders are Debian's (deploy/local/services.sh install); CI installs them, so there they must be.
const missing = ["/usr/sbin/rsyslogd", "/usr/bin/logger", "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"].filter(
  (path) => !existsSync(path),
);
const skip =
  missing.length > 0 && process.env["CI"] === undefined
    ? `${missing.join(", ")} missing: bash deploy/local/services.sh install rsyslog`
    : false;

describe("syslog input with real senders", { skip }, () => {
  it("logger: RFC 5424 and RFC 3164 over TCP (octet-counted and newline) and UDP, labels and structured data", async () => {
    const t = await setup([{ protocol: "tcp", labels: { job: "syslog" } }, { protocol: "udp" }]);
    try {
      const [tcp, udp] = t.ports as [number, number];
      const logger = (args: string[]) => run("logger", ["--server", "127.0.0.1", ...args]);
      await logger([
        "--port",
        String(tcp),
        "--tcp",
        "--octet-count",
        "--rfc5424",
        "-t",
        "app5424",
        "-p",
        "local3.warning",
        "--msgid",
        "M1",
        "--sd-id",
        "zoo@32473",
        "--sd-param",
        'tiger="hungry"',
        "--sd-param",
        'say="hi there"',
        "tcp octet 5424",
      ]);
      await logger([
        "--port",
        String(tcp),
        "--tcp",
        "--rfc3164",
        "-t",
        "app3164",
        "-p",
        "auth.err",
        "tcp newline 3164",
      ]);
      await logger(["--port", String(udp), "--udp", "--rfc5424", "-t", "udpapp", "-p", "daemon.info", "udp 5424"]);
      await logger(["--port", String(udp), "--udp", "--rfc3164", "-t", "udpold", "-p", "mail.debug", "udp 3164"]);
      await waitFor("four messages", () => t.got().length >= 4);
      const got = t.got();
      const [a] = byLine(got, "tcp octet 5424");
      assert.deepEqual(a?.labels, {
        job: "syslog",
        facility: "local3",
        severity: "warning",
        hostname: hostname(),
        app_name: "app5424",
        node: "edge-1",
      });
      assert.equal(a?.metadata["msg_id"], "M1");
      assert.equal(a?.metadata["sd_zoo_32473_tiger"], "hungry");
      assert.equal(a?.metadata["sd_zoo_32473_say"], "hi there");
      assert.ok(a?.metadata["proc_id"] === undefined || /^\d+$/.test(a.metadata["proc_id"]));
      assert.notEqual(a!.ns % 1_000_000_000n, 0n, "RFC 5424's sub-second time is the entry's");
      const [b] = byLine(got, "tcp newline 3164");
      assert.deepEqual(b?.labels, {
        job: "syslog",
        facility: "auth",
        severity: "err",
        hostname: hostname(),
        app_name: "app3164",
        node: "edge-1",
      });
      assert.equal(b!.ns % 1_000_000_000n, 0n, "RFC 3164's whole-second time is the entry's");
      assert.deepEqual(byLine(got, "udp 5424")[0]?.labels, {
        facility: "daemon",
        severity: "info",
        hostname: hostname(),
        app_name: "udpapp",
        node: "edge-1",
      });
      assert.deepEqual(byLine(got, "udp 3164")[0]?.labels.severity, "debug");
      assert.equal(await t.metric("bifrost_collector_syslog_messages_accepted_total", { protocol: "tcp" }), 2);
      assert.equal(await t.metric("bifrost_collector_syslog_messages_accepted_total", { protocol: "udp" }), 2);
    } finally {
      await t.syslog.stop();
    }
  });

  it("rsyslog forwards to each listener: TCP octet-counted RFC 5424, TCP newline RFC 3164, UDP both, and TLS (gtls)", async () => {
    const pki = testPki();
    const server = pki.issue("server", { commonName: "localhost", dns: ["localhost"], ips: ["127.0.0.1"] });
    // Each listener labels its streams: the RFC 5424 copies of a line keep rsyslog's timestamp and would otherwise be
    // one stream's exact duplicates, which the collector drops as Loki does.
    const t = await setup([
      { protocol: "tcp", labels: { listener: "tcp-5424" } },
      { protocol: "tcp", labels: { listener: "tcp-3164" } },
      { protocol: "udp", labels: { listener: "udp-5424" } },
      { protocol: "udp", labels: { listener: "udp-3164" } },
      {
        protocol: "tcp",
        tls: { enabled: true, cert_file: server.cert, key_file: server.key },
        labels: { listener: "tls" },
      },
    ]);
    const input = await freePort();
    const forward = (port: number, protocol: string, template: string, extra = "") =>
      `action(type="omfwd" target="127.0.0.1" port="${port}" protocol="${protocol}" template="${template}" ${extra})`;
    const [p5424, p3164, u5424, u3164, tls] = t.ports as [number, number, number, number, number];
    const rsyslog = await startRsyslogd(join(t.dir, "rsyslog"), [
      `global(DefaultNetstreamDriverCAFile="${pki.caCert}")`,
      `module(load="imtcp")`,
      `input(type="imtcp" port="${input}" address="127.0.0.1" ruleset="fwd")`,
      `ruleset(name="fwd") {`,
      forward(p5424, "tcp", "RSYSLOG_SyslogProtocol23Format", `TCP_Framing="octet-counted"`),
      forward(p3164, "tcp", "RSYSLOG_TraditionalForwardFormat"),
      forward(u5424, "udp", "RSYSLOG_SyslogProtocol23Format"),
      forward(u3164, "udp", "RSYSLOG_TraditionalForwardFormat"),
      forward(
        tls,
        "tcp",
        "RSYSLOG_SyslogProtocol23Format",
        `TCP_Framing="octet-counted" StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"`,
      ),
      `}`,
    ]);
    try {
      const lines = Array.from({ length: 20 }, (_, i) => `via rsyslog ${i} with  two spaces`);
      for (const line of lines)
        await run("logger", [
          "--server",
          "127.0.0.1",
          "--port",
          String(input),
          "--tcp",
          "--octet-count",
          "--rfc5424",
          "-t",
          "relayed",
          "-p",
          "user.notice",
          "--sd-id",
          "meta@1",
          "--sd-param",
          'k="v"',
          line,
        ]);
      await waitFor("every line at every listener", () => t.got().length >= lines.length * 5, 30_000).catch((err) => {
        throw new Error(`${(err as Error).message}: ${t.got().length} entries; rsyslogd: ${rsyslog.stderr()}`);
      });
      const got = t.got();
      for (const line of lines) {
        const copies = byLine(got, line);
        assert.equal(
          copies.length,
          5,
          `${line}: one copy per listener, got ${JSON.stringify(got.filter((g) => g.line.includes(line.slice(0, 14))).map((g) => [g.labels, g.line]))}`,
        );
        for (const copy of copies) {
          assert.equal(copy.labels.app_name, "relayed");
          assert.equal(copy.labels.severity, "notice");
          assert.equal(copy.labels.hostname, hostname());
        }
        assert.equal(
          copies.filter((c) => c.metadata["sd_meta_1_k"] === "v").length,
          3,
          "structured data over RFC 5424",
        );
      }
      assert.equal(await t.metric("bifrost_collector_syslog_messages_accepted_total", { protocol: "tls" }), 20);
    } finally {
      await rsyslog.stop();
      await t.syslog.stop();
    }
  });

  it("a TCP sender is backpressured, not dropped, while the disk buffer is full: rsyslog waits and delivers every line", async () => {
    const t = await setup([{ protocol: "tcp" }], { walBytes: 128 << 10, maxPendingBytes: 2 << 10 });
    const count = 6000;
    const lines = Array.from(
      { length: count },
      (_, i) => `line ${String(i).padStart(5, "0")} ${randomBytes(30).toString("hex")}`,
    );
    const inDir = join(t.dir, "in");
    const rsyslog = await startRsyslogd(join(t.dir, "rsyslog"), [
      `module(load="imfile" mode="inotify")`,
      `input(type="imfile" File="${inDir}/*.log" Tag="bp" ruleset="fwd")`,
      `ruleset(name="fwd") {`,
      `action(type="omfwd" target="127.0.0.1" port="${t.ports[0]}" protocol="tcp" template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted")`,
      `}`,
    ]);
    try {
      mkdirSync(inDir, { recursive: true });
      writeFileSync(join(inDir, "app.log"), lines.join("\n") + "\n");
      await waitFor(
        "the connection paused",
        async () => (await t.metric("bifrost_collector_syslog_connections_paused")) === 1,
        30_000,
      );
      const buffered = t.got().length;
      assert.ok(buffered > 0 && buffered < count, `${buffered} lines fit`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(t.got().length, buffered, "nothing more is taken while the buffer is full");
      // Play the shipper: deliver what is buffered and advance the cursor; the connection is read again.
      const delivered: string[] = [];
      await waitFor(
        "every line delivered",
        () => {
          const records = t.wal.read(1000);
          for (const record of records)
            for (const stream of decodeBatch(record.payload).streams)
              delivered.push(...stream.entries.map((e) => e.line));
          if (records.length > 0) t.wal.advance(records.at(-1)!.sequence);
          return delivered.length >= count;
        },
        60_000,
      );
      assert.deepEqual(delivered, lines, "every line once, in order");
      assert.equal(await t.metric("bifrost_collector_syslog_messages_rejected_total"), 0);
      assert.equal(await t.metric("bifrost_collector_syslog_connections_paused"), 0);
    } finally {
      await rsyslog.stop();
      await t.syslog.stop();
    }
  });
});

function tcpSend(port: number, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(data));
    socket.on("error", reject);
    socket.on("close", () => resolve());
  });
}

describe("syslog input limits", () => {
  it("cuts long messages, refuses over-limit labels and closes broken framing, each counted, and goes on", async () => {
    const t = await setup([{ protocol: "tcp", max_message_bytes: 512 }]);
    const port = t.ports[0]!;
    try {
      await tcpSend(port, `<13>1 - h app - - - ${"y".repeat(2000)}\n<13>1 - h app - - - after\n`);
      await tcpSend(port, `<13>1 - ${"h".repeat(100)} app - - - long hostname\n<13>1 - h app - - - fine\n`);
      await tcpSend(port, `12x <13>1 - h app - - - broken\n`);
      await waitFor("the good messages", () => t.got().length >= 3);
      const lines = t.got().map((g) => g.line);
      assert.equal(lines[0], "y".repeat(512 - "<13>1 - h app - - - ".length));
      assert.deepEqual(lines.slice(1), ["after", "fine"]);
      await waitFor(
        "counted",
        async () =>
          (await t.metric("bifrost_collector_syslog_connections_refused_total", { reason: "bad_framing" })) === 1,
      );
      assert.equal(await t.metric("bifrost_collector_syslog_messages_truncated_total"), 1);
      assert.equal(
        await t.metric("bifrost_collector_syslog_messages_rejected_total", { reason: "label_value_too_long" }),
        1,
      );
    } finally {
      await t.syslog.stop();
    }
  });

  it("refuses connections over max_connections, and drops UDP over the tenant's rate, counted", async () => {
    const t = await setup([{ protocol: "tcp", max_connections: 1 }, { protocol: "udp" }], { rate: 5 });
    const [tcp, udp] = t.ports as [number, number];
    try {
      const first = connect(tcp, "127.0.0.1");
      await new Promise((resolve) => first.once("connect", resolve));
      await waitFor("one connection", async () => (await t.metric("bifrost_collector_syslog_connections")) === 1);
      const second = connect(tcp, "127.0.0.1");
      second.on("error", () => {});
      await new Promise((resolve) => second.once("close", resolve));
      assert.equal(
        await t.metric("bifrost_collector_syslog_connections_refused_total", { reason: "too_many_connections" }),
        1,
      );
      first.destroy();
      const socket = createSocket("udp4");
      for (let i = 0; i < 200; i++) socket.send(`<13>1 - h app - - - udp ${i}`, udp, "127.0.0.1");
      await waitFor(
        "every datagram counted",
        async () =>
          (await t.metric("bifrost_collector_syslog_messages_accepted_total", { protocol: "udp" })) +
            (await t.metric("bifrost_collector_syslog_messages_rejected_total", {
              protocol: "udp",
              reason: "rate_limited",
            })) +
            (await t.metric("bifrost_collector_syslog_udp_receive_buffer_drops_total")) >=
          200,
      );
      socket.close();
      const accepted = await t.metric("bifrost_collector_syslog_messages_accepted_total", { protocol: "udp" });
      assert.ok(accepted >= 1 && accepted <= 60, `the burst of ten seconds' rate, then nothing: ${accepted}`);
    } finally {
      await t.syslog.stop();
    }
  });

  it("`bifrost collector` serves collector.syslog and shows it in /metrics", async () => {
    const port = await freePort();
    const config = loadConfig({
      env: {
        BIFROST_KAFKA__BROKERS: KAFKA_BROKERS.join(","),
        BIFROST_KAFKA__TOPIC: uniqueName("syslog"),
        BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${await freePort()}`,
        BIFROST_COLLECTOR__WAL__DIR: mkdtempSync(join(tmpdir(), "bifrost-syslog-role-")),
        BIFROST_COLLECTOR__OTLP__GRPC_ENABLED: "false",
      },
    });
    config.collector.syslog = [listenerConfig(`127.0.0.1:${port}`, { protocol: "tcp" })];
    const collector = await startCollector({
      config,
      log: createLogger("silent"),
      registry: createRegistry(),
      storeReadiness: () => null,
      storeMigrated: Promise.resolve(),
    });
    try {
      await tcpSend(port, "<13>1 - h app - - - through the collector\n");
      await waitFor("accepted", async () => {
        const text = await (await fetch(`${collector.address.url}/metrics`)).text();
        return (
          /bifrost_collector_syslog_messages_accepted_total\{protocol="tcp"\} 1/.test(text) &&
          /bifrost_collector_entries_accepted_total\{tenant="fake"\} 1/.test(text)
        );
      });
    } finally {
      await collector.stop();
    }
  });
});
