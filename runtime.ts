import type { Registry } from "prom-client";
import { Authenticator } from "./common/auth.js";
import type { Config } from "./config.js";
import type { Logger, LogTap } from "./common/log.js";
import { HttpService, type ListeningAddress } from "./common/service.js";
import type { Store } from "./storage/store.js";

// What the process (cli.ts, all.ts) hands each component it starts, and the listener every component has.

/** What every component gets from the process that runs it. */
export interface Runtime {
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

/** Starts one component of the process. */
export type Start = (runtime: Runtime) => Promise<Running>;

/**
 * Starts a component whose process is one HTTP listener, bound and secured as its config section says
 * (`listen`, `tls`); `setup` adds its routes and readiness checks behind the authentication middleware.
 */
export async function startHttpComponent(
  runtime: Runtime,
  role: "collector" | "aggregator" | "query",
  setup: (http: HttpService, log: Logger) => void = () => {},
): Promise<Running> {
  const { config } = runtime;
  const log = runtime.log.child({ component: role });
  const http = new HttpService(role, runtime.registry, log);
  // Requests without X-Scope-OrgID belong to the default tenant while auth is off, as in Loki.
  const defaultTenant = role === "collector" ? config.collector.default_tenant : config.query.default_tenant;
  http.app.use(new Authenticator(config.auth, defaultTenant).middleware());
  if (runtime.store) http.addReadiness("store", runtime.storeReadiness);
  setup(http, log);
  const address = await http.listen(config[role].listen, config[role].tls, role === "query");
  return { role, address, stop: () => http.close() };
}
