import { type MetricMetadata, type MetricType, SampleKind, type Series } from "../../proto/batch.js";
import { type Labels, labelsOf } from "../../proto/labels.js";
import { MAX_HELP_BYTES, MAX_UNIT_BYTES } from "../../proto/validate.js";
import type { CollectorConfig } from "../config.js";
import { persistedLabelsText } from "../../proto/labels.js";
import { labelName, nanos, valueText } from "./otlp-convert.js";
import { type Accumulated, DeltaRefusal, DeltaToCumulative, type HistogramCounts } from "./otlp-delta.js";
import { type OtlpMetricType, prometheusMetricName, prometheusUnit, type TranslationStrategy } from "./otlp-names.js";
import {
  type HistogramDataPoint,
  type KeyValue,
  type Metric,
  type MetricsRequest,
  type NumberDataPoint,
  OtlpDecodeError,
  type SummaryDataPoint,
} from "./otlp-proto.js";

// OTLP metrics -> Prometheus series, as Prometheus' OTLP receiver converts them (storage/remote/otlptranslator):
// - names by the translation strategy (otlp-names.ts); data point attributes as labels, escaped, values of
//   attributes that escape to one name joined with `;`, empty values left out;
// - `job` from service.namespace/service.name and `instance` from service.instance.id, over any attribute of
//   those names; the resource attributes of `promote_resource_attributes` as labels where the point has none;
// - with `promote_scope_metadata`, otel_scope_name, otel_scope_version, otel_scope_schema_url and
//   otel_scope_<attribute> labels;
// - per resource with other attributes than the three identifying ones, `target_info` (1) labelled with them and
//   job/instance, at the resource's earliest and latest point time and every 2.5 minutes between, so that a join
//   over the default 5-minute lookback finds it;
// - the metric's description and unit as its family's metadata;
// - delta sums and histograms made cumulative (otlp-delta.ts); exponential histograms refused (Bifrost has no
//   native histograms), as are points of no recorded value (Prometheus' staleness markers).

export interface OtlpMetricsOptions {
  translationStrategy: TranslationStrategy;
  promoteResourceAttributes: string[];
  keepIdentifyingResourceAttributes: boolean;
  promoteScopeMetadata: boolean;
  /** The collector's delta-to-cumulative state, shared by its OTLP receivers. */
  delta: DeltaToCumulative;
}

/** The options of `collector.otlp`, with a fresh delta-to-cumulative state. */
export function otlpMetricsOptions(otlp: CollectorConfig["otlp"]): OtlpMetricsOptions {
  return {
    translationStrategy: otlp.translation_strategy,
    promoteResourceAttributes: otlp.promote_resource_attributes,
    keepIdentifyingResourceAttributes: otlp.keep_identifying_resource_attributes,
    promoteScopeMetadata: otlp.promote_scope_metadata,
    delta: new DeltaToCumulative({
      maxStreams: otlp.delta_to_cumulative.max_streams,
      maxStaleMs: otlp.delta_to_cumulative.max_stale_ms,
    }),
  };
}

export interface ConvertedMetrics {
  series: Series[];
  /** The target_info series, apart: one that breaks a limit is dropped alone rather than failing the export. */
  targetInfo: Series[];
  metadata: MetricMetadata[];
  /** Data points not converted, for the response's partial_success. */
  rejected: number;
  /** Their reasons, by the label the receiver counts rejections under. */
  reasons: Map<string, Set<string>>;
  /** Takes the delta points back out of the state, for an export refused after conversion (it will be retried). */
  undo(): void;
}

const DELTA = 1;
const CUMULATIVE = 2;
const NO_RECORDED_VALUE = 1;
/** Half of Prometheus' default lookback, the spacing of target_info samples. */
const TARGET_INFO_INTERVAL_MS = 150_000;
const IDENTIFYING = ["service.namespace", "service.name", "service.instance.id"];

interface Resource {
  job?: string;
  instance?: string;
  promoted: [string, string][];
  scope?: [string, string][];
}

function attribute(attributes: KeyValue[] | undefined, key: string): string | undefined {
  const found = attributes?.find((kv) => kv.key === key);
  return found === undefined ? undefined : valueText(found.value);
}

/** Sets a label, or removes it for an empty value, as Prometheus' label builder does. */
function put(labels: Labels, name: string, value: string): void {
  if (value === "") delete labels[name];
  else labels[name] = value;
}

/** Attributes as labels: sorted by key, escaped, values of names that collide joined with `;`. */
function attributeLabels(attributes: KeyValue[], skip: readonly string[] = []): Labels {
  const labels: Labels = Object.create(null);
  const sorted = attributes.filter((kv) => !skip.includes(kv.key ?? "")).sort((a, b) => (a.key! < b.key! ? -1 : 1));
  for (const { key = "", value } of sorted) {
    const name = labelName(key);
    const text = valueText(value);
    if (labels[name]) labels[name] = `${labels[name]};${text}`;
    else put(labels, name, text);
  }
  return labels;
}

