import { z } from "zod";
import { list } from "../../../common/config.js";
import type { Labels } from "../../../proto/labels.js";
import { LABEL_NAME } from "../../../proto/validate.js";
import { defineStage, failed, type StageRun, textOf } from "../pipeline/stage.js";
import { labelName, labelSources } from "./schema-parts.js";

// Promtail's label stages: `labels` and `structured_metadata` copy extracted values into stream labels or
// structured metadata (an empty value removes nothing and sets nothing, as in Promtail), `static_labels` sets
// fixed ones, `labeldrop` and `labelallow` remove by name.

function copyExtracted(
  config: Record<string, string | null>,
  target: (entry: { labels: Labels; metadata: Labels }) => Labels,
): StageRun {
  const pairs = Object.entries(config).map(([name, source]) => [name, source || name] as const);
  const missing = failed("missing_source");
  return (entry) => {
    let absent = false;
    for (const [name, source] of pairs) {
      const value = textOf(entry.extracted[source]);
      if (value === undefined || value === "") absent = true;
      else target(entry)[name] = value;
    }
    return absent ? missing : undefined;
  };
}

export const labelsStage = defineStage({
  schema: labelSources().describe("stream label: extracted key it takes its value from (empty: the same name)"),
  compile: (config) => copyExtracted(config, (entry) => entry.labels),
});

export const structuredMetadataStage = defineStage({
  schema: labelSources().describe(
    "structured metadata name: extracted key it takes its value from (empty: the same name)",
  ),
  compile: (config) => copyExtracted(config, (entry) => entry.metadata),
});

export const staticLabelsStage = defineStage({
  schema: z
    .record(labelName(), z.string())
    .refine((map) => Object.keys(map).length > 0, "expected at least one label")
    .describe("stream labels set to fixed values"),
  compile(config) {
    const pairs = Object.entries(config).filter(([, value]) => value !== "");
    return (entry) => {
      for (const [name, value] of pairs) entry.labels[name] = value;
      return undefined;
    };
  },
});

export const labelDropStage = defineStage({
  schema: list(z.string().regex(LABEL_NAME, "expected a label name")).describe("stream labels removed"),
  compile(names) {
    return (entry) => {
      for (const name of names) delete entry.labels[name];
      return undefined;
    };
  },
});

export const labelAllowStage = defineStage({
  schema: list(z.string().regex(LABEL_NAME, "expected a label name")).describe("the only stream labels kept"),
  compile(names) {
    const allowed = new Set(names);
    return (entry) => {
      for (const name in entry.labels) if (!allowed.has(name)) delete entry.labels[name];
      return undefined;
    };
  },
});
