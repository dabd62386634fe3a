import { z } from "zod";
import { bytes } from "../../../common/config.js";
import type { Labels } from "../../../proto/labels.js";
import { defineStage, type PipelineEntry, textOf } from "../pipeline/stage.js";

// Promtail's `truncate` stage: the line, stream labels, structured metadata or extracted values longer than
// `limit` bytes are cut (at a character boundary) so that with `suffix` they are `limit` bytes at most.

const SOURCE_TYPES = ["line", "label", "structured_metadata", "extracted"] as const;

/** `text` cut to `limit` bytes with `suffix`, or undefined when it fits. */
export function truncated(text: string, limit: number, suffix: string): string | undefined {
  if (text.length <= limit / 3 || Buffer.byteLength(text) <= limit) return undefined;
  const room = Math.max(0, limit - Buffer.byteLength(suffix));
  const cut = Buffer.from(text)
    .subarray(0, room)
    .toString("utf8")
    .replace(/\uFFFD$/, "");
  return cut + suffix;
}

export const truncateStage = defineStage({
  schema: z
    .strictObject({
      limit: bytes(z.number().int().positive()).describe("most bytes kept, the suffix included"),
      suffix: z.string().default("").describe("appended to what was cut, such as `...`"),
      sources: z
        .array(
          z
            .strictObject({
              type: z.enum(SOURCE_TYPES).default("line").describe(SOURCE_TYPES.join(", ")),
              name: z
                .string()
                .min(1)
                .optional()
                .describe("the label, metadata or extracted key (all of them if absent)"),
            })
            .refine((s) => s.type !== "line" || s.name === undefined, "a line source has no name"),
        )
        .default([{ type: "line" }])
        .describe("what is truncated; the line when absent"),
    })
    .describe("cut lines, labels, metadata or extracted values to a length"),
  compile(config) {
    const { limit, suffix } = config;
    const cutAll = (map: Labels | Record<string, unknown>, name: string | undefined) => {
      for (const key of name === undefined ? Object.keys(map) : [name]) {
        const text = textOf(map[key]);
        const cut = text === undefined ? undefined : truncated(text, limit, suffix);
        if (cut !== undefined) map[key] = cut;
      }
    };
    const steps = config.sources.map((source): ((entry: PipelineEntry) => void) => {
      switch (source.type) {
        case "line":
          return (entry) => {
            entry.line = truncated(entry.line, limit, suffix) ?? entry.line;
          };
        case "label":
          return (entry) => cutAll(entry.labels, source.name);
        case "structured_metadata":
          return (entry) => cutAll(entry.metadata, source.name);
        case "extracted":
          return (entry) => cutAll(entry.extracted, source.name);
      }
    });
    return (entry) => {
      for (const step of steps) step(entry);
      return undefined;
    };
  },
});