function resourceContext(attributes: KeyValue[], options: OtlpMetricsOptions): Resource {
  const service = attribute(attributes, "service.name");
  const namespace = attribute(attributes, "service.namespace");
  const instance = attribute(attributes, "service.instance.id");
  const promote = new Set(options.promoteResourceAttributes);
  return {
    ...(service !== undefined ? { job: namespace !== undefined ? `${namespace}/${service}` : service } : {}),
    ...(instance !== undefined ? { instance } : {}),
    promoted: attributes
      .filter((kv) => promote.has(kv.key ?? ""))
      .map((kv): [string, string] => [labelName(kv.key ?? ""), valueText(kv.value)]),
  };
}

type ScopeMetrics = NonNullable<NonNullable<MetricsRequest["resourceMetrics"]>[number]["scopeMetrics"]>[number];

function scopeLabels(scopeMetrics: ScopeMetrics): [string, string][] | undefined {
  const scope = scopeMetrics.scope;
  if (!scope?.name) return undefined;
  return [
    ...(scope.attributes ?? []).map((kv): [string, string] => [
      labelName(`otel_scope_${kv.key ?? ""}`),
      valueText(kv.value),
    ]),
    ["otel_scope_name", scope.name],
    ["otel_scope_version", scope.version ?? ""],
    ["otel_scope_schema_url", scopeMetrics.schemaUrl ?? ""],
  ];
}

/** A data point's labels: its attributes, then promoted resource attributes, job and instance, scope labels. */
function pointLabels(attributes: KeyValue[] | undefined, resource: Resource): Labels {
  const labels = attributeLabels(attributes ?? []);
  for (const [name, value] of resource.promoted) if (!labels[name]) put(labels, name, value);
  if (resource.job !== undefined) put(labels, "job", resource.job);
  if (resource.instance !== undefined) put(labels, "instance", resource.instance);
  for (const [name, value] of resource.scope ?? []) put(labels, name, value);
  return labels;
}

function withLabel(labels: Labels, name: string, value: string): Labels {
  return labelsOf([...Object.entries(labels), [name, value]]);
}

function formatBound(bound: number): string {
  if (bound === Infinity) return "+Inf";
  if (bound === -Infinity) return "-Inf";
  return String(bound);
}

function truncateHelp(text: string): string {
  if (Buffer.byteLength(text) <= MAX_HELP_BYTES) return text;
  let cut = Buffer.from(text).subarray(0, MAX_HELP_BYTES).toString();
  // A character split at the cut decodes to U+FFFD; drop it.
  if (cut.endsWith("\uFFFD")) cut = cut.slice(0, -1);
  return cut;
}

/** The metadata's unit; a unit longer than any real one is left out rather than fail the batch downstream. */
function unitOf(metric: Metric): string {
  const unit = prometheusUnit(metric.unit ?? "");
  return Buffer.byteLength(unit) <= MAX_UNIT_BYTES ? unit : "";
}

function recorded<T extends { flags?: number }>(points: T[] | undefined): T[] {
  return (points ?? []).filter((p) => ((p.flags ?? 0) & NO_RECORDED_VALUE) === 0);
}

function numberValue(point: NumberDataPoint): number {
  return point.asDouble ?? Number(point.asInt ?? 0);
}

function otlpType(metric: Metric): OtlpMetricType | undefined {
  if (metric.gauge) return "gauge";
  if (metric.sum) return metric.sum.isMonotonic ? "counter" : "updowncounter";
  if (metric.histogram) return "histogram";
  if (metric.summary) return "summary";
  return undefined;
}

const METADATA_TYPE: Record<OtlpMetricType, MetricType> = {
  gauge: "gauge",
  counter: "counter",
  updowncounter: "gauge",
  histogram: "histogram",
  summary: "summary",
};

function countPoints(metric: Metric): number {
  const data = metric.gauge ?? metric.sum ?? metric.histogram ?? metric.exponentialHistogram ?? metric.summary;
  return data?.dataPoints?.length ?? 0;
}

/** One export's conversion: the series it makes, and what it has done to the delta state. */
class Conversion {
  readonly series = new Map<string, Series>();
  readonly targetInfo = new Map<string, Series>();
  readonly metadata = new Map<string, MetricMetadata>();
  readonly reasons = new Map<string, Set<string>>();
  readonly undos: (() => void)[] = [];
  rejected = 0;
  /** Point times of the resource being converted, for its target_info. */
  earliestMs = Infinity;
  latestMs = -Infinity;

