import type { Config } from "../../config.js";
import type { Logger } from "../../common/log.js";
import type { Store } from "../../storage/store.js";
import { Ruler } from "./ruler.js";

/** The ruler as `query.ruler` configures it; without rule files it only answers the rules API with no groups. */
export function rulerFromConfig(config: Config, store: Store, log: Logger): Ruler {
  const { ruler, default_tenant, limits } = config.query;
  return new Ruler({
    store,
    log,
    ruleFiles: ruler.rule_files,
    ...(ruler.rules_dir !== undefined ? { rulesDir: ruler.rules_dir } : {}),
    tenants: ruler.tenants.length > 0 ? ruler.tenants : [default_tenant],
    defaultIntervalMs: ruler.evaluation_interval_ms,
    pollIntervalMs: ruler.poll_interval_ms,
    outageToleranceMs: ruler.outage_tolerance_ms,
    externalURL: ruler.external_url,
    maxSeries: limits.max_query_series,
  });
}
