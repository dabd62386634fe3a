import { readFileSync } from "node:fs";
import { Kafka, type KafkaConfig, logLevel, type SASLOptions } from "kafkajs";
import type { KafkaClusterConfig } from "./config-sections.js";
import type { Logger } from "./log.js";

const LEVELS: Record<number, "error" | "warn" | "info" | "debug"> = {
  [logLevel.ERROR]: "error",
  [logLevel.WARN]: "warn",
  [logLevel.INFO]: "info",
  [logLevel.DEBUG]: "debug",
};

/**
 * A kafkajs client from the `kafka` config section, logging through pino. `retries` bounds kafkajs's own
 * retries of connections and metadata requests (finding a group's coordinator among them), at most
 * `maxRetryTime` apart: a caller that retries with a backoff of its own (the collector's shipper) takes few,
 * so that an outage reaches it, and its /ready, within seconds; a consumer group member (the aggregator)
 * takes short waits, so that it finds a moved coordinator soon after the cluster elected it.
 */
export function kafkaClient(config: KafkaClusterConfig, log: Logger, retries = 8, maxRetryTime = 30_000): Kafka {
  const tls = config.tls;
  const options: KafkaConfig = {
    clientId: config.client_id,
    brokers: config.brokers,
    // kafkajs logs retriable broker errors (a coordinator still loading, a leader moving) at error level; they
    // are routine, so only warnings and worse from it reach the log, at warn.
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      log[entry.level === logLevel.ERROR ? "warn" : (LEVELS[entry.level] ?? "info")](
        { kafka: entry.namespace, ...rest },
        message,
      );
    },
    retry: { initialRetryTime: 300, retries, maxRetryTime },
  };
  if (tls.enabled) {
    options.ssl = {
      rejectUnauthorized: !tls.insecure_skip_verify,
      ...(tls.ca_file ? { ca: [readFileSync(tls.ca_file, "utf8")] } : {}),
      ...(tls.cert_file ? { cert: readFileSync(tls.cert_file, "utf8") } : {}),
      ...(tls.key_file ? { key: readFileSync(tls.key_file, "utf8") } : {}),
    };
  }
  if (config.sasl) {
    options.sasl = {
      mechanism: config.sasl.mechanism,
      username: config.sasl.username,
      password: config.sasl.password,
    } as SASLOptions;
  }
  return new Kafka(options);
}
