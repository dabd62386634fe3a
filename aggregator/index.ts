import type { Runtime, Running } from "../common/runtime.js";
import { startHttpComponent } from "../common/service.js";

/** The regional aggregator's process: its HTTP listener serves `/ready` and `/metrics`. */
export function startAggregator(runtime: Runtime): Promise<Running> {
  return startHttpComponent(runtime, "aggregator", runtime.config.aggregator.listen);
}
