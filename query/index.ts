import { admissionFromConfig, contractFromConfig, ingestDefaultsFromConfig } from "../common/ingest-contract.js";
import { TenantLimits } from "../common/limits.js";
import { VERSION } from "../common/version.js";
import { type Runtime, type Running, startHttpComponent } from "../runtime.js";
import { queryActions } from "./actions/index.js";
import { RemediationSink } from "./actions/sink.js";
import { lokiRoutes } from "./loki/api.js";
import { storePushSink } from "./loki/push.js";
import { fleetPageRoutes } from "./fleet-page.js";
import { createNotifier } from "./notifier/index.js";
import { prometheusRoutes } from "./promql/api.js";
import { rulerRoutes } from "./ruler/api.js";
import { rulerFromConfig } from "./ruler/config.js";
import { graphRoute } from "./ruler/graph.js";
import { reportRuleLoading } from "./ruler/metrics.js";

/** The central query service: the Loki- and Prometheus-compatible APIs, the ruler, `/ready` and `/metrics`. */
export async function startQuery(runtime: Runtime): Promise<Running> {
  const startedAtMs = Date.now();
  const store = runtime.store;
  if (store === undefined) throw new Error("the query service needs a store");
  const notifier = await createNotifier(runtime);
  // A refused or failed self-healing action pages like any alert.
  const actions = queryActions(runtime, store, (alert) => notifier.send([alert]));
  const ruler = rulerFromConfig(runtime.config, store, runtime.log.child({ component: "ruler" }));
  ruler.addSink(notifier);
  if (actions) ruler.addSink(new RemediationSink(actions.remediator, runtime.log.child({ component: "remediation" })));
  const tenantLimits = new TenantLimits(runtime.config);
  // Shared by the push route's contract and its sink, which then default each stream once.
  const ingestDefaults = ingestDefaultsFromConfig(runtime.config, "stored");
  const running = await startHttpComponent(runtime, "query", (http, log) => {
    actions?.route(http.app);
    // Grafana's Loki data source asks for this to learn the server's version.
    http.app.get("/loki/api/v1/status/buildinfo", (c) =>
      c.json({ version: VERSION, revision: "", branch: "", buildUser: "", buildDate: "", goVersion: "" }),
    );
    lokiRoutes(http.app, {
      store,
      limits: runtime.config.query.limits,
      pushLimits: runtime.config.collector.limits,
      tenantLimits,
      indexCache: runtime.config.query.index_cache,
      push: {
        sink: storePushSink(store, ingestDefaults),
        contract: contractFromConfig(runtime.config, tenantLimits, "stored", ingestDefaults),
        admission: admissionFromConfig(runtime.config.collector.limits),
      },
      log,
    });
    prometheusRoutes(http.app, {
      store,
      tenantLimits,
      log,
      limits: { maxSamples: runtime.config.query.limits.max_samples },
      status: { config: runtime.config, startedAtMs },
    });
    rulerRoutes(http.app, ruler);
    reportRuleLoading(ruler, runtime.registry, http);
    graphRoute(http.app);
    fleetPageRoutes(http.app, { store, staleAfterMs: runtime.config.fleet.stale_after_ms });
  });
  // Rules query the store, so they start once its schema is in place (not when the process stops first).
  void runtime.storeMigrated.then(() => {
    if (runtime.storeReadiness() === null) ruler.start(running.address.url);
  });
  return {
    ...running,
    stop: async () => {
      await ruler.stop();
      await notifier.close();
      await running.stop();
    },
  };
}
