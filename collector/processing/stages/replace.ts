import { z } from "zod";
import { compileGoRegexp, groupCount, withIndices } from "../../../common/regex.js";
import { defineStage, failed, sourceText } from "../pipeline/stage.js";
import { goRegexp } from "./schema-parts.js";
import { compileStageTemplate, templateProblem } from "./stage-template.js";

// Promtail's `replace` stage: every match of the expression in the line (or an extracted value) has each of
// its capture groups replaced by the rendered `replace` template (`.Value` is the group's text; empty removes
// it), the text around the groups kept. Named groups are also extracted with the text they captured.

export const replaceStage = defineStage({
  schema: z
    .strictObject({
      expression: goRegexp((regex) =>
        groupCount(regex) > 0 ? undefined : "expected at least one capture group",
      ).describe("RE2 regular expression (Go's syntax) whose capture groups are replaced"),
      source: z.string().min(1).optional().describe("extracted value to change instead of the line"),
      replace: z
        .string()
        .default("")
        .superRefine((source, ctx) => {
          const problem = templateProblem(source);
          if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
        })
        .describe("Go template of each group's replacement; `.Value` is the captured text"),
    })
    .describe("replace the capture groups of a regular expression in the line or an extracted value"),
  compile(config) {
    const regex = withIndices(compileGoRegexp(config.expression));
    const render = compileStageTemplate("replace", config.replace);
    const noSource = failed("missing_source");
    const error = failed("template_error");
    return (entry) => {
      const text = sourceText(entry, config.source);
      if (text === undefined) return noSource;
      regex.lastIndex = 0;
      let out = "";
      let last = 0;
      try {
        for (let match = regex.exec(text); match !== null; match = regex.exec(text)) {
          for (const name in match.groups) {
            const value = match.groups[name];
            if (value !== undefined) entry.extracted[name] = value;
          }
          const indices = match.indices!;
          for (let group = 1; group < indices.length; group++) {
            const span = indices[group];
            if (span === undefined || span[0] < last) continue;
            out += text.slice(last, span[0]) + render(entry, match[group]!);
            last = span[1];
          }
          if (match[0] === "") {
            if (regex.lastIndex >= text.length) break;
            regex.lastIndex++;
          }
        }
      } catch {
        return error;
      }
      out += text.slice(last);
      if (config.source === undefined) entry.line = out;
      else entry.extracted[config.source] = out;
      return undefined;
    };
  },
});
