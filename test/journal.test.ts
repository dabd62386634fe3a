import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { Batcher } from "../collector/buffer/batcher.js";
import { startCollector } from "../collector/index.js";
import { JournalReader } from "../collector/receivers/journal/reader.js";
import { Wal } from "../collector/buffer/wal.js";
import { configSchema, loadConfig } from "../config.js";
import { createLogger } from "../common/log.js";
import { createRegistry } from "../common/metrics.js";
import { decodeBatch } from "../proto/codec.js";
import { freePort, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";
import { waitFor } from "./helpers/wait.js";

// Real journal files: CI has no running journald, so the entries are written in the journal export format and
// turned into journal files by Debian's systemd-journal-remote, then read by journalctl --directory as the
// collector reads any journal. Appending to the same file while journalctl follows it is what journald does.

const JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote";
const skip =
  !existsSync(JOURNAL_REMOTE) && process.env["CI"] === undefined
    ? "systemd-journal-remote missing: bash deploy/local/services.sh install"
    : false;
const BOOT = "0123456789abcdef0123456789abcdef";
const T0 = 1_764_000_000_000_000n;

type Fields = Record<string, string>;

/** One entry in the export format; a value with a newline is written in its binary form (LE64 length). */
function exportEntry(fields: Fields, seq: number): Buffer {
  const parts: Buffer[] = [];
  const all: Fields = {
    __REALTIME_TIMESTAMP: String(T0 + BigInt(seq) * 1000n),
    __MONOTONIC_TIMESTAMP: String(seq + 1),
    _BOOT_ID: BOOT,
    _HOSTNAME: "edge-7",
    _TRANSPORT: "journal",
    PRIORITY: "6",
    ...fields,
  };
  for (const [name, value] of Object.entries(all)) {
    if (!value.includes("\n")) parts.push(Buffer.from(`${name}=${value}\n`));
    else {
      const data = Buffer.from(value);
      const size = Buffer.alloc(8);
      size.writeBigUInt64LE(BigInt(data.length));
      parts.push(Buffer.from(`${name}\n`), size, data, Buffer.from("\n"));
    }
  }
  parts.push(Buffer.from("\n"));
  return Buffer.concat(parts);
}

let seq = 0;
/** Appends entries to the journal file in `dir` (created on first use). */
function writeJournal(dir: string, entries: Fields[]): void {
  mkdirSync(dir, { recursive: true });
  const input = join(dir, `..`, `export-${seq}.txt`);
  writeFileSync(input, Buffer.concat(entries.map((fields) => exportEntry(fields, seq++))));
  execFileSync(JOURNAL_REMOTE, [`--output=${join(dir, "remote.journal")}`, input], { stdio: "pipe" });
}

describe("systemd journal input", { skip }, () => {
  it("`bifrost collector` reads journal files: labels, structured metadata, entry time, a multi-line message, the matches filter", async () => {
    const root = mkdtempSync(join(tmpdir(), "bifrost-journal-role-"));
    const journalDir = join(root, "journal");
    writeJournal(journalDir, [
      {
        MESSAGE: "started",
        _SYSTEMD_UNIT: "edge-app.service",
        SYSLOG_IDENTIFIER: "edge-app",
        _PID: "42",
        _COMM: "app",
        PRIORITY: "3",
      },
      { MESSAGE: "line one\nline two", _SYSTEMD_UNIT: "edge-app.service", SYSLOG_IDENTIFIER: "edge-app", _PID: "42" },
      { MESSAGE: "not this unit", _SYSTEMD_UNIT: "other.service" },
      { MESSAGE: "kernel says", _TRANSPORT: "kernel", SYSLOG_IDENTIFIER: "kernel", PRIORITY: "4" },
    ]);
    const config = loadConfig({
      env: {
        BIFROST_KAFKA__BROKERS: KAFKA_BROKERS.join(","),
        BIFROST_KAFKA__TOPIC: uniqueName("journal"),
        BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${await freePort()}`,
        BIFROST_COLLECTOR__WAL__DIR: join(root, "wal"),
        BIFROST_COLLECTOR__OTLP__GRPC_ENABLED: "false",
        BIFROST_COLLECTOR__JOURNAL__ENABLED: "true",
        BIFROST_COLLECTOR__JOURNAL__DIRECTORY: journalDir,
        BIFROST_COLLECTOR__JOURNAL__MAX_AGE: "3650d",
        // The journal's entries are of a fixed time in the past, older than Loki's window (reject_old_samples).
        BIFROST_COLLECTOR__LIMITS__REJECT_OLD_SAMPLES: "false",
        BIFROST_COLLECTOR__JOURNAL__MATCHES: "_SYSTEMD_UNIT=edge-app.service + _TRANSPORT=kernel",
      },
    });
    const collector = await startCollector({
      config,
      log: createLogger("silent"),
      registry: createRegistry(),
      storeReadiness: () => null,
      storeMigrated: Promise.resolve(),
    });
    try {
      const metrics = async () => (await fetch(`${collector.address.url}/metrics`)).text();
      await waitFor("three entries accepted", async () =>
        /bifrost_collector_journal_entries_accepted_total 3\b/.test(await metrics()),
      );
    } finally {
      await collector.stop();
    }
    const wal = Wal.open({
      dir: join(root, "wal"),
      maxBytes: 1 << 30,
      segmentBytes: 1 << 20,
      fsync: "never",
      whenFull: "block",
    });
    const got = wal.read(100).flatMap((r) =>
      decodeBatch(r.payload).streams.flatMap((s) =>
        s.entries.map((e) => ({
          labels: { ...s.labels },
          metadata: { ...e.metadata },
          line: e.line,
          ns: e.timeUnixNano,
        })),
      ),
    );
    wal.close();
    assert.deepEqual(
      got.map((g) => g.line),
      ["started", "line one\nline two", "kernel says"],
    );
    assert.deepEqual(got[0]!.labels, {
      unit: "edge-app.service",
      hostname: "edge-7",
      level: "err",
      syslog_identifier: "edge-app",
      transport: "journal",
      // Loki's ingestion defaults: none of discover_service_name's labels, and the level label's level.
      service_name: "unknown_service",
      node: "local",
    });
    assert.deepEqual(got[0]!.metadata, { pid: "42", comm: "app", detected_level: "error" });
    assert.equal(got[0]!.ns, T0 * 1000n, "__REALTIME_TIMESTAMP, in nanoseconds");
    assert.deepEqual(
      { level: got[2]!.labels.level, transport: got[2]!.labels.transport, unit: got[2]!.labels.unit },
      { level: "warning", transport: "kernel", unit: undefined },
    );
  });

  it("follows entries appended while it runs, and resumes after a restart from the saved cursor: nothing lost, nothing twice", async () => {
    const root = mkdtempSync(join(tmpdir(), "bifrost-journal-"));
    const journalDir = join(root, "journal");
    const wal = Wal.open({
      dir: join(root, "wal"),
      maxBytes: 64 << 20,
      segmentBytes: 1 << 20,
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
    const config = configSchema().parse({
      collector: { journal: { enabled: true, directory: journalDir, max_age: "3650d" } },
    }).collector.journal;
    const start = () => {
      const reader = new JournalReader({
        config,
        cursorFile: join(root, "wal", "journal-cursor.json"),
        defaultTenant: "fake",
        batcher,
        limits: { max_labels: 30, max_label_name_bytes: 1024, max_label_value_bytes: 2048, max_line_bytes: 4096 },
        maxPendingBytes: 64 << 10,
        registry: new Registry(),
      });
      reader.start();
      return reader;
    };
    const lines = () =>
      wal.read(1_000_000).flatMap((r) => decodeBatch(r.payload).streams.flatMap((s) => s.entries.map((e) => e.line)));
    const batch = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => ({ MESSAGE: `entry ${from + i}`, _SYSTEMD_UNIT: "app.service" }));

    writeJournal(journalDir, batch(0, 300));
    let reader = start();
    await waitFor("the first 300", () => lines().length >= 300);
    writeJournal(journalDir, batch(300, 400));
    await waitFor("the appended 100", () => lines().length >= 400);
    await reader.stop();
    writeJournal(journalDir, batch(400, 600));
    reader = start();
    await waitFor("the 200 written while stopped", () => lines().length >= 600);
    writeJournal(journalDir, batch(600, 650));
    await waitFor("50 more", () => lines().length >= 650);
    await reader.stop();
    reader = start();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await reader.stop();
    assert.deepEqual(
      lines(),
      batch(0, 650).map((f) => f.MESSAGE),
      "every entry once, in order, across restarts",
    );
    wal.close();
  });
});
