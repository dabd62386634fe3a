import { z } from "zod";
import { LogfmtDecoder } from "../../../common/logfmt-decoder.js";
import { defineStage, failed, sourceText } from "../pipeline/stage.js";

// Promtail's `logfmt` stage: the line (or an extracted value) read as logfmt pairs, and the mapped keys
// extracted. The decoder is Loki's (common/logfmt-decoder.ts): a bad pair is skipped, not the line.

export const logfmtStage = defineStage({
  schema: z
    .strictObject({
      mapping: z
        .record(z.string().min(1), z.string().nullable())
        .refine((map) => Object.keys(map).length > 0, "expected at least one key")
        .describe("extracted key: logfmt key (empty: the same name)"),
      source: z.string().min(1).optional().describe("extracted value to parse instead of the line"),
    })
    .describe("parse the line as logfmt and extract the mapped keys"),
  compile(config) {
    // logfmt key -> the extracted keys it fills
    const wanted = new Map<string, string[]>();
    for (const [name, key] of Object.entries(config.mapping)) {
      const from = key || name;
      wanted.set(from, [...(wanted.get(from) ?? []), name]);
    }
    const decoder = new LogfmtDecoder();
    const noSource = failed("missing_source");
    return (entry) => {
      const text = sourceText(entry, config.source);
      if (text === undefined) return noSource;
      decoder.reset(text);
      while (!decoder.eol()) {
        if (!decoder.scan()) continue;
        const names = wanted.get(decoder.key);
        if (names) for (const name of names) entry.extracted[name] = decoder.value;
      }
      return undefined;
    };
  },
});
