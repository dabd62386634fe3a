import { createHash } from "node:crypto";
import type { Hono } from "hono";
import { Counter, Gauge, type Registry } from "prom-client";
import { tenantOf } from "../../common/auth.js";
import type { TenantLimits } from "../../common/limits.js";
import type { Logger } from "../../common/log.js";
import type { Labels } from "../../proto/labels.js";
import type { BatchLimits } from "../../proto/validate.js";
import type { IngestContract } from "../../common/ingest-contract.js";
import type { Batcher } from "../buffer/batcher.js";
import { compileRelabelConfigs } from "../processing/relabel.js";
import { WalFullError } from "../buffer/wal.js";
import { durationMs, jobTiming, parseByteSize, type ScrapeJobConfig, type ScrapeSection } from "./scrape-config.js";
import { ScrapeClient } from "./scrape-http.js";
import { ScrapeLoop, type ScrapeJobSettings, type ScrapeOutcome } from "./scrape-loop.js";
import { FileDiscovery, type Target, type TargetGroup, type TargetJob, targetsOf } from "./scrape-targets.js";

// `collector.scrape`: Prometheus's scrape manager on the edge. Each job discovers its targets (static_configs,
// file_sd_configs), keeps one scrape loop per target, and hands every scrape to the batcher, so scraped samples
// go through the same disk buffer as pushed ones. GET /api/v1/targets lists the targets as Prometheus does.

export interface ScrapeOptions {
  config: ScrapeSection;
  defaultTenant: string;
  limits: BatchLimits;
  tenantLimits?: TenantLimits;
  batcher: Pick<Batcher, "add">;
  /** What every later stage accepts: series outside it are left out of the batch and counted by reason. */
  contract?: Pick<IngestContract, "screen">;
  registry: Registry;
  log: Logger;
}

function scrapeMetrics(registry: Registry) {
  return {
    scrapes: new Counter({
      name: "bifrost_collector_scrapes_total",
      help: "Scrapes of Prometheus targets, by job and result (up, down).",
      labelNames: ["job", "result"],
      registers: [registry],
    }),
    samples: new Counter({
      name: "bifrost_collector_scrape_samples_buffered_total",
      help: "Scraped samples (staleness markers and report series included) in the disk buffer, by job.",
      labelNames: ["job"],
      registers: [registry],
    }),
    rejected: new Counter({
      name: "bifrost_collector_scrape_samples_rejected_total",
      help: "Scraped samples left out, by reason: a collector limit (too_many_labels and the like), or buffer_full.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    targets: new Gauge({
      name: "bifrost_collector_scrape_targets",
      help: "Active scrape targets, by job.",
      labelNames: ["job"],
      registers: [registry],
    }),
    discoveryErrors: new Counter({
      name: "bifrost_collector_scrape_sd_errors_total",
      help: "file_sd_configs files that could not be read or parsed (their previous targets are kept).",
      registers: [registry],
    }),
  };
}

interface Job {
  config: ScrapeJobConfig;
  target: TargetJob;
  tenant: string;
  settings: ScrapeJobSettings;
  client: ScrapeClient;
  files: FileDiscovery[];
  loops: Map<string, ScrapeLoop>;
  dropped: Labels[];
}

/** Where in its interval a target is scraped: fixed per target, so restarts keep the phase. */
function offsetMs(target: Target): number {
  const hash = createHash("sha256").update(target.key).digest().readUInt32BE(0);
  const now = Date.now();
  const base = target.intervalMs - (now % target.intervalMs);
  const next = base + (hash % target.intervalMs);
  return next > target.intervalMs ? next - target.intervalMs : next;
}

export class ScrapeManager {
  private readonly jobs: Job[] = [];
  private readonly metrics: ReturnType<typeof scrapeMetrics>;
  /** Loops of vanished targets waiting to mark their series stale, by target key. */
  private readonly ending = new Map<string, Promise<void>>();
  private stopping = false;

  constructor(private readonly options: ScrapeOptions) {
    this.metrics = scrapeMetrics(options.registry);
    const { config } = options;
    for (const job of config.scrape_configs) {
      const { intervalMs, timeoutMs } = jobTiming(config.global, job);
      const entry: Job = {
        config: job,
        target: {
          name: job.job_name,
          intervalMs,
          timeoutMs,
          metricsPath: job.metrics_path,
          scheme: job.scheme,
          params: job.params,
          relabel: compileRelabelConfigs(job.relabel_configs),
        },
        tenant: job.tenant ?? options.defaultTenant,
        settings: {
          honorLabels: job.honor_labels,
          honorTimestamps: job.honor_timestamps,
          metricRelabel: compileRelabelConfigs(job.metric_relabel_configs),
          sampleLimit: job.sample_limit,
          labelLimit: job.label_limit,
          labelNameLengthLimit: job.label_name_length_limit,
          labelValueLengthLimit: job.label_value_length_limit,
          limits:
            options.tenantLimits?.batchLimits(job.tenant ?? options.defaultTenant, options.limits) ?? options.limits,
        },
        client: new ScrapeClient(job, parseByteSize(job.body_size_limit)!),
        files: [],
        loops: new Map(),
        dropped: [],
      };
      entry.files = job.file_sd_configs.map(
        (sd) =>
          new FileDiscovery(
            sd.files,
            durationMs(sd.refresh_interval)!,
            () => this.sync(entry),
            (file, err) => {
              this.metrics.discoveryErrors.inc();
              options.log.error({ job: job.job_name, file, err: err.message }, "file_sd: cannot read target file");
            },
          ),
      );
      this.jobs.push(entry);
    }
  }

