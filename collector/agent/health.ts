import type { Registry } from "prom-client";
import type { Config } from "../../config.js";
import type { HealthCounter } from "../../proto/fleet.js";
import type { ComponentHealth } from "../../proto/opamp.js";

// The collector's health as its OpAMP agent reports it (ComponentHealth): the receivers, the disk buffer (fill),
// the shipper (lag, retries) and the configuration, each a component, with the collector's counters as
// attributes, read from its own metrics. The fleet server's rollout gates compare these counters between the
// nodes a wave updated and the others.

const COUNTERS: Record<HealthCounter, string> = {
  entries_accepted: "bifrost_collector_entries_accepted_total",
  requests_rejected: "bifrost_collector_requests_rejected_total",
  batches_dropped: "bifrost_collector_batches_dropped_total",
  ship_retries: "bifrost_collector_ship_retries_total",
  batches_shipped: "bifrost_collector_batches_shipped_total",
};

/** Above this share of its budget the disk buffer reports itself unhealthy. */
const FULL_SHARE = 0.9;

async function total(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

export interface HealthInput {
  registry: Registry;
  config: Config;
  startedUnixNano: bigint;
  /** The collector runs (its listeners are up); false while a configuration is being swapped in or failed. */
  running: boolean;
  /** Why it does not run, or the last configuration problem. */
  lastError: string;
  /** Which configuration runs: "local", or the remote hash. */
  configStatus: string;
}

export async function collectorHealth(input: HealthInput): Promise<ComponentHealth> {
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const values: Record<string, number> = {};
  for (const [key, name] of Object.entries(COUNTERS)) values[key] = await total(input.registry, name);
  const bufferBytes = await total(input.registry, "bifrost_collector_buffer_bytes");
  const lag = await total(input.registry, "bifrost_collector_buffer_batches");
  const budget = input.config.collector.wal.max_bytes;
  const fill = Math.min(1, bufferBytes / budget);
  values["buffer_bytes"] = bufferBytes;
  values["buffer_fill"] = Math.round(fill * 10_000) / 10_000;
  values["shipper_lag_batches"] = lag;
  const component = (healthy: boolean, status: string, lastError = ""): ComponentHealth => ({
    healthy,
    status,
    lastError,
    statusTimeUnixNano: nowNs,
    startTimeUnixNano: input.startedUnixNano,
  });
  const bufferHealthy = fill < FULL_SHARE || input.config.collector.wal.when_full === "drop_oldest";
  return {
    healthy: input.running && bufferHealthy,
    startTimeUnixNano: input.startedUnixNano,
    status: input.running ? "running" : "not running",
    lastError: input.lastError,
    statusTimeUnixNano: nowNs,
    components: {
      receivers: component(input.running, input.running ? "listening" : "stopped"),
      disk_buffer: component(
        bufferHealthy,
        `${(fill * 100).toFixed(1)}% of ${budget} bytes`,
        bufferHealthy ? "" : "the disk buffer is nearly full",
      ),
      shipper: component(true, `${lag} batch(es) waiting, ${values["ship_retries"]} retries`),
      config: component(input.lastError === "", input.configStatus, input.lastError),
    },
    attributes: values,
  };
}
