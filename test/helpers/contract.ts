import type { Admission } from "../../common/admission.js";
import { admissionFromConfig, contractFromConfig, type IngestContract } from "../../common/ingest-contract.js";
import type { TenantLimits } from "../../common/limits.js";
import { configSchema } from "../../config.js";

/**
 * The ingestion contract and admission budget of receivers under test, from the configuration as `collector`
 * and `node` set it. Old timestamps are accepted unless `collector.limits.reject_old_samples` says otherwise:
 * the receivers' tests send fixed times from the past.
 */
export function receiverContract(
  sections: { collector?: { limits?: object; batch?: object }; node?: object; aggregator?: object } = {},
  tenantLimits?: TenantLimits,
): { contract: IngestContract; admission: Admission } {
  const config = configSchema().parse({
    ...sections,
    collector: { ...sections.collector, limits: { reject_old_samples: false, ...sections.collector?.limits } },
  });
  return {
    contract: contractFromConfig(config, tenantLimits, "shipped"),
    admission: admissionFromConfig(config.collector.limits),
  };
}
