import { Registry } from "prom-client";
import { pipelineMetrics } from "../../collector/processing/pipeline/metrics.js";
import { Pipeline } from "../../collector/processing/pipeline/pipeline.js";
import { pipelineStagesSchema } from "../../collector/processing/pipeline/schema.js";
import type { StageContext } from "../../collector/processing/pipeline/stage.js";
import { labelsOf, NO_LABELS, type Labels } from "../../proto/labels.js";

// Runs processing stages, configured as YAML would give them, on entries, with a clock and dice of the test's.

export interface EntryIn {
  line: string;
  labels?: Record<string, string>;
  metadata?: Record<string, string>;
  timeUnixNano?: bigint;
}

export interface EntryOut {
  tenant: string;
  labels: Record<string, string>;
  line: string;
  timeUnixNano: bigint;
  metadata: Record<string, string>;
}

/** 2026-12-07T12:00:00Z, the tests' now. */
export const NOW_MS = Date.UTC(2026, 11, 7, 12);

export function stagePipeline(stages: unknown[], context: Partial<StageContext> = {}) {
  const registry = new Registry();
  const pipeline = new Pipeline(pipelineStagesSchema().parse(stages), "test", pipelineMetrics(registry), {
    now: () => NOW_MS,
    random: Math.random,
    ...context,
  });
  const run = (entries: EntryIn[], tenant = "fake"): EntryOut[] => {
    const result = pipeline.run(
      tenant,
      entries.map((e) => ({
        labels: labelsOf(Object.entries(e.labels ?? { job: "test" })),
        entries: [
          {
            line: e.line,
            timeUnixNano: e.timeUnixNano ?? BigInt(NOW_MS) * 1_000_000n,
            metadata: e.metadata ? labelsOf(Object.entries(e.metadata)) : NO_LABELS,
          },
        ],
      })),
    );
    const out: EntryOut[] = [];
    for (const [to, streams] of result.byTenant)
      for (const stream of streams)
        for (const entry of stream.entries)
          out.push({
            tenant: to,
            labels: { ...(stream.labels as Labels) },
            line: entry.line,
            timeUnixNano: entry.timeUnixNano,
            metadata: { ...entry.metadata },
          });
    return out;
  };
  /** The stage counters as `stage/outcome/reason` -> count, summed over positions. */
  const counts = async (): Promise<Record<string, number>> => {
    const metric = registry.getSingleMetric("bifrost_collector_pipeline_entries_total");
    const out: Record<string, number> = {};
    for (const v of (await metric?.get())?.values ?? []) {
      const l = v.labels as Record<string, string>;
      const key = `${l["stage"]}/${l["outcome"]}${l["reason"] ? `/${l["reason"]}` : ""}`;
      out[key] = (out[key] ?? 0) + v.value;
    }
    return out;
  };
  return { pipeline, run, counts };
}

/** One entry through the stages. */
export function runOne(stages: unknown[], entry: EntryIn, context: Partial<StageContext> = {}): EntryOut | undefined {
  return stagePipeline(stages, context).run([entry])[0];
}

/** The extracted values `names` after the stages, read back through a `labels` stage (the job label left out). */
export function extractedOf(stages: unknown[], line: string, names: string[]): Record<string, string> {
  const out = runOne([...stages, { labels: Object.fromEntries(names.map((n) => [n, null])) }], {
    line,
    labels: { job: "test" },
  });
  const { job: _job, ...rest } = out?.labels ?? {};
  return rest;
}