  constructor(
    readonly tenant: string,
    readonly options: OtlpMetricsOptions,
    readonly nowMs: () => number,
  ) {}

  timeMs(timeUnixNano: string | undefined): number {
    const ns = nanos(timeUnixNano);
    return ns === 0n ? this.nowMs() : Number(ns / 1_000_000n);
  }

  add(name: string, labels: Labels, kind: SampleKind, timeMs: number, value: number): void {
    const key = `${name}${persistedLabelsText(labels)}`;
    let entry = this.series.get(key);
    if (!entry) {
      entry = { name, labels, kind, points: [] };
      this.series.set(key, entry);
    }
    entry.points.push({ timeUnixMs: timeMs, value });
    this.earliestMs = Math.min(this.earliestMs, timeMs);
    this.latestMs = Math.max(this.latestMs, timeMs);
  }

  reject(count: number, kind: string, reason: string): void {
    if (count === 0) return;
    this.rejected += count;
    let reasons = this.reasons.get(kind);
    if (reasons === undefined) this.reasons.set(kind, (reasons = new Set()));
    reasons.add(reason);
  }

  /** A delta point's cumulative value from the state, or undefined (and the point rejected) when it was refused. */
  cumulative<T>(
    add: (key: string, startNs: bigint, timeNs: bigint, delta: T) => Accumulated<T> | DeltaRefusal,
    metric: Metric,
    name: string,
    labels: Labels,
    point: { startTimeUnixNano?: string; timeUnixNano?: string },
    timeMs: number,
    delta: T,
  ): T | undefined {
    const key = `${this.tenant}\u0000${name}${persistedLabelsText(labels)}`;
    const timeNs = nanos(point.timeUnixNano) || BigInt(timeMs) * 1_000_000n;
    const result = add(key, nanos(point.startTimeUnixNano), timeNs, delta);
    if (result instanceof DeltaRefusal) {
      this.reject(1, result.kind, `${metric.name ?? name}: ${result.message}`);
      return undefined;
    }
    this.undos.push(result.undo);
    return result.value;
  }

  addTargetInfo(attributes: KeyValue[], resource: Resource): void {
    const present = attributes.filter((kv) => IDENTIFYING.includes(kv.key ?? "")).length;
    if (attributes.length === present || this.latestMs === -Infinity) return;
    let labels: Labels;
    try {
      labels = attributeLabels(attributes, this.options.keepIdentifyingResourceAttributes ? [] : IDENTIFYING);
    } catch (err) {
      // A resource attribute without a label name costs the target_info, not the export.
      if (!(err instanceof OtlpDecodeError)) throw err;
      this.reject(1, "target_info_invalid", `target_info of job ${JSON.stringify(resource.job ?? "")}: ${err.message}`);
      return;
    }
    if (resource.job !== undefined) put(labels, "job", resource.job);
    if (resource.instance !== undefined) put(labels, "instance", resource.instance);
    if (labels["job"] === undefined && labels["instance"] === undefined) return;
    const key = persistedLabelsText(labels);
    let entry = this.targetInfo.get(key);
    if (!entry) {
      entry = { name: "target_info", labels, kind: SampleKind.Gauge, points: [] };
      this.targetInfo.set(key, entry);
    }
    const times = new Set(entry.points.map((p) => p.timeUnixMs));
    for (let t = this.earliestMs; t < this.latestMs; t += TARGET_INFO_INTERVAL_MS) times.add(t);
    times.add(this.latestMs);
    entry.points = [...times].sort((a, b) => a - b).map((timeUnixMs) => ({ timeUnixMs, value: 1 }));
    this.metadata.set("target_info", { name: "target_info", type: "gauge", help: "Target metadata", unit: "" });
  }
}

export function metricsToSeries(
  request: MetricsRequest,
  tenant: string,
  options: OtlpMetricsOptions,
  nowMs: () => number = Date.now,
): ConvertedMetrics {
  options.delta.expire();
  const conversion = new Conversion(tenant, options, nowMs);
  for (const resourceMetrics of request.resourceMetrics ?? []) {
    const attributes = resourceMetrics.resource?.attributes ?? [];
    const resource = resourceContext(attributes, options);
    conversion.earliestMs = Infinity;
    conversion.latestMs = -Infinity;
    for (const scopeMetrics of resourceMetrics.scopeMetrics ?? []) {
      const scope = options.promoteScopeMetadata ? scopeLabels(scopeMetrics) : undefined;
      const context = scope === undefined ? resource : { ...resource, scope };
      for (const metric of scopeMetrics.metrics ?? []) convertMetric(conversion, metric, context);
    }
    conversion.addTargetInfo(attributes, resource);
  }
  return {
    series: [...conversion.series.values()],
    targetInfo: [...conversion.targetInfo.values()],
    metadata: [...conversion.metadata.values()],
    rejected: conversion.rejected,
    reasons: conversion.reasons,
    undo: () => {
      for (const undo of conversion.undos.reverse()) undo();
    },
  };
}

