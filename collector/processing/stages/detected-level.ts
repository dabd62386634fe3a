import { z } from "zod";
import { list, number } from "../../../common/config.js";
import { DEFAULT_LEVEL_FIELDS, DETECTED_LEVEL, entryLevel, streamLevel } from "../../../common/detected-level.js";
import { defineStage } from "../pipeline/stage.js";

// Loki's detected_level (common/detected-level.ts) set at the edge: from a level stream label, else from the
// structured metadata, else from the line (JSON, logfmt or a level word), into the structured metadata
// `detected_level` that Grafana colours lines by. An entry that has one keeps it.

export const detectedLevelStage = defineStage({
  schema: z
    .strictObject({
      fields: list(z.string().min(1))
        .default([...DEFAULT_LEVEL_FIELDS])
        .describe("names of a level field, in order of preference (Loki's log_level_fields)"),
      json_max_depth: number(z.number().int()).default(2).describe("how deep a JSON line is searched; 0: no limit"),
    })
    .describe("set structured metadata detected_level as Loki derives it"),
  compile(config) {
    const detection = { fields: config.fields, jsonMaxDepth: config.json_max_depth };
    return (entry) => {
      if (entry.metadata[DETECTED_LEVEL] !== undefined) return undefined;
      entry.metadata[DETECTED_LEVEL] =
        streamLevel(entry.labels, detection) ?? entryLevel(entry.metadata, entry.line, detection);
      return undefined;
    };
  },
});
