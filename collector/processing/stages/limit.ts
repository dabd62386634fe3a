import { z } from "zod";
import { boolean, number } from "../../../common/config.js";
import { persistedLabelsText } from "../../../proto/labels.js";
import { defineStage, dropped } from "../pipeline/stage.js";
import { labelName } from "./schema-parts.js";

// Promtail's `limit` stage: a token bucket of `rate` entries per second and `burst` entries. Promtail has one
// bucket for the stage; here each stream has its own (a runaway stream must not starve the others), or each
// value of `by_label_name` when it is given, up to `max_distinct_labels` buckets (beyond it the oldest are
// forgotten). With `drop`, entries over the rate are dropped and counted (reason rate_limited); without it the
// pipeline waits for tokens, holding the input back as a full disk buffer does.

interface Bucket {
  tokens: number;
  at: number;
}

export const limitStage = defineStage({
  schema: z
    .strictObject({
      rate: number(z.number().positive()).describe("entries per second"),
      burst: number(z.number().int().positive()).describe("entries let through at once"),
      by_label_name: labelName().optional().describe("a bucket per value of this stream label instead of per stream"),
      max_distinct_labels: number(z.number().int().positive())
        .default(10_000)
        .describe("buckets kept; the oldest are forgotten beyond it"),
      drop: boolean().default(false).describe("drop entries over the rate instead of waiting"),
    })
    .describe("cap the rate of entries per stream with a token bucket"),
  compile(config, context) {
    const buckets = new Map<string, Bucket>();
    const limited = dropped("rate_limited");
    return (entry) => {
      const key =
        config.by_label_name !== undefined
          ? (entry.labels[config.by_label_name] ?? "")
          : persistedLabelsText(entry.labels);
      const now = context.now();
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        if (buckets.size >= config.max_distinct_labels) buckets.delete(buckets.keys().next().value!);
        bucket = { tokens: config.burst, at: now };
        buckets.set(key, bucket);
      } else {
        bucket.tokens = Math.min(config.burst, bucket.tokens + ((now - bucket.at) / 1000) * config.rate);
        bucket.at = now;
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return undefined;
      }
      if (config.drop) return limited;
      // Blocking: the token is taken on credit and the entry waits until the bucket has refilled to it.
      bucket.tokens -= 1;
      entry.waitMs = Math.max(entry.waitMs, (-bucket.tokens / config.rate) * 1000);
      return undefined;
    };
  },
});
