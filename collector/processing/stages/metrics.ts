import { z } from "zod";
import { duration } from "../../../common/config.js";
import { goParseFloat } from "../../../common/go/parse.js";
import { METRIC_NAME } from "../../../proto/validate.js";
import { LogMetrics, type LogMetricFamily } from "../pipeline/log-metrics.js";
import { defineStage, failed, textOf, type PipelineEntry, type StageRun } from "../pipeline/stage.js";

// Promtail's `metrics` stage: counters, gauges and histograms from the extracted values (`source`, the metric's
// name when not given), one series per stream label set as Promtail has it, into the collector's own samples
// (pipeline/log-metrics.ts), which are shipped whatever later stages do with the line. Names take the prefix
// `bifrost_custom_` where Promtail's take `promtail_custom_`: the same shape, so a ported dashboard changes only
// the product's name, and apart from the collector's own bifrost_collector_* metrics.

export const DEFAULT_METRIC_PREFIX = "bifrost_custom_";
/** Prometheus' default buckets, which Promtail's histograms take too when none are given. */
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const metricType = z
  .string()
  .transform((type) => type.toLowerCase())
  .pipe(z.enum(["counter", "gauge", "histogram"]))
  .describe("Counter, Gauge or Histogram (any case, as Promtail reads it)");

const metricSchema = z
  .strictObject({
    type: metricType,
    description: z.string().default("").describe("the metric's help text"),
    source: z.string().min(1).optional().describe("extracted value the metric reads; the metric's name when not given"),
    prefix: z.string().default(DEFAULT_METRIC_PREFIX).describe("put before the metric's name"),
    max_idle_duration: duration(z.number().int().min(1000))
      .default(300_000)
      .describe("a series not updated for this long is no longer sent (its stream may be gone)"),
    config: z
      .strictObject({
        value: z.string().optional().describe("act only when the source's value is exactly this"),
        action: z
          .enum(["inc", "add", "set", "dec", "sub"])
          .optional()
          .describe("counter: inc or add; gauge: set, inc, dec, add or sub"),
        match_all: z.boolean().default(false).describe("counter: count every entry, with or without the source"),
        count_entry_bytes: z
          .boolean()
          .default(false)
          .describe("counter with match_all and action add: add the line's length in bytes"),
        buckets: z.array(z.number()).min(1).optional().describe("histogram: upper bounds of the buckets"),
      })
      .default({ match_all: false, count_entry_bytes: false })
      .describe("what updates the metric, as Promtail's `config`"),
  })
  .superRefine((metric, ctx) => {
    const { action, match_all, count_entry_bytes, value, buckets } = metric.config;
    const problem = (message: string) => ctx.addIssue({ code: "custom", path: ["config"], message });
    if (metric.type === "counter") {
      if (action !== "inc" && action !== "add") problem("a counter's action is inc or add");
      if (match_all && value !== undefined) problem("match_all and value exclude each other");
      if (count_entry_bytes && (!match_all || action !== "add"))
        problem("count_entry_bytes needs match_all and action add");
    } else if (metric.type === "gauge") {
      if (action === undefined) problem("a gauge's action is set, inc, dec, add or sub");
    } else if (action !== undefined) problem("a histogram takes no action");
    if (metric.type !== "histogram" && buckets !== undefined) problem("only a histogram has buckets");
    if (buckets !== undefined && buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!))
      problem("buckets must be in increasing order");
    if (metric.type !== "counter" && (match_all || count_entry_bytes))
      problem("match_all and count_entry_bytes are a counter's");
  });

export const metricsStage = defineStage({
  schema: z
    .record(z.string().regex(METRIC_NAME, "expected a Prometheus metric name"), metricSchema)
    .refine((map) => Object.keys(map).length > 0, "expected at least one metric")
    .describe("counters, gauges and histograms from log entries, shipped as the collector's own samples"),
  compile(config, context) {
    // Without the collector's (a stage run on its own in a test), the values are kept but go nowhere.
    const metrics = context.logMetrics ?? new LogMetrics(context.now);
    const runs = Object.entries(config).map(([name, metric]) => {
      const family = metrics.family({
        name: metric.prefix + name,
        type: metric.type,
        help: metric.description,
        maxIdleMs: metric.max_idle_duration,
        buckets: metric.config.buckets ?? DEFAULT_BUCKETS,
      });
      return metricRun(metrics, family, metric.source ?? name, metric.config);
    });
    return (entry) => {
      let outcome;
      for (const run of runs) outcome = run(entry) ?? outcome;
      return outcome;
    };
  },
});

type MetricConfig = z.output<typeof metricSchema>["config"];

const notANumber = failed("not_a_number");
const negative = failed("negative_value");

function metricRun(metrics: LogMetrics, family: LogMetricFamily, source: string, config: MetricConfig): StageRun {
  const { action, value: only } = config;
  const numeric = (text: string) => goParseFloat(text).value;
  return (entry: PipelineEntry) => {
    const text = textOf(entry.extracted[source]);
    if (config.match_all) {
      const by = config.count_entry_bytes ? Buffer.byteLength(entry.line) : 1;
      metrics.update(family, entry.tenant, entry.labels, (v) => v + by);
      return undefined;
    }
    if (text === undefined || (only !== undefined && text !== only)) return undefined;
    if (family.type === "histogram") {
      const n = numeric(text);
      if (n === undefined) return notANumber;
      metrics.observe(family, entry.tenant, entry.labels, n);
      return undefined;
    }
    if (action === "inc" || action === "dec") {
      const step = action === "inc" ? 1 : -1;
      metrics.update(family, entry.tenant, entry.labels, (v) => v + step);
      return undefined;
    }
    const n = numeric(text);
    if (n === undefined) return notANumber;
    if (family.type === "counter" && n < 0) return negative;
    const change = action === "set" ? () => n : action === "sub" ? (v: number) => v - n : (v: number) => v + n;
    metrics.update(family, entry.tenant, entry.labels, change);
    return undefined;
  };
}