function convertMetric(conversion: Conversion, metric: Metric, resource: Resource): void {
  const type = otlpType(metric);
  if (type === undefined) {
    if (metric.exponentialHistogram)
      conversion.reject(
        countPoints(metric),
        "unsupported_metric",
        `exponential histogram ${metric.name}: not supported; use explicit bucket histograms`,
      );
    return;
  }
  const name = prometheusMetricName(metric.name ?? "", metric.unit ?? "", type, conversion.options.translationStrategy);
  if (name === "") {
    conversion.reject(
      countPoints(metric),
      "unsupported_metric",
      `metric ${JSON.stringify(metric.name ?? "")}: no valid Prometheus name`,
    );
    return;
  }
  const temporality = metric.sum?.aggregationTemporality ?? metric.histogram?.aggregationTemporality;
  if (temporality !== undefined && temporality !== CUMULATIVE && temporality !== DELTA) {
    conversion.reject(
      countPoints(metric),
      "unsupported_metric",
      `${type} ${metric.name}: aggregation temporality unspecified; set the exporter's temporality preference`,
    );
    return;
  }
  conversion.metadata.set(name, {
    name,
    type: METADATA_TYPE[type],
    help: truncateHelp(metric.description ?? ""),
    unit: unitOf(metric),
  });
  const delta = temporality === DELTA;
  const state = conversion.options.delta;
  if (metric.gauge || metric.sum) {
    const kind = type === "counter" ? SampleKind.Counter : SampleKind.Gauge;
    for (const point of recorded(metric.gauge?.dataPoints ?? metric.sum?.dataPoints)) {
      const labels = pointLabels(point.attributes, resource);
      const timeMs = conversion.timeMs(point.timeUnixNano);
      const value = delta
        ? conversion.cumulative(state.addNumber.bind(state), metric, name, labels, point, timeMs, numberValue(point))
        : numberValue(point);
      if (value !== undefined) conversion.add(name, labels, kind, timeMs, value);
    }
  } else if (metric.histogram) {
    for (const point of recorded(metric.histogram.dataPoints)) {
      const labels = pointLabels(point.attributes, resource);
      const timeMs = conversion.timeMs(point.timeUnixNano);
      const counts = delta
        ? conversion.cumulative(
            state.addHistogram.bind(state),
            metric,
            name,
            labels,
            point,
            timeMs,
            histogramCounts(point),
          )
        : histogramCounts(point);
      if (counts !== undefined) addHistogram(conversion, name, labels, timeMs, counts);
    }
  } else if (metric.summary) {
    for (const point of recorded(metric.summary.dataPoints))
      addSummary(conversion, name, pointLabels(point.attributes, resource), point);
  }
}

function histogramCounts(point: HistogramDataPoint): HistogramCounts {
  const bounds = point.explicitBounds ?? [];
  return {
    bounds,
    counts: bounds.map((_, i) => Number(point.bucketCounts?.[i] ?? 0)),
    count: Number(point.count ?? 0),
    sum: point.sum,
  };
}

function addHistogram(conversion: Conversion, name: string, labels: Labels, timeMs: number, h: HistogramCounts): void {
  let cumulative = 0;
  h.bounds.forEach((bound, i) => {
    cumulative += h.counts[i] ?? 0;
    conversion.add(
      `${name}_bucket`,
      withLabel(labels, "le", formatBound(bound)),
      SampleKind.HistogramBucket,
      timeMs,
      cumulative,
    );
  });
  conversion.add(`${name}_bucket`, withLabel(labels, "le", "+Inf"), SampleKind.HistogramBucket, timeMs, h.count);
  if (h.sum !== undefined) conversion.add(`${name}_sum`, labels, SampleKind.HistogramSum, timeMs, h.sum);
  conversion.add(`${name}_count`, labels, SampleKind.HistogramCount, timeMs, h.count);
}

function addSummary(conversion: Conversion, name: string, labels: Labels, point: SummaryDataPoint): void {
  const timeMs = conversion.timeMs(point.timeUnixNano);
  for (const { quantile = 0, value = 0 } of point.quantileValues ?? [])
    conversion.add(name, withLabel(labels, "quantile", formatBound(quantile)), SampleKind.Gauge, timeMs, value);
  conversion.add(`${name}_sum`, labels, SampleKind.Counter, timeMs, point.sum ?? 0);
  conversion.add(`${name}_count`, labels, SampleKind.Counter, timeMs, Number(point.count ?? 0));
}
