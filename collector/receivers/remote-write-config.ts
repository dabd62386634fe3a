import { z } from "zod";

/** The `collector.remote_write` section: the receiver's switch; its limits are collector.limits'. */
export function remoteWriteSchema() {
  return z
    .strictObject({
      enabled: z
        // "true"/"false" as BIFROST_COLLECTOR__REMOTE_WRITE__ENABLED carries them.
        .preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean())
        .default(true)
        .describe("Prometheus remote write 1.0 and 2.0 on POST /api/v1/write of collector.listen"),
    })
    .prefault({})
    .describe("Prometheus remote write receiver (Prometheus, Grafana Agent/Alloy, vmagent as senders)");
}
