import { z } from "zod";
import { parsePrometheusDuration } from "../../common/go/parse.js";
import { relabelConfigSchema } from "../processing/relabel.js";

/** Milliseconds of a Prometheus duration (model.ParseDuration: units y down to ms), or undefined when it is not one. */
export function durationMs(text: string): number | undefined {
  const ns = parsePrometheusDuration(text);
  if (typeof ns === "string") return undefined;
  const ms = Number(ns / 1_000_000n);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

// `collector.scrape`: Prometheus's own `global` and `scrape_configs` sections, for the keys Bifrost implements
// (README, "Prometheus scrape"), so that a Prometheus configuration's jobs can be copied in. A key Prometheus
// has and Bifrost does not (kubernetes_sd_configs, for one) is refused by name rather than ignored.

const duration = (fallback: string) =>
  z
    .string()
    .refine((text) => durationMs(text) !== undefined, "expected a Prometheus duration such as 15s or 1m30s")
    .default(fallback);

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1 << 10,
  KiB: 1 << 10,
  MB: 1 << 20,
  MiB: 1 << 20,
  GB: 1 << 30,
  GiB: 1 << 30,
};

/** Bytes of a size as Prometheus writes body_size_limit (base 2: 10MB is 10 MiB), or undefined. */
export function parseByteSize(text: string | number): number | undefined {
  if (typeof text === "number") return Number.isSafeInteger(text) && text >= 0 ? text : undefined;
  const match = /^(\d+)([KMG]i?B|B)?$/.exec(text.trim());
  if (match === null || (match[2] !== undefined && !(match[2] in SIZE_UNITS))) return undefined;
  return Number(match[1]) * SIZE_UNITS[match[2] ?? "B"]!;
}

const labelName = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, "expected a Prometheus label name");

function scrapeConfigSchema() {
  const tlsConfig = z
    .strictObject({
      ca_file: z.string().optional().describe("CA (PEM) to verify the target's certificate with"),
      cert_file: z.string().optional().describe("client certificate (PEM), for targets that ask for one"),
      key_file: z.string().optional().describe("its private key (PEM)"),
      server_name: z.string().optional().describe("name to verify the certificate against (and send as SNI)"),
      insecure_skip_verify: z.boolean().default(false).describe("do not verify the target's certificate"),
    })
    .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), "cert_file and key_file go together");
  const targetGroup = z.strictObject({
    targets: z.array(z.string()).default([]).describe("host:port of each target"),
    labels: z.record(labelName, z.string()).default({}).describe("labels of every target of the group"),
  });
  return z
    .strictObject({
      job_name: z.string().min(1).describe("the `job` label of the targets, unique among the jobs"),
      scrape_interval: z
        .string()
        .refine((t) => durationMs(t) !== undefined, "expected a Prometheus duration")
        .optional()
        .describe("how often each target is scraped; global.scrape_interval without it"),
      scrape_timeout: z
        .string()
        .refine((t) => durationMs(t) !== undefined, "expected a Prometheus duration")
        .optional()
        .describe("per scrape; global.scrape_timeout without it, and never above scrape_interval"),
      metrics_path: z.string().default("/metrics").describe("HTTP path of the metrics"),
      scheme: z.enum(["http", "https"]).default("http").describe("http or https"),
      params: z
        .record(z.string(), z.array(z.string()))
        .default({})
        .describe("URL query parameters, each a list of values (`__param_<name>` labels override the first)"),
      honor_labels: z
        .boolean()
        .default(false)
        .describe("on a clash, keep the scraped label (true) or rename it `exported_<name>` (false)"),
      honor_timestamps: z
        .boolean()
        .default(true)
        .describe("use the timestamps the target exposes (true) or the scrape's time (false)"),
      basic_auth: z
        .strictObject({
          username: z.string().default("").describe("user name"),
          password: z.string().optional().describe("password"),
          password_file: z.string().optional().describe("file holding the password, read at each scrape"),
        })
        .refine((b) => b.password === undefined || b.password_file === undefined, "password or password_file, not both")
        .optional()
        .describe("HTTP basic authentication"),
      authorization: z
        .strictObject({
          type: z.string().default("Bearer").describe("the Authorization header's scheme"),
          credentials: z.string().optional().describe("its credentials"),
          credentials_file: z.string().optional().describe("file holding them, read at each scrape"),
        })
        .refine(
          (a) => a.credentials === undefined || a.credentials_file === undefined,
          "credentials or credentials_file, not both",
        )
        .optional()
        .describe("Authorization header, Bearer token by default"),
      bearer_token: z.string().optional().describe("deprecated spelling of authorization.credentials"),
      bearer_token_file: z.string().optional().describe("deprecated spelling of authorization.credentials_file"),
      tls_config: tlsConfig.prefault({}).describe("TLS towards https targets"),
      static_configs: z.array(targetGroup).default([]).describe("fixed target groups"),
      file_sd_configs: z
        .array(
          z.strictObject({
            files: z
              .array(z.string().min(1))
              .min(1)
              .describe("JSON or YAML files of target groups; the file name may hold a glob (*.json)"),
            refresh_interval: duration("5m").describe("files are re-read this often, and whenever they change"),
          }),
        )
        .default([])
        .describe("target groups read from files, as Prometheus's file_sd_configs"),
      relabel_configs: z.array(relabelConfigSchema()).default([]).describe("rules applied to each target's labels"),
      metric_relabel_configs: z
        .array(relabelConfigSchema())
        .default([])
        .describe("rules applied to each scraped series before it is stored"),
      sample_limit: z.number().int().min(0).default(0).describe("a scrape with more samples fails; 0 means none"),
      label_limit: z.number().int().min(0).default(0).describe("a scrape with a series of more labels fails; 0: none"),
      label_name_length_limit: z.number().int().min(0).default(0).describe("longest label name; 0 means none"),
      label_value_length_limit: z.number().int().min(0).default(0).describe("longest label value; 0 means none"),
      body_size_limit: z
        .union([z.string(), z.number()])
        .refine((s) => parseByteSize(s) !== undefined, "expected a size such as 10MB")
        .default("50MB")
        .describe("largest uncompressed scrape body (Prometheus: none by default); 0 means none"),
      tenant: z
        .string()
        .min(1)
        .optional()
        .describe("Bifrost: tenant of the samples; collector.default_tenant without it"),
    })
    .refine(
      (c) => !(c.authorization !== undefined && (c.bearer_token !== undefined || c.bearer_token_file !== undefined)),
      "authorization and bearer_token(_file) are mutually exclusive",
    )
    .refine(
      (c) =>
        !(
          c.basic_auth !== undefined &&
          (c.authorization !== undefined || c.bearer_token !== undefined || c.bearer_token_file !== undefined)
        ),
      "basic_auth and authorization are mutually exclusive",
    );
}

