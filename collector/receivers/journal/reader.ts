import { type ChildProcessByStdio, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { Counter, Gauge, type Registry } from "prom-client";
import type { TenantLimits } from "../../../common/limits.js";
import type { Logger } from "../../../common/log.js";
import { type LogEntry } from "../../../proto/batch.js";
import { labelsOf, type Labels, NO_LABELS } from "../../../proto/labels.js";
import type { BatchLimits } from "../../../proto/validate.js";
import type { Batcher } from "../../buffer/batcher.js";
import { type IntakeLimits, OrderedIntake, screen, StreamGroups } from "../intake.js";
import type { TenantRateLimiter } from "../../../common/rate-limit.js";
import { writeFileAtomic } from "../../../common/atomic-file.js";
import { SEVERITIES } from "../syslog/parse.js";
import { type JournalConfig, JOURNAL_LABEL_FIELDS } from "./config.js";

// The systemd journal, read as Promtail's journal target reads it but through journalctl, the interface
// systemd keeps stable (no maintained Node binding of sd-journal exists): `journalctl --output=json --all
// --follow`, started after the saved cursor, or from `max_age` ago when there is none. journalctl writes
// each entry as one JSON line with its __CURSOR; the cursor moves, and is saved (atomically, at most once a
// second and at stop), only once the disk buffer has the entries before it. A clean restart resumes exactly
// after the last entry delivered: nothing lost, nothing read twice; after a crash at most the last second's
// entries are read again. While the disk buffer is full, journalctl's output is not read, so journalctl
// waits on its pipe and nothing is dropped. If journalctl exits, it is started again after the last entry read.

export interface JournalOptions {
  config: JournalConfig;
  cursorFile: string;
  defaultTenant: string;
  batcher: Pick<Batcher, "add" | "flush">;
  limits: BatchLimits;
  tenantLimits?: TenantLimits | undefined;
  contract?: IntakeLimits["contract"];
  rate?: TenantRateLimiter | undefined;
  maxPendingBytes: number;
  registry: Registry;
  log?: Logger | undefined;
  onAccepted?: (tenant: string, entries: number) => void;
}

const CURSOR_VERSION = 1;
const SAVE_MS = 1000;
const RESTART_MS = [1000, 2000, 5000, 10_000, 30_000];

function journalMetrics(registry: Registry) {
  return {
    accepted: new Counter({
      name: "bifrost_collector_journal_entries_accepted_total",
      help: "Journal entries in the disk buffer.",
      registers: [registry],
    }),
    rejected: new Counter({
      name: "bifrost_collector_journal_entries_rejected_total",
      help: "Journal entries refused, by reason (a broken limit, or not_json for output journalctl should not write).",
      labelNames: ["reason"],
      registers: [registry],
    }),
    paused: new Gauge({
      name: "bifrost_collector_journal_paused",
      help: "1 while the journal is not read because the disk buffer is full or the tenant is over its rate.",
      registers: [registry],
    }),
    restarts: new Counter({
      name: "bifrost_collector_journal_restarts_total",
      help: "Times journalctl exited and was started again.",
      registers: [registry],
    }),
  };
}

/** A journal field's value in journalctl's JSON: a string, bytes as an array of numbers, or several of those. */
function fieldText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (!Array.isArray(value) || value.length === 0) return undefined;
  if (typeof value[0] === "number") return Buffer.from(value as number[]).toString("utf8");
  return fieldText(value[0]);
}

/** A metadata name from a journal field name: lower case, without leading underscores (_PID -> pid). */
const metadataName = (field: string) => field.replace(/^_+/, "").toLowerCase();

/** Reads the saved cursor; a missing or unreadable file means none. */
export function loadCursor(file: string): string | undefined {
  try {
    const doc = JSON.parse(readFileSync(file, "utf8")) as { version?: number; cursor?: unknown };
    return doc.version === CURSOR_VERSION && typeof doc.cursor === "string" ? doc.cursor : undefined;
  } catch {
    return undefined;
  }
}

export class JournalReader {
  private readonly metrics;
  private readonly intake: OrderedIntake<string>;
  private readonly tenant: string;
  private readonly labels: Labels;
  private readonly maxLineBytes: number;
  private child: ChildProcessByStdio<null, Readable, Readable> | undefined;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private skipping = false;
  /** The cursor of the last entry read (where journalctl starts again), and of the last one delivered. */
  private readCursor: string | undefined;
  private savedCursor: string | undefined;
  private deliveredCursor: string | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarts = 0;
  private stopped = false;
  private held = false;

  constructor(private readonly options: JournalOptions) {
    this.metrics = journalMetrics(options.registry);
    const { config } = options;
    this.tenant = config.tenant ?? options.defaultTenant;
    this.labels = labelsOf(Object.entries(config.labels));
    this.maxLineBytes = options.tenantLimits?.get(this.tenant, "max_line_bytes") ?? options.limits.max_line_bytes;
    this.readCursor = this.savedCursor = this.deliveredCursor = loadCursor(options.cursorFile);
    this.intake = new OrderedIntake<string>({
      tenant: this.tenant,
      batcher: options.batcher,
      rate: options.rate,
      maxPendingBytes: options.maxPendingBytes,
      hold: (hold) => {
        this.held = hold;
        if (hold) this.child?.stdout.pause();
        else this.child?.stdout.resume();
      },
      onWaiting: (waiting) => this.metrics.paused.set(waiting ? 1 : 0),
      onAccepted: (group) => {
        this.metrics.accepted.inc(group.entries);
        if (group.entries > 0) options.onAccepted?.(this.tenant, group.entries);
        this.deliveredCursor = group.mark;
        this.saveTimer ??= setTimeout(() => this.save(), SAVE_MS);
      },
      log: options.log,
    });
  }

