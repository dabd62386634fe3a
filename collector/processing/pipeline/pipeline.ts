import type { LogEntry, LogStream } from "../../../proto/batch.js";
import { type Labels, NO_LABELS } from "../../../proto/labels.js";
import { StreamGroups } from "../../receivers/intake.js";
import type { PipelineMetrics } from "./metrics.js";
import { STAGES, type StageName } from "./registry.js";
import type { PipelineStagesConfig } from "./schema.js";
import { failed, type Outcome, type PipelineEntry, type StageContext, type StageRun } from "./stage.js";

// A pipeline compiled from its `pipeline_stages`: a list of closures each entry runs through in order. The
// counts of what each stage did are kept in plain numbers while a batch runs and added to /metrics after it.

interface CompiledStage {
  name: StageName;
  run: StageRun;
  processed: number;
  outcomes: Map<Outcome, number>;
}

export interface PipelineResult {
  /** What goes on, by tenant (a `tenant` stage may move entries). */
  byTenant: Map<string, LogStream[]>;
  entries: number;
  dropped: number;
  /** How long to wait before handing it on (a blocking `limit` stage). */
  waitMs: number;
}

export const DEFAULT_CONTEXT: StageContext = { now: Date.now, random: Math.random };
/** A stage that threw: a bug or an input its author did not foresee; the entry goes on as the stage left it. */
const THREW = failed("error");

export class Pipeline {
  private readonly stages: CompiledStage[];

  constructor(
    config: PipelineStagesConfig,
    readonly name: string,
    private readonly metrics?: PipelineMetrics,
    private readonly context: StageContext = DEFAULT_CONTEXT,
  ) {
    this.stages = config.map((item) => {
      const name = Object.keys(item)[0] as StageName;
      const stage = STAGES[name] as { compile(config: unknown, context: StageContext): StageRun };
      return {
        name,
        run: stage.compile(item[name], { ...context, pipeline: this.name }),
        processed: 0,
        outcomes: new Map(),
      };
    });
  }

  run(tenant: string, streams: readonly LogStream[]): PipelineResult {
    const readUnixNano = BigInt(this.context.now()) * 1_000_000n;
    const groups = new Map<string, StreamGroups>();
    let waitMs = 0;
    let dropped = 0;
    let entries = 0;
    for (const stream of streams)
      for (const source of stream.entries) {
        const entry = this.entry(tenant, stream.labels, source, readUnixNano);
        if (!this.through(entry)) {
          dropped++;
          continue;
        }
        waitMs = Math.max(waitMs, entry.waitMs);
        let group = groups.get(entry.tenant);
        if (group === undefined) groups.set(entry.tenant, (group = new StreamGroups()));
        group.add(entry.labels, { timeUnixNano: entry.timeUnixNano, line: entry.line, metadata: metadataOf(entry) });
        entries++;
      }
    this.count();
    const byTenant = new Map([...groups].map(([name, group]) => [name, group.list()] as const));
    return { byTenant, entries, dropped, waitMs };
  }

  private entry(tenant: string, labels: Labels, source: LogEntry, readUnixNano: bigint): PipelineEntry {
    const own: Labels = Object.create(null);
    const extracted: Record<string, unknown> = Object.create(null);
    for (const name in labels) own[name] = extracted[name] = labels[name]!;
    const metadata: Labels = Object.create(null);
    for (const name in source.metadata) metadata[name] = source.metadata[name]!;
    return {
      line: source.line,
      timeUnixNano: source.timeUnixNano,
      readUnixNano,
      labels: own,
      metadata,
      extracted,
      tenant,
      waitMs: 0,
    };
  }

  /** Runs the stages on `entry`; false when one dropped it. */
  private through(entry: PipelineEntry): boolean {
    for (const stage of this.stages) {
      let outcome: Outcome | undefined;
      try {
        outcome = stage.run(entry);
      } catch {
        outcome = THREW;
      }
      if (outcome === undefined) stage.processed++;
      else stage.outcomes.set(outcome, (stage.outcomes.get(outcome) ?? 0) + 1);
      if (outcome?.kind === "dropped") return false;
    }
    return true;
  }

  private count(): void {
    const counter = this.metrics?.entries;
    this.stages.forEach((stage, index) => {
      const labels = { pipeline: this.name, stage: stage.name, position: String(index) };
      if (stage.processed > 0) counter?.inc({ ...labels, outcome: "processed", reason: "" }, stage.processed);
      for (const [outcome, n] of stage.outcomes)
        counter?.inc({ ...labels, outcome: outcome.kind, reason: outcome.reason }, n);
      stage.processed = 0;
      stage.outcomes.clear();
    });
  }
}

function metadataOf(entry: PipelineEntry): Labels {
  for (const _ in entry.metadata) return entry.metadata;
  return NO_LABELS;
}
