import { z } from "zod";
import { TENANT_ID } from "../../../common/config.js";
import { defineStage, failed, textOf } from "../pipeline/stage.js";

// Promtail's `output` stage (the line becomes an extracted value) and `tenant` stage (the entry goes to the
// tenant a fixed value, an extracted value or a stream label names).

export const outputStage = defineStage({
  schema: z
    .strictObject({ source: z.string().min(1).describe("extracted key whose value becomes the line") })
    .describe("replace the line with an extracted value"),
  compile(config) {
    const missing = failed("missing_source");
    return (entry) => {
      const value = textOf(entry.extracted[config.source]);
      if (value === undefined) return missing;
      entry.line = value;
      return undefined;
    };
  },
});

export const tenantStage = defineStage({
  schema: z
    .strictObject({
      source: z.string().min(1).optional().describe("extracted key holding the tenant"),
      label: z.string().min(1).optional().describe("stream label holding the tenant"),
      value: z.string().regex(TENANT_ID, "expected a tenant id").optional().describe("the tenant"),
    })
    .refine(
      (c) => [c.source, c.label, c.value].filter((v) => v !== undefined).length === 1,
      "expected exactly one of source, label and value",
    )
    .describe("send the entry to another tenant"),
  compile(config) {
    const missing = failed("missing_source");
    const invalid = failed("invalid_tenant");
    return (entry) => {
      const tenant =
        config.value ??
        (config.label !== undefined ? entry.labels[config.label] : textOf(entry.extracted[config.source!]));
      if (tenant === undefined || tenant === "") return missing;
      if (!TENANT_ID.test(tenant)) return invalid;
      entry.tenant = tenant;
      return undefined;
    };
  },
});
