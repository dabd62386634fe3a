import type { Runtime, Running } from "../common/runtime.js";
import { startHttpComponent } from "../common/service.js";

/** The edge collector's process: its HTTP listener carries the receivers, `/ready` and `/metrics`. */
export function startCollector(runtime: Runtime): Promise<Running> {
  return startHttpComponent(runtime, "collector", runtime.config.collector.listen);
}
