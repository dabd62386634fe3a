import { createHash } from "node:crypto";
import { compileTemplate } from "../../../common/go/template/executor.js";
import type { TemplateExtension } from "../../../common/go/template/parser.js";
import type { TemplateFunction } from "../../../common/go/template/signature.js";
import type { Labels } from "../../../proto/labels.js";
import { type PipelineEntry, textOf } from "../pipeline/stage.js";

// The Go templates of the `template` and `replace` stages: Loki's template engine (common/go/template) and
// function table, plus the two hashes Promtail's template stage adds. The data is the extracted map as text,
// with `.Value` the value the stage works on.

function hashOf(algorithm: string): TemplateFunction {
  return {
    params: ["string", "string"],
    call: ([a, b]) =>
      createHash(algorithm)
        .update(`${a as string}${b as string}`)
        .digest("hex"),
  };
}

const PROMTAIL_FUNCTIONS: TemplateExtension = {
  variables: [],
  functions: new Map([
    ["Hash", hashOf("sha3-256")],
    ["Sha2Hash", hashOf("sha256")],
  ]),
};

/** A template of a stage, compiled once: renders with the entry's extracted map and `.Value`. */
export function compileStageTemplate(name: string, source: string): (entry: PipelineEntry, value: string) => string {
  if (!source.includes("{{")) return () => source;
  const template = compileTemplate(name, source, PROMTAIL_FUNCTIONS);
  return (entry, value) => {
    const data: Labels = Object.create(null);
    for (const key in entry.extracted) {
      const text = textOf(entry.extracted[key]);
      if (text !== undefined) data[key] = text;
    }
    data["Value"] = value;
    return template.execute(data, { line: entry.line, tsNs: entry.timeUnixNano });
  };
}

/** A template's syntax error as a configuration problem, or undefined. */
export function templateProblem(source: string): string | undefined {
  try {
    compileTemplate("check", source, PROMTAIL_FUNCTIONS);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
