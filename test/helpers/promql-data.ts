import { rollupBatch } from "../../aggregator/rollup.js";
import { SampleKind, type Series } from "../../proto/batch.js";
import { labelsOf } from "../../proto/labels.js";
import type { Store } from "../../storage/store.js";
import { prng } from "./batches.js";

// A fixed metrics data set for PromQL tests: counters with resets, gauges with a gap, and a classic histogram,
// one hour of samples every 15 s. Sample times sit 1.234 s (plus a per-series shift) past whole seconds, so no
// sample lies exactly on a window edge at whole-second evaluation times: Prometheus 2 (closed windows) and 3
// (left-open windows) then select the same samples.

export const T0_MS = 1_764_000_000_000;
export const HOUR_MS = 3_600_000;
const STEP_MS = 15_000;

function times(shiftMs: number, skip: (i: number) => boolean = () => false): number[] {
  const out: number[] = [];
  for (let i = 0; i < HOUR_MS / STEP_MS; i++) if (!skip(i)) out.push(T0_MS + 1_234 + shiftMs + i * STEP_MS);
  return out;
}

function counter(name: string, labels: [string, string][], seed: number, resetsAt: number[]): Series {
  const random = prng(seed);
  let value = 1000 + Math.floor(random() * 500);
  const points = times(seed * 7).map((timeUnixMs, i) => {
    value = resetsAt.includes(i) ? Math.floor(random() * 5) : value + Math.floor(random() * 20);
    return { timeUnixMs, value };
  });
  return { name, labels: labelsOf(labels), kind: SampleKind.Counter, points };
}

function gauge(name: string, labels: [string, string][], seed: number, gap?: [number, number]): Series {
  const random = prng(seed);
  const points = times(seed * 11, (i) => gap !== undefined && i >= gap[0] && i < gap[1]).map((timeUnixMs, i) => ({
    timeUnixMs,
    value: Math.round((20 + 5 * Math.sin(i / 17 + seed) + random() * 3) * 1000) / 1000,
  }));
  return { name, labels: labelsOf(labels), kind: SampleKind.Gauge, points };
}

function histogram(name: string, instance: string, seed: number): Series[] {
  const random = prng(seed);
  const bounds = ["0.1", "0.5", "1", "+Inf"];
  // Counts from a process that has run for a while: a rate's extrapolation towards zero at the start of the data
  // is where Prometheus 2 and 3 differ, so the counters start far from zero.
  const counts = [500, 800, 950, 1000];
  let sum = 300;
  const at = times(seed * 13);
  const buckets = bounds.map(() => [] as { timeUnixMs: number; value: number }[]);
  const sums: { timeUnixMs: number; value: number }[] = [];
  for (const timeUnixMs of at) {
    const observations = 5 + Math.floor(random() * 10);
    for (let o = 0; o < observations; o++) {
      const duration = Math.round(random() * random() * 1500) / 1000;
      bounds.forEach((bound, b) => {
        if (duration <= Number(bound === "+Inf" ? Infinity : bound)) counts[b]!++;
      });
      sum = Math.round((sum + duration) * 1000) / 1000;
    }
    counts.forEach((count, b) => buckets[b]!.push({ timeUnixMs, value: count }));
    sums.push({ timeUnixMs, value: sum });
  }
  const labels = (extra: [string, string][] = []) => labelsOf([["instance", instance], ["job", "api"], ...extra]);
  return [
    ...bounds.map((le, b) => ({
      name: `${name}_bucket`,
      labels: labels([["le", le]]),
      kind: SampleKind.HistogramBucket,
      points: buckets[b]!,
    })),
    { name: `${name}_sum`, labels: labels(), kind: SampleKind.HistogramSum, points: sums },
    { name: `${name}_count`, labels: labels(), kind: SampleKind.HistogramCount, points: buckets[bounds.length - 1]! },
  ];
}

