import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { ClickHouseConfig, StorageConfig } from "../common/config-sections.js";
import type { Logger } from "../common/log.js";
import { ClickHouseStore } from "./clickhouse.js";
import { DuckDBStore } from "./duckdb.js";
import type { Store } from "./store.js";
import { StoreError } from "./values.js";
import { backoffDelay } from "../common/backoff.js";

export type StoreEngine = "clickhouse" | "embedded";

/**
 * Opens the store that `storage.engine` names; `auto` takes the process's default, the embedded store for
 * `bifrost all` (nothing else to install) and ClickHouse otherwise.
 */
export function openStore(
  config: { storage: StorageConfig; clickhouse: ClickHouseConfig },
  auto: StoreEngine,
  log: Logger,
): { store: Store; engine: StoreEngine; where: string } {
  const retention = config.storage.retention;
  const engine = config.storage.engine === "auto" ? auto : config.storage.engine;
  if (engine === "embedded") {
    mkdirSync(config.storage.path, { recursive: true });
    const path = join(config.storage.path, "bifrost.duckdb");
    return { store: new DuckDBStore({ path, retention, log }), engine: "embedded", where: path };
  }
  const { url, username, password, database, cluster, tls } = config.clickhouse;
  const store = new ClickHouseStore({
    url,
    username,
    password,
    database,
    retention,
    log,
    ...(cluster ? { cluster } : {}),
    ...(tls.enabled && tls.ca_file
      ? { tls: { ca_file: tls.ca_file, cert_file: tls.cert_file, key_file: tls.key_file } }
      : {}),
  });
  return { store, engine: "clickhouse", where: `${url}/${database}` };
}

/**
 * Migrates the store in the background, retrying with backoff until it succeeds, so that a process can start
 * (and answer /ready with the reason) before its database is up, reachable, or accepts its credentials. A
 * failure that is not a connection failure (a refused login, a database still being set up) is retried too,
 * at longer intervals and logged as an error: it may need an operator, and is fixed without a restart.
 */
export class StoreStartup {
  private state: string | null = "schema migration has not finished";
  private stopped = false;
  private interrupt: (() => void) | undefined;
  readonly done: Promise<void>;

  constructor(store: Store, log: Logger) {
    this.done = (async () => {
      for (let attempt = 1; !this.stopped; attempt++) {
        try {
          await store.migrate();
          this.state = null;
          return;
        } catch (err) {
          const transient = err instanceof StoreError && err.transient;
          const delay = Math.round(backoffDelay(attempt, transient ? 1_000 : 5_000, transient ? 30_000 : 60_000));
          const message = (err as Error).message;
          this.state = transient
            ? `database unreachable (attempt ${attempt}, next in ${Math.ceil(delay / 1000)} s): ${message}`
            : `schema migration failed (attempt ${attempt}, next in ${Math.ceil(delay / 1000)} s): ${message}`;
          if (transient)
            log.warn({ err, attempt, delay_ms: delay }, "database unreachable, retrying the schema migration");
          else log.error({ err, attempt, delay_ms: delay }, "schema migration failed, retrying");
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, delay);
            this.interrupt = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
      }
    })();
  }

  /** null when migrated, otherwise why the store is not ready. */
  readiness(): string | null {
    return this.state;
  }

  stop(): void {
    this.stopped = true;
    this.interrupt?.();
  }
}

/**
 * The embedded store has no TTL of its own: delete what is past retention at start and then hourly.
 * ClickHouse's TTLs do this for the ClickHouse store.
 */
export function scheduleRetention(store: Store, log: Logger, everyMs = 3_600_000): () => void {
  const run = () =>
    store
      .enforceRetention(Date.now())
      .catch((err: unknown) => log.warn({ err }, "retention run failed; retrying at the next run"));
  void run();
  const timer = setInterval(run, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
