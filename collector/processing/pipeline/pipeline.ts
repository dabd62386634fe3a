import type { LogEntry, LogStream } from "../../../proto/batch.js";
import { type Labels, NO_LABELS } from "../../../proto/labels.js";
import { StreamGroups } from "../../receivers/intake.js";
import type { PipelineMetrics } from "./metrics.js";
import { STAGES, type StageName } from "./registry.js";
import { type PipelineStagesConfig, pipelineStagesSchema } from "./schema.js";
import { failed, type Outcome, type PipelineEntry, type StageContext, type StageRun } from "./stage.js";

// A pipeline compiled from its `pipeline_stages`: a list of closures each entry runs through in order. The
// counts of what each stage did are kept in plain numbers while a batch runs and added to /metrics after it.

interface CompiledStage {
  name: StageName;
  /** Its place in the list, `2.0` for the first of the third stage's nested stages. */
  position: string;
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

type Clock = Omit<StageContext, "nested">;

export const DEFAULT_CLOCK: Clock = { now: Date.now, random: Math.random };
/** A stage that threw: a bug or an input its author did not foresee; the entry goes on as the stage left it. */
const THREW = failed("error");

export class Pipeline {
  private readonly stages: CompiledStage[];
  /** Every stage, nested ones included, for counting. */
  private readonly all: CompiledStage[] = [];
  private readonly context: StageContext;

  /** The position of the stage being compiled, the prefix of its nested stages' positions. */
  private compiling = "";

  constructor(
    config: PipelineStagesConfig,
    readonly name: string,
    private readonly metrics?: PipelineMetrics,
    clock: Clock = DEFAULT_CLOCK,
  ) {
    this.context = {
      ...clock,
      pipeline: name,
      nested: (stages) => {
        const list = this.compileList(pipelineStagesSchema().parse(stages), `${this.compiling}.`);
        return (entry) => this.runList(list, entry);
      },
    };
    this.stages = this.compileList(config, "");
  }

  private compileList(items: PipelineStagesConfig, prefix: string): CompiledStage[] {
    return items.map((item, index) => {
      const name = Object.keys(item)[0] as StageName;
      const stage = STAGES[name] as { compile(config: unknown, context: StageContext): StageRun };
      const position = `${prefix}${index}`;
      const outer = this.compiling;
      this.compiling = position;
      const run = stage.compile(item[name], this.context);
      this.compiling = outer;
      const compiled: CompiledStage = { name, position, run, processed: 0, outcomes: new Map() };
      this.all.push(compiled);
      return compiled;
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
    return this.runList(this.stages, entry) === undefined;
  }

  /** Runs `list` on `entry`; the dropping outcome when one of them dropped it. */
  private runList(list: readonly CompiledStage[], entry: PipelineEntry): Outcome | undefined {
    for (const stage of list) {
      let outcome: Outcome | undefined;
      try {
        outcome = stage.run(entry);
      } catch {
        outcome = THREW;
      }
      if (outcome === undefined) stage.processed++;
      else stage.outcomes.set(outcome, (stage.outcomes.get(outcome) ?? 0) + 1);
      if (outcome?.kind === "dropped") return outcome;
    }
    return undefined;
  }

  private count(): void {
    const counter = this.metrics?.entries;
    for (const stage of this.all) {
      const labels = { pipeline: this.name, stage: stage.name, position: stage.position };
      if (stage.processed > 0) counter?.inc({ ...labels, outcome: "processed", reason: "" }, stage.processed);
      for (const [outcome, n] of stage.outcomes)
        counter?.inc({ ...labels, outcome: outcome.kind, reason: outcome.reason }, n);
      stage.processed = 0;
      stage.outcomes.clear();
    }
  }
}

function metadataOf(entry: PipelineEntry): Labels {
  for (const _ in entry.metadata) return entry.metadata;
  return NO_LABELS;
}