export const DATA_SET: Series[] = [
  counter(
    "http_requests_total",
    [
      ["code", "200"],
      ["instance", "a"],
      ["job", "api"],
    ],
    1,
    [],
  ),
  counter(
    "http_requests_total",
    [
      ["code", "200"],
      ["instance", "b"],
      ["job", "api"],
    ],
    2,
    [100],
  ),
  counter(
    "http_requests_total",
    [
      ["code", "500"],
      ["instance", "a"],
      ["job", "api"],
    ],
    3,
    [60, 200],
  ),
  counter(
    "http_requests_total",
    [
      ["code", "500"],
      ["instance", "b"],
      ["job", "api"],
    ],
    4,
    [],
  ),
  gauge("temperature_celsius", [["instance", "a"]], 5),
  // Ten minutes without samples: instant selectors run dry after the lookback, rates see a shorter range.
  gauge("temperature_celsius", [["instance", "b"]], 6, [120, 160]),
  ...histogram("request_duration_seconds", "a", 7),
];

/** Writes the data set as the aggregator would: raw samples and their rollups. */
export async function loadDataSet(store: Store, tenant: string): Promise<void> {
  await store.appendSamples([{ id: `${tenant}/promql-data:1`, tenant, series: DATA_SET }]);
  await store.appendRollups([{ id: `${tenant}/promql-data:1`, tenant, partials: rollupBatch(DATA_SET) }]);
}

const OPEN_METRICS_TYPE: Record<number, string> = {
  [SampleKind.Counter]: "counter",
  [SampleKind.Gauge]: "gauge",
  [SampleKind.HistogramBucket]: "histogram",
  [SampleKind.HistogramSum]: "histogram",
  [SampleKind.HistogramCount]: "histogram",
};

function familyOf(series: Series): string {
  if (series.kind === SampleKind.Counter) return series.name.replace(/_total$/, "");
  if (series.kind === SampleKind.Gauge) return series.name;
  return series.name.replace(/_(bucket|sum|count)$/, "");
}

/** The data set as OpenMetrics text, one family after another, for `promtool tsdb create-blocks-from openmetrics`. */
export function openMetrics(series: Series[]): string {
  const families = new Map<string, Series[]>();
  for (const one of series) {
    const family = familyOf(one);
    families.set(family, [...(families.get(family) ?? []), one]);
  }
  let text = "";
  for (const [family, members] of families) {
    text += `# TYPE ${family} ${OPEN_METRICS_TYPE[members[0]!.kind]}\n`;
    for (const one of members) {
      const labels = Object.entries(one.labels)
        .map(([name, value]) => `${name}="${value}"`)
        .join(",");
      for (const point of one.points)
        text += `${one.name}{${labels}} ${point.value} ${(point.timeUnixMs / 1000).toFixed(3)}\n`;
    }
  }
  return text + "# EOF\n";
}

/**
 * Queries answered without the shared vector operations (aggregations, vector/vector operators), each checked
 * as an instant query at several times and as range queries.
 */
