import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createRegistry } from "./common/metrics.js";
import type { Config } from "./config.js";
import type { Start } from "./runtime.js";

// `bifrost all`: every role in one process, wired here and nowhere else. There is no Kafka: the collector's
// shipper hands its disk-buffer records to the aggregator's decoding in process (aggregator/store-transport.ts),
// which writes them to the process's store; they leave the disk buffer only after the store write, so the
// collector's guarantees hold unchanged. The aggregator therefore neither consumes Kafka nor takes batches over
// HTTP and only listens (/ready, /metrics). The query service reads the same store, and its central push writes
// to it as in `bifrost query`. The fleet server keeps its records in the same store.

/** The collector of `bifrost all`: its shipper writes into the process's store (runtime.store). */
export const startEmbeddedCollector: Start = async (runtime) => {
  const store = runtime.store;
  if (store === undefined) throw new Error("bifrost all needs the process's store");
  const { config } = runtime;
  const { StoreTransport } = await import("./aggregator/store-transport.js");
  const { deadLetterCounter, FileDeadLetters } = await import("./aggregator/dead-letters.js");
  const { startManagedCollector } = await import("./collector/agent/index.js");
  return startManagedCollector(runtime, {
    transport: () =>
      new StoreTransport({
        store,
        maxBatchBytes: config.aggregator.max_batch_bytes,
        limits: config.aggregator.limits,
        deadLetters: new FileDeadLetters(config.aggregator.dead_letter_dir),
        deadLetterCounter: deadLetterCounter(runtime.registry),
        log: runtime.log.child({ component: "aggregator" }),
      }),
  });
};

/**
 * A component with a registry of its own: each listener serves its own component's metrics and only the query
 * listener the process's, so that scraping every listener gives each series once.
 */
const ownMetrics =
  (start: Start): Start =>
  (runtime) =>
    start({ ...runtime, registry: createRegistry({ processMetrics: false }) });

/** The components of `bifrost all`, in start order. */
export const ALL_IN_ONE: Start[] = [
  ownMetrics(startEmbeddedCollector),
  ownMetrics(async (runtime) => {
    const { config } = runtime;
    const { startAggregator } = await import("./aggregator/index.js");
    return startAggregator({
      ...runtime,
      config: {
        ...config,
        aggregator: {
          ...config.aggregator,
          consume_kafka: false,
          http_ingest: { ...config.aggregator.http_ingest, enabled: false },
        },
      },
    });
  }),
  async (runtime) => (await import("./query/index.js")).startQuery(runtime),
  ownMetrics(async (runtime) => (await import("./fleet/index.js")).startFleet(runtime, { freePortIfTaken: true })),
];

/** `bifrost all` keeps its data in the embedded store unless storage.engine names another. */
export const ALL_IN_ONE_STORE = "embedded";

/** The sample rule file of the demo, beside the package's other examples. */
const DEMO_RULES = fileURLToPath(new URL("../deploy/rules/demo.yaml", import.meta.url));

/**
 * `bifrost all` with `all.demo`: a source of data from the first second (this machine's host metrics, Bifrost's
 * own logs) and rules over it, so that a newcomer sees something in Grafana without configuring anything.
 * Returns what it turned on, for the banner.
 */
export function applyDemo(config: Config): string[] {
  config.collector.host_metrics.enabled = true;
  const what = [
    `host metrics of this machine every ${config.collector.host_metrics.interval_ms / 1000} s`,
    `Bifrost's own logs as {job="bifrost"}`,
  ];
  const ruler = config.query.ruler;
  if (ruler.rule_files.length === 0 && ruler.rules_dir === undefined && existsSync(DEMO_RULES)) {
    ruler.rule_files = [DEMO_RULES];
    what.push(`rules of ${DEMO_RULES}`);
  }
  return what;
}
