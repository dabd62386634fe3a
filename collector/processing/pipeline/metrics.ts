import { Counter, type Registry } from "prom-client";

/** The pipelines' counters, registered once per registry (every input's pipeline shares them). */
export interface PipelineMetrics {
  entries: Counter<"pipeline" | "stage" | "position" | "outcome" | "reason">;
}

const byRegistry = new WeakMap<Registry, PipelineMetrics>();

export function pipelineMetrics(registry: Registry): PipelineMetrics {
  let metrics = byRegistry.get(registry);
  if (metrics === undefined) {
    metrics = {
      entries: new Counter({
        name: "bifrost_collector_pipeline_entries_total",
        help: "Entries through each processing stage (pipeline: the input's, stage and position in its list), by outcome: processed, failed (went on unchanged by the stage) or dropped, with the reason.",
        labelNames: ["pipeline", "stage", "position", "outcome", "reason"],
        registers: [registry],
      }),
    };
    byRegistry.set(registry, metrics);
  }
  return metrics;
}
