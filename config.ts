import { z } from "zod";
import { aggregatorSection } from "./aggregator/config.js";
import { collectorSection } from "./collector/config.js";
import { boolean, type LoadOptions, loadConfigWith } from "./common/config.js";
import {
  authSection,
  clickhouseSection,
  kafkaSection,
  logSection,
  nodeSection,
  overridesSection,
  schemaParts,
  sharedSchemas,
  storageSection,
  telemetrySection,
} from "./common/config-sections.js";
import { fleetSchema } from "./fleet/config.js";
import { querySection } from "./query/config.js";

// Bifrost's configuration, composed in this one place from the shared sections (common/config-sections.ts) and
// each role's own (collector/config.ts, aggregator/config.ts, query/config.ts); common/config.ts loads and
// validates it. The composition sits beside cli.ts rather than in common/, so that common/ imports no role.
// Sections are documented in this order (docs/configuration.md, generated from the schema).

/** The whole configuration's schema, built anew on each call (common/config-sections.ts sharedSchemas says why). */
export function configSchema() {
  const s = sharedSchemas();
  return z
    .strictObject({
      auth: authSection(),
      log: logSection(s),
      telemetry: telemetrySection(),
      node: nodeSection(),
      kafka: kafkaSection(s),
      clickhouse: clickhouseSection(s),
      storage: storageSection(),
      collector: collectorSection(s),
      aggregator: aggregatorSection(s),
      all: z
        .strictObject({
          demo: boolean()
            .default(true)
            .describe(
              "`bifrost all` only: this machine's host metrics, Bifrost's own logs as {job=\"bifrost\"}, and the sample rules of deploy/rules when query.ruler has none",
            ),
        })
        .prefault({})
        .describe("`bifrost all`: every part in one process with embedded defaults."),
      query: querySection(s),
      fleet: fleetSchema(schemaParts(s)),
      overrides: overridesSection(),
    })
    .refine((c) => c.collector.batch.max_batch_bytes <= c.aggregator.max_batch_bytes, {
      message: "must not exceed aggregator.max_batch_bytes: the aggregator refuses larger batches",
      path: ["collector", "batch", "max_batch_bytes"],
    });
}

export type Config = z.infer<ReturnType<typeof configSchema>>;

/** Defaults < the YAML file < BIFROST_ environment overrides, validated; throws ConfigError naming each bad key. */
export function loadConfig(options: LoadOptions = {}): Config {
  return loadConfigWith(configSchema(), options);
}