  start(): void {
    for (const job of this.jobs) {
      for (const files of job.files) files.start();
      this.sync(job);
    }
  }

  /** Stops every loop; no staleness markers, as Prometheus writes none when it shuts down. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const job of this.jobs) for (const files of job.files) files.stop();
    await Promise.all(this.jobs.flatMap((job) => [...job.loops.values()].map((loop) => loop.stop(undefined))));
    for (const job of this.jobs) job.client.close();
  }

  private groups(job: Job): TargetGroup[] {
    const statics = job.config.static_configs.map((g) => ({ targets: g.targets, labels: g.labels as Labels }));
    return [...statics, ...job.files.flatMap((f) => f.targetGroups())];
  }

  /** Starts loops for new targets and ends those of vanished ones, after a discovery change. */
  private sync(job: Job): void {
    if (this.stopping) return;
    const { active, dropped, errors } = targetsOf(job.target, this.groups(job));
    for (const error of errors)
      this.options.log.warn({ job: job.config.job_name, err: error }, "scrape target refused");
    job.dropped = dropped;
    const wanted = new Map(active.map((t) => [t.key, t]));
    for (const [key, loop] of job.loops) {
      if (wanted.has(key)) continue;
      job.loops.delete(key);
      const ended = loop.stop({ cancelled: () => this.stopping || job.loops.has(key) }).finally(() => {
        if (this.ending.get(key) === ended) this.ending.delete(key);
      });
      this.ending.set(key, ended);
    }
    for (const target of active) {
      if (job.loops.has(target.key)) continue;
      const loop = new ScrapeLoop(target, job.settings, job.client, (outcome) => this.buffer(job, loop, outcome));
      job.loops.set(target.key, loop);
      loop.start(offsetMs(target));
    }
    this.metrics.targets.set({ job: job.config.job_name }, job.loops.size);
  }

  private buffer(job: Job, loop: ScrapeLoop, outcome: ScrapeOutcome): void {
    const name = job.config.job_name;
    this.metrics.scrapes.inc({ job: name, result: loop.health === "up" ? "up" : "down" });
    for (const [reason, count] of outcome.rejected) this.metrics.rejected.inc({ reason }, count);
    let { series, samples } = outcome;
    if (this.options.contract) {
      const screened = this.options.contract.screen(job.tenant, { series });
      for (const [reason, { count }] of screened.refused) this.metrics.rejected.inc({ reason }, count);
      series = screened.data.series;
      samples = screened.samples;
    }
    if (series.length === 0) return;
    this.options.batcher.add(job.tenant, { series }).then(
      () => this.metrics.samples.inc({ job: name }, samples),
      (err: unknown) => {
        // A scrape cannot be asked to come again: what the full disk buffer refused is lost, and counted.
        const reason = err instanceof WalFullError ? "buffer_full" : "buffer_error";
        this.metrics.rejected.inc({ reason }, outcome.samples);
        this.options.log.error(
          { job: name, target: loop.target.url, err: (err as Error).message },
          "scraped samples not buffered",
        );
      },
    );
  }

  /** The targets of a tenant's jobs in the data of Prometheus's GET /api/v1/targets. */
  targets(tenant: string, query: { state?: string; scrapePool?: string }): object {
    const state = (query.state ?? "").toLowerCase();
    const showActive = state === "" || state === "any" || state === "active";
    const showDropped = state === "" || state === "any" || state === "dropped";
    const jobs = this.jobs
      .filter((job) => job.tenant === tenant)
      .filter(
        (job) => query.scrapePool === undefined || query.scrapePool === "" || job.config.job_name === query.scrapePool,
      )
      .sort((a, b) => (a.config.job_name < b.config.job_name ? -1 : 1));
    const activeTargets = showActive
      ? jobs.flatMap((job) =>
          [...job.loops.values()]
            .sort((a, b) => (a.target.url < b.target.url ? -1 : a.target.url > b.target.url ? 1 : 0))
            .map((loop) => ({
              discoveredLabels: { ...loop.target.discoveredLabels },
              labels: { ...loop.target.publicLabels },
              scrapePool: job.config.job_name,
              scrapeUrl: loop.target.url,
              globalUrl: loop.target.url,
              lastError: loop.lastError,
              lastScrape:
                loop.lastScrapeMs === undefined ? "0001-01-01T00:00:00Z" : new Date(loop.lastScrapeMs).toISOString(),
              lastScrapeDuration: loop.lastDurationS,
              health: loop.health,
              scrapeInterval: loop.target.labels["__scrape_interval__"],
              scrapeTimeout: loop.target.labels["__scrape_timeout__"],
            })),
        )
      : [];
    const droppedTargets = showDropped
      ? jobs.flatMap((job) => job.dropped.map((labels) => ({ discoveredLabels: { ...labels } })))
      : [];
    return { activeTargets, droppedTargets };
  }

  /** GET /api/v1/targets on the collector's listener. */
  route(app: Hono): void {
    app.get("/api/v1/targets", (c) =>
      c.json({
        status: "success",
        data: this.targets(tenantOf(c), { state: c.req.query("state"), scrapePool: c.req.query("scrapePool") }),
      }),
    );
  }
}