/** The `collector.scrape` section. */
export function scrapeSchema() {
  return z
    .strictObject({
      global: z
        .strictObject({
          scrape_interval: duration("1m").describe("default scrape_interval of the jobs"),
          scrape_timeout: duration("10s").describe("default scrape_timeout of the jobs"),
        })
        .prefault({})
        .describe("defaults of the jobs, as Prometheus's `global`"),
      scrape_configs: z
        .array(scrapeConfigSchema())
        .default([])
        .refine(
          (jobs) => new Set(jobs.map((j) => j.job_name)).size === jobs.length,
          "job_name must be unique among the scrape_configs",
        )
        .describe("jobs in Prometheus's scrape_config format"),
    })
    .superRefine((section, ctx) => {
      section.scrape_configs.forEach((job, i) => {
        const { intervalMs, timeoutMs } = jobTiming(section.global, job);
        if (intervalMs === 0 || timeoutMs === 0)
          ctx.addIssue({
            code: "custom",
            path: ["scrape_configs", i],
            message: "scrape interval and timeout must not be 0",
          });
        else if (timeoutMs > intervalMs)
          ctx.addIssue({
            code: "custom",
            path: ["scrape_configs", i, "scrape_timeout"],
            message: `scrape timeout greater than scrape interval for scrape config with job name ${JSON.stringify(job.job_name)}`,
          });
      });
    })
    .prefault({})
    .describe("Prometheus scrape: targets the collector pulls metrics from")
    .meta({
      examples: [
        {
          global: { scrape_interval: "15s" },
          scrape_configs: [
            {
              job_name: "node",
              static_configs: [{ targets: ["127.0.0.1:9100"], labels: { role: "edge" } }],
              metric_relabel_configs: [{ source_labels: ["__name__"], regex: "go_.*", action: "drop" }],
            },
            {
              job_name: "apps",
              file_sd_configs: [{ files: ["/etc/bifrost/targets/*.json"] }],
              relabel_configs: [{ source_labels: ["__address__"], regex: "([^:]+):.*", target_label: "host" }],
            },
          ],
        },
      ],
    });
}

export type ScrapeSection = z.output<ReturnType<typeof scrapeSchema>>;
export type ScrapeJobConfig = ScrapeSection["scrape_configs"][number];

/**
 * A job's interval and timeout as Prometheus settles them: its own, else the global ones, a global timeout
 * longer than the job's interval shortened to it.
 */
export function jobTiming(
  global: ScrapeSection["global"],
  job: Pick<ScrapeJobConfig, "scrape_interval" | "scrape_timeout">,
): { intervalMs: number; timeoutMs: number } {
  const intervalMs = durationMs(job.scrape_interval ?? global.scrape_interval)!;
  const globalTimeoutMs = durationMs(global.scrape_timeout)!;
  const timeoutMs =
    job.scrape_timeout !== undefined ? durationMs(job.scrape_timeout)! : Math.min(globalTimeoutMs, intervalMs);
  return { intervalMs, timeoutMs };
}
