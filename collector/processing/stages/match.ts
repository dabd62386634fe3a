import { z } from "zod";
import { lineFilterTest } from "../../../common/logql/pipeline/line.js";
import { parseLogQL } from "../../../common/logql/syntax/parser.js";
import { compileMatcher } from "../../../common/matchers.js";
import { defineStage, dropped } from "../pipeline/stage.js";

// Promtail's `match` stage: a LogQL stream selector with line filters (`{app="web"} |= "error" !~ "health"`),
// parsed by the query service's LogQL parser (common/logql). With action `keep`, the entries it selects go
// through its nested `stages` and the others go on untouched; with `drop`, the entries it selects are dropped.

/** The selector's test of an entry's stream labels and line; throws a LogQL error for a bad selector. */
export function compileSelector(selector: string): (labels: Record<string, string>, line: string) => boolean {
  const expr = parseLogQL(selector);
  if (expr.kind !== "log") throw new Error("expected a stream selector, not a metric query");
  const filters = expr.pipeline.map((stage) => {
    if (stage.kind !== "line_filter") throw new Error(`only line filters may follow the selector, not ${stage.kind}`);
    return lineFilterTest(stage);
  });
  const matchers = expr.matchers.map((m) => ({ name: m.name, test: compileMatcher(m.op, m.value) }));
  return (labels, line) => matchers.every((m) => m.test(labels[m.name] ?? "")) && filters.every((keeps) => keeps(line));
}

export const matchStage = defineStage({
  schema: z
    .strictObject({
      selector: z
        .string()
        .superRefine((selector, ctx) => {
          try {
            compileSelector(selector);
          } catch (err) {
            ctx.addIssue({ code: "custom", message: (err as Error).message });
          }
        })
        .describe('LogQL stream selector with line filters, such as {app="web"} |= "error"'),
      action: z.enum(["keep", "drop"]).default("keep").describe("keep: run `stages` on what it selects; drop: drop it"),
      stages: z
        .array(z.record(z.string(), z.unknown()))
        .default([])
        .describe("stages (as in pipeline_stages) run on the entries the selector selects"),
      pipeline_name: z.string().optional().describe("a name for the nested stages (Promtail's; not used)"),
      drop_counter_reason: z.string().min(1).default("match_stage").describe("reason drops are counted under"),
    })
    .refine((c) => c.action === "keep" || c.stages.length === 0, "stages only go with action keep")
    .describe("run stages on, or drop, the entries a LogQL selector selects"),
  compile(config, context) {
    const selects = compileSelector(config.selector);
    if (config.action === "drop") {
      const drop = dropped(config.drop_counter_reason);
      return (entry) => (selects(entry.labels, entry.line) ? drop : undefined);
    }
    const nested = context.nested(config.stages);
    return (entry) => (selects(entry.labels, entry.line) ? nested(entry) : undefined);
  },
});
