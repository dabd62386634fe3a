import { journalSchema } from "./journal/config.js";
import { kubernetesSchema } from "./kubernetes/config.js";
import type { SchemaHelpers } from "./schema-helpers.js";
import { syslogSchema } from "./syslog/config.js";

/** The configuration keys of the collector's log inputs that live beside them: `collector.syslog`, `collector.journal`, `collector.kubernetes`. */
export function logInputSchemas(h: SchemaHelpers) {
  return {
    syslog: syslogSchema(h),
    journal: journalSchema(h),
    kubernetes: kubernetesSchema(h),
  };
}
