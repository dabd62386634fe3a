import { dirname, join } from "node:path";
import type { Registry } from "prom-client";
import type { Config } from "../config.js";
import type { IngestContract } from "../common/ingest-contract.js";
import type { TenantLimits } from "../common/limits.js";
import type { Logger } from "../common/log.js";
import type { InputPipelines } from "./processing/pipeline/processed-batcher.js";
import type { Batcher } from "./buffer/batcher.js";
import type { TenantRateLimiter } from "../common/rate-limit.js";

// The log inputs an edge node runs beside its files: syslog listeners, the systemd journal and Kubernetes pod
// logs. Each is loaded only when configured (an edge node's memory budget is small), and each hands its
// entries to the batcher under the same tenant limits and rate as the push receivers.

export interface LogInputOptions {
  config: Config["collector"];
  batcher: Batcher;
  /** The batcher of each input: with its processing pipeline when one is configured. */
  pipelines: InputPipelines;
  registry: Registry;
  log: Logger;
  tenantLimits: TenantLimits;
  /** What the inputs may hand to the batcher; the rest is skipped and counted by reason. */
  contract: IngestContract;
  rate: TenantRateLimiter;
  onAccepted: (tenant: string, entries: number) => void;
}

export interface LogInputs {
  stop(): Promise<void>;
}

/** Where the file tail keeps its positions: the other inputs keep theirs beside them. */
function positionsDir(c: Config["collector"]): string {
  return c.files_positions ? dirname(c.files_positions) : c.wal.dir;
}

export async function startLogInputs(options: LogInputOptions): Promise<LogInputs> {
  const { config: c, batcher, pipelines, registry, log } = options;
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    await Promise.all(stops.map((s) => s()));
  };
  try {
    if (c.syslog.length > 0) {
      const { startSyslog } = await import("./receivers/syslog/listener.js");
      const syslog = await startSyslog({
        listeners: c.syslog,
        defaultTenant: c.default_tenant,
        batcher,
        batcherFor: (listener, index) => pipelines.batcherFor(`syslog[${index}]`, listener.pipeline_stages),
        limits: c.limits,
        tenantLimits: options.tenantLimits,
        contract: options.contract,
        rate: options.rate,
        maxPendingBytes: c.batch.max_bytes,
        registry,
        log: log.child({ input: "syslog" }),
        onAccepted: options.onAccepted,
      });
      stops.push(syslog.stop);
    }
    if (c.journal.enabled) {
      const { JournalReader } = await import("./receivers/journal/reader.js");
      const journal = new JournalReader({
        config: c.journal,
        cursorFile: c.journal.cursor_file || join(positionsDir(c), "journal-cursor.json"),
        defaultTenant: c.default_tenant,
        batcher: pipelines.batcherFor("journal", c.journal.pipeline_stages),
        limits: c.limits,
        tenantLimits: options.tenantLimits,
        contract: options.contract,
        rate: options.rate,
        maxPendingBytes: c.batch.max_bytes,
        registry,
        log: log.child({ input: "journal" }),
        onAccepted: options.onAccepted,
      });
      journal.start();
      stops.push(() => journal.stop());
    }
    if (c.kubernetes.enabled) {
      const { startPodLogs } = await import("./receivers/kubernetes/pods.js");
      const tenant = c.kubernetes.tenant ?? c.default_tenant;
      const pods = startPodLogs({
        config: c.kubernetes,
        positionsFile: c.kubernetes.positions_file || join(positionsDir(c), "kubernetes-positions.json"),
        tenant,
        batcher: pipelines.batcherFor("kubernetes", c.kubernetes.pipeline_stages),
        contract: options.contract,
        maxLineBytes: options.tenantLimits.get(tenant, "max_line_bytes"),
        maxReadBytes: c.batch.max_bytes,
        pollMs: c.files_poll_ms,
        syncMs: c.files_sync_ms,
        rotateWaitMs: c.files_rotate_wait_ms,
        registry,
        log: log.child({ input: "kubernetes" }),
      });
      stops.push(() => pods.stop());
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop };
}
