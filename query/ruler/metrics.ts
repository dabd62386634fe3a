import { Gauge, type Registry } from "prom-client";
import type { HttpService } from "../../common/service.js";
import type { Ruler } from "./ruler.js";

// How the ruler's rule files loaded, for /metrics and /ready. A file that fails keeps running the rules it had
// (Prometheus keeps its old rules after a failed reload too), so /ready notes the failure without answering 503:
// the query APIs still serve, and taking them out of service over one rule file would make things worse.

export function reportRuleLoading(ruler: Ruler, registry: Registry, http: HttpService): void {
  new Gauge({
    name: "bifrost_query_rule_files_failed",
    help: "Rule files (or the rules directory) that the last load could not read or refused; alert on > 0.",
    registers: [registry],
    collect() {
      this.set(ruler.failedFiles);
    },
  });
  http.addNote("rules", () => {
    const problems = ruler.loadProblems;
    if (problems.length === 0) return null;
    return `${ruler.failedFiles} rule file(s) failed to load: ${problems.join("; ")}`;
  });
}
