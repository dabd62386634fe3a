import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * prom-client's gauges that end in `_total`, which promtool and OpenMetrics reserve for counters. Each is the
 * sum over `type` of the gauge of the same name without the suffix (`sum(bifrost_nodejs_active_handles)`), so
 * nothing is lost without them.
 */
const TOTAL_GAUGES = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

/**
 * A registry for one component's metrics; with `processMetrics`, also the process's own (CPU, memory, event
 * loop, GC). `bifrost all` gives each listener its component's registry and only one of them the process
 * metrics, so that scraping all three listeners gives every series once.
 */
export function createRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: "bifrost_" });
    for (const name of TOTAL_GAUGES) registry.removeSingleMetric(`bifrost_${name}`);
  }
  return registry;
}

/** The Prometheus text exposition of `registry`, with its content type. */
export async function exposition(registry: Registry): Promise<{ body: string; contentType: string }> {
  return { body: await registry.metrics(), contentType: registry.contentType };
}
