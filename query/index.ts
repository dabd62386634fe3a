import { VERSION, type Runtime, type Running } from "../common/runtime.js";
import { startHttpComponent } from "../common/service.js";

/** The central query service: the Loki- and Prometheus-compatible APIs, `/ready` and `/metrics`. */
export function startQuery(runtime: Runtime): Promise<Running> {
  return startHttpComponent(runtime, "query", runtime.config.query.listen, (http) => {
    // Grafana's Loki data source asks for this to learn the server's version.
    http.app.get("/loki/api/v1/status/buildinfo", (c) =>
      c.json({ version: VERSION, revision: "", branch: "", buildUser: "", buildDate: "", goVersion: "" }),
    );
  });
}
