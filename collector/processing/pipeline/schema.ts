import { z } from "zod";
import { STAGES, type StageName } from "./registry.js";

// `pipeline_stages:` as Promtail writes it: a list of one-key maps, the key naming the stage.

const NAMES = Object.keys(STAGES) as StageName[];

type StageShape = { [K in StageName]: z.ZodOptional<(typeof STAGES)[K]["schema"]> };

export function pipelineStagesSchema() {
  const shape = Object.fromEntries(NAMES.map((name) => [name, STAGES[name].schema.optional()])) as StageShape;
  return z
    .array(
      z
        .strictObject(shape)
        .refine(
          (stage) => Object.keys(stage).length === 1,
          `expected exactly one stage per list item, one of: ${NAMES.join(", ")}`,
        )
        .superRefine((stage, ctx) => {
          // A match stage's nested stages, checked as a list of their own (the schema cannot name itself).
          const nested = stage.match?.stages;
          if (nested === undefined || nested.length === 0) return;
          const result = pipelineStagesSchema().safeParse(nested);
          if (!result.success)
            for (const issue of result.error.issues)
              ctx.addIssue({ ...issue, path: ["match", "stages", ...issue.path] } as never);
        }),
    )
    .describe("processing stages each entry goes through, in order, as Promtail's pipeline_stages");
}

export type PipelineStagesConfig = z.output<ReturnType<typeof pipelineStagesSchema>>;