export const QUERIES: string[] = [
  "sum(rate(http_requests_total[5m]))",
  "sum by (code) (rate(http_requests_total[5m]))",
  "sum without (instance) (increase(http_requests_total[10m]))",
  "avg by (job) (temperature_celsius)",
  "min(temperature_celsius)",
  "max by (instance) (temperature_celsius)",
  "count(http_requests_total)",
  "stddev(temperature_celsius)",
  "stdvar(temperature_celsius)",
  "group by (job) (http_requests_total)",
  "bottomk(1, temperature_celsius)",
  "quantile(0.5, rate(http_requests_total[5m]))",
  'count_values("v", floor(temperature_celsius))',
  "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
  "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
  "http_requests_total / ignoring(code) group_left sum without (code) (http_requests_total)",
  'rate(http_requests_total{code="500"}[5m]) / on(instance, job) rate(http_requests_total{code="200"}[5m])',
  "temperature_celsius > on(instance) group_left temperature_celsius offset 10m",
  "temperature_celsius == bool temperature_celsius",
  "http_requests_total and on(instance) temperature_celsius > 21",
  'http_requests_total{code="200"} or http_requests_total{code="500"}',
  "http_requests_total unless on(instance) temperature_celsius > 22",
  "sort(temperature_celsius)",
  "sort_desc(rate(http_requests_total[5m]))",
  'label_replace(temperature_celsius, "host", "$1", "instance", "(.*)")',
  "http_requests_total",
  'http_requests_total{instance="b"}',
  'http_requests_total{code=~"5..",instance!="b"}',
  '{__name__=~"temperature_.*"}',
  "rate(http_requests_total[5m])",
  "rate(http_requests_total[1m])",
  "rate(http_requests_total[30s])",
  "irate(http_requests_total[5m])",
  "increase(http_requests_total[10m])",
  "increase(http_requests_total[1h])",
  "delta(temperature_celsius[10m])",
  "idelta(temperature_celsius[5m])",
  "rate(http_requests_total[5m] offset 10m)",
  "avg_over_time(temperature_celsius[10m])",
  "sum_over_time(temperature_celsius[10m])",
  "min_over_time(temperature_celsius[10m])",
  "max_over_time(temperature_celsius[10m])",
  "count_over_time(temperature_celsius[10m])",
  "last_over_time(temperature_celsius[10m])",
  "stddev_over_time(temperature_celsius[10m])",
  "stdvar_over_time(temperature_celsius[10m])",
  "present_over_time(temperature_celsius[10m])",
  "quantile_over_time(0.9, temperature_celsius[10m])",
  "quantile_over_time(0.25, http_requests_total[7m])",
  "histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m]))",
  "histogram_quantile(0.5, request_duration_seconds_bucket)",
  "histogram_quantile(0.99, increase(request_duration_seconds_bucket[15m]))",
  "rate(request_duration_seconds_sum[5m]) / 2",
  "temperature_celsius offset 5m",
  "abs(temperature_celsius - 22)",
  "ceil(temperature_celsius)",
  "floor(temperature_celsius)",
  "round(temperature_celsius)",
  "round(temperature_celsius, 0.5)",
  "clamp(temperature_celsius, 19, 23)",
  "clamp_min(temperature_celsius, 21)",
  "clamp_max(temperature_celsius, 21)",
  "sqrt(temperature_celsius)",
  "exp(temperature_celsius / 10)",
  "ln(temperature_celsius)",
  "log2(temperature_celsius)",
  "log10(temperature_celsius)",
  "timestamp(temperature_celsius)",
  "vector(1)",
  'scalar(temperature_celsius{instance="a"})',
  "time()",
  "temperature_celsius > 21",
  "temperature_celsius > bool 21",
  "21 < temperature_celsius",
  "2 * temperature_celsius + 1",
  "-temperature_celsius",
  "temperature_celsius ^ 2",
  "temperature_celsius % 7",
  "1 + 2 * 3",
  "2 ^ 3 ^ 2",
  "time() - 1764000000 > bool 1800",
  'temperature_celsius{instance="a"} @ 1764000600',
  'rate(http_requests_total{code="200"}[5m] @ 1764001200)',
];

/** Instant query times (ms): inside the data, at the reset, inside the gauge's gap, just after and well after the end. */
export const INSTANT_TIMES_MS = [
  T0_MS + 600_000,
  T0_MS + 1_500_000,
  T0_MS + 2_000_000,
  T0_MS + 2_250_000,
  T0_MS + 2_400_000,
  T0_MS + HOUR_MS + 60_000,
  T0_MS + HOUR_MS + 600_000,
];

/** Range queries (ms): whole minutes, and an odd step that starts before the data. */
export const RANGES_MS: { startMs: number; endMs: number; stepMs: number }[] = [
  { startMs: T0_MS, endMs: T0_MS + HOUR_MS + 600_000, stepMs: 60_000 },
  { startMs: T0_MS - 120_000, endMs: T0_MS + HOUR_MS, stepMs: 37_000 },
];

/**
 * Subqueries. Their steps are multiples of the step, and a step exactly at t - range is outside the window in
 * Prometheus 3 but inside in Prometheus 2: these are evaluated half a second off whole seconds, where no step
 * lies on a window's edge.
 */
export const SUBQUERIES: string[] = [
  "max_over_time(rate(http_requests_total[5m])[30m:1m])",
  "avg_over_time(temperature_celsius[10m:30s])",
  "sum_over_time(irate(http_requests_total[2m])[15m:45s])",
  "rate(http_requests_total[10m:1m])",
  "last_over_time(temperature_celsius[5m:])",
  "quantile_over_time(0.5, (temperature_celsius * 2)[20m:2m])",
  "count_over_time(temperature_celsius[10m:1m] offset 5m)",
  "max_over_time(histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m]))[20m:1m] @ 1764002400)",
];

export const SUBQUERY_TIMES_MS = INSTANT_TIMES_MS.map((t) => t + 500);

export const SUBQUERY_RANGES_MS = RANGES_MS.map((range) => ({ ...range, startMs: range.startMs + 500 }));
