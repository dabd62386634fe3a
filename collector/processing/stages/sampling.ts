import { z } from "zod";
import { number } from "../../../common/config.js";
import { defineStage, dropped } from "../pipeline/stage.js";

// Promtail's `sampling` stage: each entry is kept with probability `rate`. Beyond Promtail, a kept entry
// carries the rate as structured metadata `sampling_rate`, so that counts over sampled lines can be scaled
// back (count_over_time(...) / rate).

export const SAMPLING_RATE = "sampling_rate";

export const samplingStage = defineStage({
  schema: z
    .strictObject({
      rate: number(z.number().min(0).max(1)).describe("share of entries kept, 0 to 1"),
      drop_counter_reason: z.string().min(1).default("sampling").describe("reason the drops are counted under"),
    })
    .describe("keep a random share of entries"),
  compile(config, context) {
    const drop = dropped(config.drop_counter_reason);
    const rate = String(config.rate);
    return (entry) => {
      if (context.random() >= config.rate) return drop;
      entry.metadata[SAMPLING_RATE] = rate;
      return undefined;
    };
  },
});
