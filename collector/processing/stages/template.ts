import { z } from "zod";
import { defineStage, failed, textOf } from "../pipeline/stage.js";
import { compileStageTemplate, templateProblem } from "./stage-template.js";

// Promtail's `template` stage: a Go template rendered with the extracted map (`.Value` is the source's
// value) and written back to the source key, created if it was absent.

export const templateStage = defineStage({
  schema: z
    .strictObject({
      source: z.string().min(1).describe("extracted key the result is written to; `.Value` is its current value"),
      template: z
        .string()
        .superRefine((source, ctx) => {
          const problem = templateProblem(source);
          if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
        })
        .describe("Go template over the extracted map"),
    })
    .describe("set an extracted value from a Go template"),
  compile(config) {
    const render = compileStageTemplate("template", config.template);
    const error = failed("template_error");
    return (entry) => {
      try {
        entry.extracted[config.source] = render(entry, textOf(entry.extracted[config.source]) ?? "");
        return undefined;
      } catch {
        return error;
      }
    };
  },
});
