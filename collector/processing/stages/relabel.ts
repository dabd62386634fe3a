import { z } from "zod";
import { compileRelabelConfigs, relabel, relabelConfigSchema } from "../relabel.js";
import { defineStage, dropped } from "../pipeline/stage.js";

// Prometheus's relabel_configs on an entry's stream labels (collector/processing/relabel.ts, the scrape input's
// implementation): a `keep` or `drop` that removes the stream drops the entry.

export const relabelStage = defineStage({
  schema: z
    .array(relabelConfigSchema())
    .min(1)
    .describe("Prometheus relabel_configs applied to the stream labels; a dropped stream drops the entry"),
  compile(configs) {
    const rules = compileRelabelConfigs(configs);
    const drop = dropped("relabel");
    return (entry) => {
      const labels = relabel(entry.labels, rules);
      if (labels === null) return drop;
      entry.labels = labels;
      return undefined;
    };
  },
});