  /** journalctl's arguments: its source, where to start, and the matches after `--`. */
  arguments(): string[] {
    const { config } = this.options;
    const args = ["--output=json", "--all", "--follow", "--no-tail", "--no-pager"];
    if (config.directory !== "") args.push(`--directory=${config.directory}`);
    if (this.readCursor !== undefined) args.push(`--after-cursor=${this.readCursor}`);
    else args.push(`--since=-${config.max_age}`);
    const matches = config.matches.trim();
    return matches === "" ? args : [...args, "--", ...matches.split(/\s+/)];
  }

  start(): void {
    if (this.stopped || this.child) return;
    const child = spawn(this.options.config.journalctl, this.arguments(), { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.partial = [];
    this.partialBytes = 0;
    this.skipping = false;
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.stdout.on("data", (chunk: Buffer) => this.read(chunk));
    if (this.held) child.stdout.pause();
    const exited = (reason: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.stopped) return;
      this.metrics.restarts.inc();
      const delay = RESTART_MS[Math.min(this.restarts++, RESTART_MS.length - 1)]!;
      this.options.log?.error(
        { reason, stderr: stderr.trim(), retryInMs: delay },
        "journalctl stopped; starting it again",
      );
      this.restartTimer = setTimeout(() => this.start(), delay);
    };
    child.on("error", (err) => exited(err.message));
    child.on("exit", (code, signal) => exited(`exit ${code ?? signal}`));
  }

  private read(chunk: Buffer): void {
    const groups = new StreamGroups();
    let cursor: string | undefined;
    for (let from = 0; ;) {
      const newline = chunk.indexOf(0x0a, from);
      const piece = chunk.subarray(from, newline < 0 ? chunk.length : newline);
      // A line is an entry of JSON-escaped fields: longer than twice the line limit plus room for the other
      // fields, it cannot pass, and is skipped without being held.
      if (!this.skipping) {
        if (this.partialBytes + piece.length > this.maxLineBytes * 2 + 65_536) {
          this.skipping = true;
          this.partial = [];
          this.partialBytes = 0;
          this.metrics.rejected.inc({ reason: "line_too_long" });
        } else {
          this.partial.push(newline < 0 ? Buffer.from(piece) : piece);
          this.partialBytes += piece.length;
        }
      }
      if (newline < 0) break;
      from = newline + 1;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      const line = this.partial.length === 1 ? this.partial[0]! : Buffer.concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
      const entry = this.entry(line);
      if (!entry) continue;
      cursor = entry.cursor;
      if (entry.entry) groups.add(entry.labels, entry.entry);
    }
    if (cursor === undefined) return;
    this.readCursor = cursor;
    this.restarts = 0;
    const screened = screen(this.tenant, groups.list(), this.options);
    for (const [reason, { count }] of screened.refused) this.metrics.rejected.inc({ reason }, count);
    this.intake.push({ ...screened, bytes: groups.bytes, mark: cursor });
  }

  /** One JSON line as stream labels and entry, with its cursor; undefined for a line that is not an entry. */
  private entry(line: Buffer): { cursor: string; labels: Labels; entry?: LogEntry } | undefined {
    let fields: Record<string, unknown>;
    try {
      fields = JSON.parse(line.toString("utf8")) as Record<string, unknown>;
    } catch {
      this.metrics.rejected.inc({ reason: "not_json" });
      return undefined;
    }
    const cursor = fieldText(fields["__CURSOR"]);
    if (cursor === undefined) {
      this.metrics.rejected.inc({ reason: "not_json" });
      return undefined;
    }
    const { config } = this.options;
    const labels: Labels = Object.create(null);
    for (const name in this.labels) labels[name] = this.labels[name]!;
    for (const name of config.field_labels) {
      let value = fieldText(fields[JOURNAL_LABEL_FIELDS[name]]);
      if (name === "level" && value !== undefined) value = SEVERITIES[Number(value)] ?? value;
      if (value !== undefined && value !== "") labels[name] ??= value;
    }
    let metadata: Labels = NO_LABELS;
    for (const field of config.fields) {
      const value = fieldText(fields[field]);
      if (value === undefined || value === "") continue;
      if (metadata === NO_LABELS) metadata = Object.create(null);
      metadata[metadataName(field)] = value;
    }
    const micros = fieldText(fields["__REALTIME_TIMESTAMP"]);
    const timeUnixNano =
      micros !== undefined && /^\d+$/.test(micros) ? BigInt(micros) * 1000n : BigInt(Date.now()) * 1_000_000n;
    const message = config.json ? line.toString("utf8") : (fieldText(fields["MESSAGE"]) ?? "");
    return { cursor, labels, entry: { timeUnixNano, line: message, metadata } };
  }

  private save(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (this.deliveredCursor === undefined || this.deliveredCursor === this.savedCursor) return;
    try {
      writeFileAtomic(
        this.options.cursorFile,
        `${JSON.stringify({ version: CURSOR_VERSION, cursor: this.deliveredCursor })}\n`,
      );
      this.savedCursor = this.deliveredCursor;
    } catch (err) {
      this.options.log?.error({ err, file: this.options.cursorFile }, "cannot save the journal cursor");
    }
  }

  /** Stops journalctl, waits for what was read to reach the disk buffer, and saves the cursor. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.stdout.removeAllListeners("data");
      child.kill("SIGTERM");
      await exited;
    }
    this.options.batcher.flush();
    await this.intake.drain(5000);
    const left = this.intake.pendingEntries;
    if (left > 0)
      this.options.log?.warn(
        { entries: left },
        "stopped with journal entries the full disk buffer did not take; they are read again at start",
      );
    this.save();
  }
}
