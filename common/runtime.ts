import type { Registry } from "prom-client";
import type { Store } from "../storage/store.js";
import pkg from "../package.json" with { type: "json" };
import type { Config } from "./config.js";
import type { Logger, LogTap } from "./log.js";
import type { ListeningAddress } from "./service.js";

export const VERSION: string = pkg.version;

/** What every component gets from the process that runs it. */
export interface Runtime {
  /** The CLI role this process runs: collector, aggregator, query or all. */
  role: string;
  config: Config;
  /** The YAML file the configuration came from, if any: a collector lays remote configurations over it. */
  configFile?: string | undefined;
  log: Logger;
  registry: Registry;
  /** The process's one store (in `bifrost all` shared by every component); absent for the collector. */
  store?: Store;
  /** null once the store's schema is migrated, otherwise why not. */
  storeReadiness: () => string | null;
  /** Settles once the schema is migrated (retried until then), or when the process stops first (then storeReadiness is not null). */
  storeMigrated: Promise<void>;
  /** The process's own log lines, for the collector to store (`bifrost all` in demo mode). */
  ownLogs?: LogTap;
}

/** A started component: where it listens, and how to stop it cleanly. */
export interface Running {
  role: string;
  address: ListeningAddress;
  /** The collector's OTLP/gRPC listener, when it serves one. */
  otlpGrpc?: ListeningAddress;
  stop(): Promise<void>;
}
