import { join } from "node:path";
import { Counter, Gauge, type Registry } from "prom-client";
import type { CollectorConfig } from "./config.js";
import type { IngestContract } from "../common/ingest-contract.js";
import type { Logger, LogTap } from "../common/log.js";
import { labelsOf } from "../proto/labels.js";
import type { InputPipelines } from "./processing/pipeline/processed-batcher.js";
import type { Batcher } from "./buffer/batcher.js";
import { FileTail } from "./receivers/files/receiver.js";
import { HostMetrics } from "./receivers/hostmetrics.js";
import { compileGoRegexp } from "../common/regex.js";

// The inputs the collector reads itself rather than receives: tailed files and host metrics. Both hand their
// data to the batcher like the push receivers do.

function inputMetrics(registry: Registry) {
  return {
    lines: new Counter({
      name: "bifrost_collector_file_lines_read_total",
      help: "Lines (joined multi-line entries count once) read from tailed files and buffered, by tenant.",
      labelNames: ["tenant"],
      registers: [registry],
    }),
    watched: new Gauge({
      name: "bifrost_collector_files_watched",
      help: "Files open for tailing, rotated ones still being read included.",
      registers: [registry],
    }),
    rotations: new Counter({
      name: "bifrost_collector_file_rotations_total",
      help: "Rotations of tailed files, by kind (rename, truncate).",
      labelNames: ["kind"],
      registers: [registry],
    }),
    truncated: new Counter({
      name: "bifrost_collector_file_lines_truncated_total",
      help: "Lines of tailed files cut to collector.limits.max_line_bytes.",
      registers: [registry],
    }),
    refused: new Counter({
      name: "bifrost_collector_file_lines_refused_total",
      help: "Lines of tailed files skipped as outside the ingestion contract (labels over the aggregator's limits, say), by reason; each logged.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    paused: new Gauge({
      name: "bifrost_collector_file_tail_paused",
      help: "1 while file tails wait for room in the full disk buffer.",
      registers: [registry],
    }),
    scrapes: new Counter({
      name: "bifrost_collector_host_metric_scrapes_total",
      help: "Host metric scrapes of /proc.",
      registers: [registry],
    }),
    scrapeErrors: new Counter({
      name: "bifrost_collector_host_metric_errors_total",
      help: "Host metric sources that could not be read, or scrapes the full disk buffer refused, by source.",
      labelNames: ["source"],
      registers: [registry],
    }),
  };
}

export interface Inputs {
  stop(): Promise<void>;
}

export function startInputs(options: {
  config: CollectorConfig;
  batcher: Batcher;
  /** The batcher of each file source: with its processing pipeline when one is configured. */
  pipelines: InputPipelines;
  /** What the inputs may hand to the batcher. */
  contract: IngestContract;
  registry: Registry;
  log: Logger;
  ownLogs?: LogTap | undefined;
}): Inputs {
  const { config: c, batcher, log } = options;
  options.ownLogs?.attach((line) => storeOwnLog(batcher, c.default_tenant, line));
  const metrics = inputMetrics(options.registry);
  const tail =
    c.files.length > 0
      ? new FileTail({
          sources: c.files.map((f, index) => ({
            batcher: options.pipelines.batcherFor(`files[${index}]`, f.pipeline_stages),
            paths: f.paths,
            exclude: f.exclude,
            labels: labelsOf(Object.entries(f.labels)),
            tenant: f.tenant ?? c.default_tenant,
            encoding: f.encoding,
            ...(f.multiline
              ? {
                  multiline: {
                    startPattern: compileGoRegexp(f.multiline.start_pattern),
                    maxLines: f.multiline.max_lines,
                    timeoutMs: f.multiline.timeout_ms,
                  },
                }
              : {}),
          })),
          batcher,
          positionsFile: c.files_positions || join(c.wal.dir, "file-positions.json"),
          pollMs: c.files_poll_ms,
          syncMs: c.files_sync_ms,
          rotateWaitMs: c.files_rotate_wait_ms,
          maxLineBytes: c.limits.max_line_bytes,
          maxReadBytes: c.batch.max_bytes,
          log: log.child({ input: "files" }),
          onLines: (tenant, n) => metrics.lines.inc({ tenant }, n),
          onRotation: (kind) => metrics.rotations.inc({ kind }),
          onTruncatedLine: () => metrics.truncated.inc(),
          onWatched: (n) => metrics.watched.set(n),
          onPaused: (paused) => metrics.paused.set(paused ? 1 : 0),
          contract: options.contract,
          onRefused: (tenant, reason, lines, message) => {
            metrics.refused.inc({ reason }, lines);
            log.error(
              { input: "files", tenant, reason, lines, err: message },
              "skipped tailed lines outside the ingestion contract",
            );
          },
        })
      : undefined;
  const h = c.host_metrics;
  const host = h.enabled
    ? new HostMetrics({
        batcher,
        tenant: h.tenant ?? c.default_tenant,
        intervalMs: h.interval_ms,
        mountPoints: h.mount_points,
        processes: h.processes.map((p) => ({
          name: p.name,
          match: {
            ...(p.match.comm !== undefined ? { comm: p.match.comm } : {}),
            ...(p.match.cmdline !== undefined ? { cmdline: compileGoRegexp(p.match.cmdline) } : {}),
            ...(p.match.pidfile !== undefined ? { pidfile: p.match.pidfile } : {}),
          },
        })),
        log: log.child({ input: "host_metrics" }),
        onScrape: () => metrics.scrapes.inc(),
        onError: (source) => metrics.scrapeErrors.inc({ source }),
      })
    : undefined;
  tail?.start();
  host?.start();
  return {
    stop: async () => {
      const stopped = Promise.all([tail?.stop(), host?.stop()]);
      batcher.flush();
      await stopped;
    },
  };
}

/**
 * One of the process's own log lines (pino JSON) as an entry of the stream {job="bifrost", level, component},
 * at the time it was logged. A refusal (a full disk buffer) is not logged: that would feed itself.
 */
function storeOwnLog(batcher: Batcher, tenant: string, line: string): void {
  let fields: { time?: unknown; level?: unknown; component?: unknown } = {};
  try {
    fields = JSON.parse(line) as typeof fields;
  } catch {
    // Not JSON: kept as it is, at the time it arrived.
  }
  const ms = typeof fields.time === "string" ? Date.parse(fields.time) : Number.NaN;
  const labels: [string, string][] = [["job", "bifrost"]];
  if (typeof fields.level === "string") labels.push(["level", fields.level]);
  if (typeof fields.component === "string") labels.push(["component", fields.component]);
  const timeUnixNano = BigInt(Number.isNaN(ms) ? Date.now() : ms) * 1_000_000n;
  batcher
    .add(tenant, { streams: [{ labels: labelsOf(labels), entries: [{ timeUnixNano, line, metadata: labelsOf([]) }] }] })
    .catch(() => {});
}
