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
    .describe(
      "Prometheus remote write receiver; its limits are collector.limits', its tenant X-Scope-OrgID. The sender's side, in prometheus.yml: `remote_write: [{url: http://<collector>:4318/api/v1/write, queue_config: {retry_on_http_429: true}}]`",
    )
    .meta({ examples: [{ enabled: true }] });
}
