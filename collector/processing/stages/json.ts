import { compile as compileJmespath, TreeInterpreter } from "@jmespath-community/jmespath";
import { z } from "zod";
import { boolean } from "../../../common/config.js";
import { defineStage, dropped, failed, sourceText } from "../pipeline/stage.js";

// Promtail's `json` stage: each expression is JMESPath (@jmespath-community/jmespath, a superset of the
// specification go-jmespath implements) evaluated on the line, or on an extracted value, and its result extracted under the
// expression's key. An empty expression is the key itself. Numbers, strings and booleans are kept as they are;
// objects and arrays as their JSON text, as Promtail marshals them; a null result extracts nothing.

const expressions = z
  .record(z.string().min(1), z.string().nullable())
  .refine((map) => Object.keys(map).length > 0, "expected at least one expression")
  .superRefine((map, ctx) => {
    for (const [key, expression] of Object.entries(map))
      try {
        compileJmespath(expression || key);
      } catch (err) {
        ctx.addIssue({ code: "custom", path: [key], message: `invalid JMESPath: ${(err as Error).message}` });
      }
  });

export const jsonStage = defineStage({
  schema: z
    .strictObject({
      expressions: expressions.describe("extracted key: JMESPath expression (empty: the key itself)"),
      source: z.string().min(1).optional().describe("extracted value to parse instead of the line"),
      drop_malformed: boolean().default(false).describe("drop entries that are not JSON"),
    })
    .describe("parse the line as JSON and extract values with JMESPath expressions"),
  compile(config) {
    const compiled = Object.entries(config.expressions).map(
      ([key, expression]) => [key, compileJmespath(expression || key)] as const,
    );
    const malformed = config.drop_malformed ? dropped("malformed_json") : failed("malformed_json");
    const noSource = failed("missing_source");
    return (entry) => {
      const text = sourceText(entry, config.source);
      if (text === undefined) return noSource;
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        return malformed;
      }
      if (doc === null || typeof doc !== "object") return malformed;
      for (const [key, ast] of compiled) {
        const value = TreeInterpreter.search(ast, doc as never);
        if (value === null || value === undefined) continue;
        entry.extracted[key] = typeof value === "object" ? JSON.stringify(value) : value;
      }
      return undefined;
    };
  },
});
