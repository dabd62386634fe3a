import { z } from "zod";
import { bytes, duration } from "../../../common/config.js";
import { compileGoRegexp } from "../../../common/regex.js";
import { defineStage, dropped, textOf } from "../pipeline/stage.js";
import { goRegexp } from "./schema-parts.js";

// Promtail's `drop` stage: an entry is dropped when every condition given holds: the extracted `source`
// values (joined by `separator`) equal `value` or match `expression` (the line does when no source is given),
// the entry is older than `older_than`, its line longer than `longer_than` bytes. A source that is absent
// keeps the entry. Drops are counted under `drop_counter_reason`.

export const dropStage = defineStage({
  schema: z
    .strictObject({
      source: z
        .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
        .optional()
        .describe("extracted key, or keys whose values are joined by `separator`"),
      separator: z.string().default(";").describe("between the values of several sources"),
      expression: goRegexp().optional().describe("RE2 regular expression (unanchored) on the source or the line"),
      value: z.string().optional().describe("the source's exact value"),
      older_than: duration(z.number().int().positive()).optional().describe("drop entries older than this"),
      longer_than: bytes(z.number().int().positive()).optional().describe("drop lines longer than this many bytes"),
      drop_counter_reason: z.string().min(1).default("drop_stage").describe("reason the drop is counted under"),
    })
    .refine((c) => !(c.expression !== undefined && c.value !== undefined), "expression and value exclude each other")
    .refine((c) => c.value === undefined || c.source !== undefined, "value needs a source")
    .refine(
      (c) =>
        c.source !== undefined ||
        c.expression !== undefined ||
        c.older_than !== undefined ||
        c.longer_than !== undefined,
      "expected at least one of source, expression, older_than and longer_than",
    )
    .describe("drop entries matching every condition given"),
  compile(config, context) {
    const sources =
      config.source === undefined ? [] : typeof config.source === "string" ? [config.source] : config.source;
    const regex = config.expression !== undefined ? compileGoRegexp(config.expression) : undefined;
    const olderNs = config.older_than !== undefined ? BigInt(config.older_than) * 1_000_000n : undefined;
    const drop = dropped(config.drop_counter_reason);
    const longer = config.longer_than;
    return (entry) => {
      if (olderNs !== undefined && entry.timeUnixNano >= BigInt(context.now()) * 1_000_000n - olderNs) return undefined;
      if (longer !== undefined && entry.line.length <= longer && Buffer.byteLength(entry.line) <= longer)
        return undefined;
      if (sources.length > 0) {
        const values: string[] = [];
        for (const source of sources) {
          const value = textOf(entry.extracted[source]);
          if (value === undefined) return undefined;
          values.push(value);
        }
        const joined = values.join(config.separator);
        if (config.value !== undefined && joined !== config.value) return undefined;
        if (regex !== undefined && !regex.test(joined)) return undefined;
      } else if (regex !== undefined && !regex.test(entry.line)) return undefined;
      return drop;
    };
  },
});
