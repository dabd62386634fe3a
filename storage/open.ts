import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { ClickHouseConfig, StorageConfig } from "../common/config-sections.js";
import type { Logger } from "../common/log.js";
import { ClickHouseStore } from "./clickhouse.js";
import { DuckDBStore } from "./duckdb.js";
import type { Store } from "./store.js";
import { StoreError } from "./values.js";

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
 * Migrates the store in the background, retrying while the database is unreachable, so that a process can
 * start (and answer /ready with the reason) before its database is up.
 */
export class StoreStartup {
  private state: string | null = "schema migration has not finished";
  private stopped = false;
  readonly done: Promise<void>;

  constructor(store: Store, log: Logger) {
    this.done = (async () => {
      for (let attempt = 1; !this.stopped; attempt++) {
        try {
          await store.migrate();
          this.state = null;
          return;
        } catch (err) {
          if (!(err instanceof StoreError && err.transient)) {
            this.state = `schema migration failed: ${(err as Error).message}`;
            log.error({ err }, "schema migration failed");
            return;
          }
          this.state = `database unreachable (attempt ${attempt}): ${err.message}`;
          log.warn({ err, attempt }, "database unreachable, retrying the schema migration");
          await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * attempt)));
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
