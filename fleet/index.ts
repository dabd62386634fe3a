import { Authenticator } from "../common/auth.js";
import type { Runtime, Running } from "../runtime.js";
import { HttpService } from "../common/service.js";
import { signingKey } from "../common/signing.js";
import { fleetApiRoutes } from "./api.js";
import { Fleet } from "./fleet.js";
import { SourceWatcher } from "./source-watcher.js";
import { opampRoutes } from "./transport.js";

/**
 * `bifrost fleet`: the OpAMP server of the collector fleet on its own listener (fleet.listen, OpAMP's port 4320):
 * OpAMP over HTTP and WebSocket, the fleet API, /ready and /metrics. Its inventory and progress live in the
 * store; until they are read back, agents are told to come back later.
 */
export interface FleetOptions {
  /**
   * With the default listener's port taken, listen on a free one (the banner shows it): `bifrost all` is one
   * machine's everything, often started more than once side by side (tests, a second checkout).
   */
  freePortIfTaken?: boolean;
}

export async function startFleet(runtime: Runtime, options: FleetOptions = {}): Promise<Running> {
  const { config } = runtime;
  const f = config.fleet;
  const store = runtime.store;
  if (store?.putFleetRecords === undefined || store.fleetRecords === undefined)
    throw new Error("the fleet server needs a store that keeps fleet records");
  const records = { putFleetRecords: store.putFleetRecords.bind(store), fleetRecords: store.fleetRecords.bind(store) };
  const log = runtime.log.child({ component: "fleet" });
  const keySpec = f.keys.find((k) => k.id === f.signing_key_id) ?? (f.signing_key_id === "" ? f.keys[0] : undefined);
  if (keySpec === undefined && f.source_dir !== "")
    log.warn("fleet.keys is empty: Bifrost collectors refuse the unsigned configurations this server offers");
  const fleet = new Fleet({
    store: records,
    registry: runtime.registry,
    log,
    staleAfterMs: f.stale_after_ms,
    forgetAfterMs: f.forget_after_ms,
    lastSeenPersistMs: f.last_seen_persist_ms,
    signingKey: keySpec === undefined ? undefined : signingKey(keySpec),
  });
  let loaded: Fleet | undefined;
  const watcher =
    f.source_dir === ""
      ? undefined
      : new SourceWatcher({
          dir: f.source_dir,
          pollMs: f.poll_interval_ms,
          registry: runtime.registry,
          log,
          onRevision: (revision) => fleet.takeRevision(revision),
        });

  const http = new HttpService("fleet", runtime.registry, log);
  http.app.use(new Authenticator(config.auth, config.query.default_tenant).middleware());
  http.addReadiness("store", runtime.storeReadiness);
  http.addReadiness("fleet state", () => (loaded === undefined ? "reading the fleet's state from the store" : null));
  if (watcher !== undefined) http.addReadiness("fleet source", () => watcher.readiness());
  const closeConnections = opampRoutes(http.app, { fleet: () => loaded, maxMessageBytes: f.max_message_bytes, log });
  fleetApiRoutes(http.app, {
    fleet: () => loaded,
    watcher: () => watcher,
    sourceDir: f.source_dir,
    staleAfterMs: f.stale_after_ms,
  });
  let address;
  try {
    address = await http.listen(f.listen, f.tls, { maxPayload: f.max_message_bytes });
  } catch (err) {
    if (!options.freePortIfTaken || (err as { code?: string }).code !== "EADDRINUSE" || f.listen !== "127.0.0.1:4320")
      throw err;
    log.warn({ listen: f.listen }, "the fleet server's default port is taken; listening on a free one");
    address = await http.listen("127.0.0.1:0", f.tls, { maxPayload: f.max_message_bytes });
  }

  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  const starting = (async () => {
    await runtime.storeMigrated;
    if (runtime.storeReadiness() !== null || stopped) return;
    for (let attempt = 1; !stopped; attempt++) {
      try {
        await fleet.load();
        break;
      } catch (err) {
        log.warn({ err, attempt }, "reading the fleet's state failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * attempt)));
      }
    }
    if (stopped) return;
    loaded = fleet;
    await watcher?.start(fleet.revision(fleet.status.source));
    let ticking = false;
    timers.push(
      setInterval(() => {
        if (ticking) return;
        ticking = true;
        fleet
          .tick()
          .catch((err: unknown) => log.error({ err }, "rollout step failed"))
          .finally(() => (ticking = false));
      }, f.rollout_tick_ms),
      setInterval(() => void fleet.inventory.flush(), f.persist_interval_ms),
    );
    log.info({ agents: fleet.inventory.agents.size, source: f.source_dir || null }, "fleet server ready");
  })();

  return {
    role: "fleet",
    address,
    stop: async () => {
      stopped = true;
      await starting;
      for (const timer of timers) clearInterval(timer);
      await watcher?.stop();
      closeConnections();
      await http.close();
      await fleet.inventory.flush();
    },
  };
}
