import { collectDefaultMetrics, Registry } from "prom-client";

/** One registry per process: in `bifrost all` every component's metrics appear on each /metrics. */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "bifrost_" });
  return registry;
}

/** The Prometheus text exposition of `registry`, with its content type. */
export async function exposition(registry: Registry): Promise<{ body: string; contentType: string }> {
  return { body: await registry.metrics(), contentType: registry.contentType };
}
