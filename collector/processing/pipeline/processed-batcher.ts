import { setTimeout as sleep } from "node:timers/promises";
import type { Registry } from "prom-client";
import type { IngestContract } from "../../../common/ingest-contract.js";
import type { Logger } from "../../../common/log.js";
import type { Batcher } from "../../buffer/batcher.js";
import { LogMetrics } from "./log-metrics.js";
import { pipelineMetrics } from "./metrics.js";
import { DEFAULT_CLOCK, Pipeline } from "./pipeline.js";
import type { PipelineStagesConfig } from "./schema.js";

// Where the processing pipeline sits: between every log input and the batcher. An input hands its streams to
// the batcher it was given; with a pipeline configured for it, that batcher runs the pipeline first, screens
// the result against the ingestion contract again (stages change labels, lines and times, and what goes on
// must be what the disk buffer and the aggregator accept; refusals are counted as the `contract` stage's
// drops), and writes each tenant's share. The input's acknowledgement (a push's answer, a file position) waits
// for that write, so an entry is either in the disk buffer or counted as dropped by reason.

type BatcherLike = Pick<Batcher, "add" | "flush">;

export interface ProcessedBatcherOptions {
  batcher: BatcherLike;
  pipeline: Pipeline;
  contract: Pick<IngestContract, "screen">;
  registry: Registry;
  log?: Logger | undefined;
  /** The `metrics` stages' values, whose changes are written with the batch that made them. */
  logMetrics?: LogMetrics;
}

export function processedBatcher(options: ProcessedBatcherOptions): BatcherLike {
  const { batcher, pipeline, contract, log } = options;
  const counter = pipelineMetrics(options.registry).entries;
  return {
    flush: () => batcher.flush(),
    async add(tenant, data) {
      if (data.streams === undefined || data.streams.length === 0) return batcher.add(tenant, data);
      const result = pipeline.run(tenant, data.streams);
      if (result.waitMs > 0) await sleep(result.waitMs);
      const writes: Promise<void>[] = [];
      for (const [to, streams] of result.byTenant) {
        const screened = contract.screen(to, { streams });
        for (const [reason, { count, message }] of screened.refused) {
          counter.inc({ pipeline: pipeline.name, stage: "contract", position: "", outcome: "dropped", reason }, count);
          log?.error(
            { pipeline: pipeline.name, tenant: to, reason, entries: count, err: message },
            "processed entries outside the ingestion contract dropped",
          );
        }
        const kept = screened.data.streams ?? [];
        if (to === tenant) writes.push(batcher.add(to, { ...data, streams: kept }));
        else if (kept.length > 0) writes.push(batcher.add(to, { streams: kept }));
      }
      if (!result.byTenant.has(tenant) && (data.series !== undefined || data.metadata !== undefined))
        writes.push(batcher.add(tenant, { ...data, streams: [] }));
      for (const [to, write] of options.logMetrics?.take() ?? []) writes.push(batcher.add(to, write));
      await Promise.all(writes);
    },
  };
}

/** A series of the `metrics` stages is written again this often, as a scrape would, so instant queries find it. */
const LOG_METRICS_RESEND_MS = 15_000;

/** The batcher each log input is given: with the input's own pipeline, else the default one, else the plain batcher. */
export class InputPipelines {
  readonly logMetrics = new LogMetrics();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: Omit<ProcessedBatcherOptions, "pipeline"> & { defaults: PipelineStagesConfig },
  ) {}

  batcherFor(name: string, own: PipelineStagesConfig | undefined): BatcherLike {
    const stages = own ?? this.options.defaults;
    if (stages.length === 0) return this.options.batcher;
    const metrics = pipelineMetrics(this.options.registry);
    const context = { ...DEFAULT_CLOCK, registry: this.options.registry, logMetrics: this.logMetrics };
    const pipeline = new Pipeline(stages, name, metrics, context);
    // A metrics stage may be nested (under a match stage): what the compiled pipeline declared tells.
    if (this.timer === undefined && this.logMetrics.declared) this.startResending();
    return processedBatcher({ ...this.options, pipeline, logMetrics: this.logMetrics });
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private startResending(): void {
    this.timer = setInterval(() => {
      for (const [tenant, write] of this.logMetrics.take(true))
        this.options.batcher.add(tenant, write).catch((err: unknown) => {
          // The totals are sent again at the next period or with the next batch: nothing is lost for good.
          this.options.log?.warn({ err, tenant }, "the batcher refused metrics from logs");
        });
    }, LOG_METRICS_RESEND_MS);
    this.timer.unref();
  }
}
