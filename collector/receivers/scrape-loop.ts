import { SampleKind, type Series } from "../../proto/batch.js";
import { type Labels, persistedLabelsText } from "../../proto/labels.js";
import { STALE_NAN } from "../../proto/staleness.js";
import { type BatchLimits, checkLabels, LABEL_NAME, METRIC_NAME, ValidationError } from "../../proto/validate.js";
import { relabel, type RelabelRule } from "../processing/relabel.js";
import {
  type ExposedSample,
  ExpositionError,
  formatOf,
  type MetricType,
  parseExposition,
  seriesLabels,
} from "./exposition.js";
import { type ScrapeClient, ScrapeHttpError } from "./scrape-http.js";
import type { Target } from "./scrape-targets.js";

// One target's scrape loop, with Prometheus 2.42's semantics (scrape/scrape.go):
//
// - Every interval, one scrape at a time, samples stamped with the scrape's start unless honor_timestamps lets
//   the target's own timestamps through.
// - A series is labeled once, when first seen (a cache keyed by the series as exposed): target labels added
//   (honor_labels false: a clashing scraped label becomes `exported_<name>`), metric_relabel_configs applied.
// - A parse error, a sample_limit or label limit broken, fails the whole scrape: nothing of it is kept, `up` is 0.
// - A series exposed by the previous scrape and missing from this one (or all of them when the scrape failed) gets
//   a staleness marker at this scrape's time; series with their own timestamps are left to the lookback.
// - `up`, `scrape_duration_seconds`, `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling` and
//   `scrape_series_added` after each scrape, with the target's labels.
// - When the target goes away, after about two intervals (it may come back), its series and report series are
//   marked stale; not when the collector stops, which resumes where it was.

export interface ScrapeJobSettings {
  honorLabels: boolean;
  honorTimestamps: boolean;
  metricRelabel: RelabelRule[];
  sampleLimit: number;
  labelLimit: number;
  labelNameLengthLimit: number;
  labelValueLengthLimit: number;
  /** The collector's own limits on every series it accepts. */
  limits: BatchLimits;
}

export interface ScrapeOutcome {
  series: Series[];
  samples: number;
  /** Series left out for breaking the collector's limits, by reason. */
  rejected: Map<string, number>;
}

/** A failure of the scrape's content; the message is the target's lastError, as Prometheus words it. */
class ScrapeFailure extends Error {}

const REPORT_NAMES = [
  "up",
  "scrape_duration_seconds",
  "scrape_samples_scraped",
  "scrape_samples_post_metric_relabeling",
  "scrape_series_added",
] as const;

interface CacheEntry {
  /** Name and labels as one key, the identity staleness tracking goes by. */
  key: string;
  name: string;
  /** Without `__name__`. */
  labels: Labels;
  kind: SampleKind;
  iteration: number;
  /** Why the collector's own limits refuse the series, if they do. */
  refused: string | undefined;
}

/** The kind of a sample by the TYPE of its family and its suffix; kinds decide counter handling in rollups. */
export function kindOf(type: MetricType, name: string, family: string): SampleKind {
  const suffix = name.slice(family.length);
  switch (type) {
    case "counter":
      return suffix === "_created" ? SampleKind.Gauge : SampleKind.Counter;
    case "histogram":
      return suffix === "_bucket"
        ? SampleKind.HistogramBucket
        : suffix === "_sum"
          ? SampleKind.HistogramSum
          : suffix === "_count"
            ? SampleKind.HistogramCount
            : SampleKind.Gauge;
    case "summary":
      return suffix === "_sum" || suffix === "_count" ? SampleKind.Counter : SampleKind.Gauge;
    default:
      return SampleKind.Gauge;
  }
}

export class ScrapeLoop {
  health: "unknown" | "up" | "down" = "unknown";
  lastError = "";
  lastScrapeMs: number | undefined;
  lastDurationS = 0;

  private readonly cache = new Map<string, CacheEntry>();
  private readonly dropped = new Map<string, number>();
  private iteration = 0;
  private successfulCount = 0;
  private seriesPrevious = new Map<string, CacheEntry>();
  private seriesCurrent = new Map<string, CacheEntry>();
  private readonly reportLabels: Labels;
  private timer: NodeJS.Timeout | undefined;
  private nextMs = 0;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    readonly target: Target,
    private readonly job: ScrapeJobSettings,
    private readonly client: ScrapeClient,
    /** Receives each scrape's series (samples, staleness markers, report series) for the disk buffer. */
    private readonly sink: (outcome: ScrapeOutcome) => void,
  ) {
    this.reportLabels = target.publicLabels;
  }

  /** Starts scraping after `offsetMs`, which spreads a job's targets over the interval. */
  start(offsetMs: number): void {
    this.nextMs = Date.now() + offsetMs;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      () => {
        this.running = this.scrapeAndReport(this.nextMs).finally(() => {
          this.running = undefined;
          const now = Date.now();
          do this.nextMs += this.target.intervalMs;
          while (this.nextMs <= now);
          this.schedule();
        });
      },
      Math.max(0, this.nextMs - Date.now()),
    );
  }

  /**
   * Stops the loop. With `markStale`, waits until about two intervals after the next scrape would have been
   * (unless `cancelled` says the target is back), then marks its series stale at that next scrape's time.
   */
  async stop(markStale: { cancelled: () => boolean } | undefined): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (markStale === undefined || this.lastScrapeMs === undefined) return;
    const staleMs = Math.max(this.nextMs, Date.now());
    await new Promise((resolve) => setTimeout(resolve, staleMs - Date.now() + this.target.intervalMs * 1.1).unref());
    if (markStale.cancelled()) return;
    const stale = this.append("", "text", staleMs);
    const series = stale.series;
    for (const name of REPORT_NAMES) series.push(this.reportSeries(name, staleMs, STALE_NAN));
    this.sink({ series, samples: series.length, rejected: new Map() });
  }

  /** One scrape with its report, at `timeMs` (its scheduled start). */
  async scrapeAndReport(timeMs: number): Promise<void> {
    const started = performance.now();
    let body: string | undefined;
    let format: "text" | "openmetrics" = "text";
    let error: string | undefined;
    try {
      const scraped = await this.client.scrape(this.target.url, this.target.timeoutMs);
      format = formatOf(scraped.contentType);
      try {
        body = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(scraped.bytes);
      } catch {
        throw new ScrapeHttpError("invalid UTF-8 in the scraped body");
      }
    } catch (err) {
      if (!(err instanceof ScrapeHttpError)) throw err;
      error = err.message;
    }
    // An empty exposition (a failed scrape's) is read as text, which, unlike OpenMetrics, may be empty.
    let result = this.append(body ?? "", body === undefined ? "text" : format, timeMs);
    if (result.error !== undefined) {
      // Nothing of a failed scrape is kept; an empty one marks what is no longer there stale.
      const failed = result;
      result = {
        ...this.append("", "text", timeMs),
        total: failed.total,
        added: failed.added,
        seriesAdded: failed.seriesAdded,
      };
      error ??= failed.error;
    }
    const durationS = (performance.now() - started) / 1000;
    const values: Record<(typeof REPORT_NAMES)[number], number> = {
      up: error === undefined ? 1 : 0,
      scrape_duration_seconds: durationS,
      scrape_samples_scraped: result.total,
      scrape_samples_post_metric_relabeling: result.added,
      scrape_series_added: result.seriesAdded,
    };
    const series = result.series;
    for (const name of REPORT_NAMES) series.push(this.reportSeries(name, timeMs, values[name]));
    this.health = error === undefined ? "up" : "down";
    this.lastError = error ?? "";
    this.lastScrapeMs = timeMs;
    this.lastDurationS = durationS;
    this.sink({ series, samples: series.reduce((n, s) => n + s.points.length, 0), rejected: result.rejected });
  }

  private reportSeries(name: string, timeMs: number, value: number): Series {
    return { name, labels: this.reportLabels, kind: SampleKind.Gauge, points: [{ timeUnixMs: timeMs, value }] };
  }

  /**
   * Reads one exposition into series (Prometheus's scrapeLoop.append): each sample labeled through the cache,
   * then the staleness markers of the series gone since the previous scrape. On a failure `error` says why
   * and the series must not be kept.
   */
  private append(
    body: string,
    format: "text" | "openmetrics",
    timeMs: number,
  ): {
    series: Series[];
    total: number;
    added: number;
    seriesAdded: number;
    rejected: Map<string, number>;
    error?: string;
  } {
    const out = new Map<string, Series>();
    const rejected = new Map<string, number>();
    let total = 0;
    let added = 0;
    let seriesAdded = 0;
    let overLimit = false;
    const job = this.job;
    const onSample = (sample: ExposedSample) => {
      total++;
      const explicit = job.honorTimestamps && sample.timestampMs !== undefined;
      const at = explicit ? sample.timestampMs! : timeMs;
      if (this.dropped.has(sample.series)) {
        this.dropped.set(sample.series, this.iteration);
        return;
      }
      let entry = this.cache.get(sample.series);
      const cached = entry !== undefined;
      if (entry === undefined) {
        const labels = this.labelSample(sample);
        if (labels === null) {
          this.dropped.set(sample.series, this.iteration);
          return;
        }
        const name = labels["__name__"]!;
        delete labels["__name__"];
        entry = {
          key: `${name}${persistedLabelsText(labels)}`,
          name,
          labels,
          kind: kindOf(sample.type, sample.name, sample.family),
          iteration: this.iteration,
          refused: this.limitProblem(name, labels),
        };
      } else entry.iteration = this.iteration;
      let appended = false;
      if (job.sampleLimit > 0 && added >= job.sampleLimit) overLimit = true;
      else {
        const reason = entry.refused;
        if (reason !== undefined) rejected.set(reason, (rejected.get(reason) ?? 0) + 1);
        else {
          let series = out.get(entry.key);
          if (series === undefined) {
            out.set(entry.key, (series = { name: entry.name, labels: entry.labels, kind: entry.kind, points: [] }));
            series.points.push({ timeUnixMs: at, value: sample.value });
          } else if (!series.points.some((p) => p.timeUnixMs === at))
            series.points.push({ timeUnixMs: at, value: sample.value });
          appended = true;
        }
      }
      if (!cached) {
        if (!explicit) this.seriesCurrent.set(entry.key, entry);
        this.cache.set(sample.series, entry);
        if (appended && !overLimit) seriesAdded++;
      } else if (appended && !explicit) this.seriesCurrent.set(entry.key, entry);
      added++;
    };
    let error: string | undefined;
    try {
      parseExposition(body, format, onSample);
    } catch (err) {
      if (!(err instanceof ExpositionError || err instanceof ScrapeFailure)) throw err;
      error = err.message;
    }
    if (error === undefined && overLimit) error = "sample limit exceeded";
    if (error !== undefined) return { series: [], total, added, seriesAdded, rejected, error };
    for (const [key, entry] of this.seriesPrevious) {
      if (this.seriesCurrent.has(key)) continue;
      const marker = { timeUnixMs: timeMs, value: STALE_NAN };
      const series = out.get(key);
      if (series !== undefined) series.points.push(marker);
      else out.set(key, { name: entry.name, labels: entry.labels, kind: entry.kind, points: [marker] });
    }
    this.iterationDone(body.length > 0);
    return { series: [...out.values()], total, added, seriesAdded, rejected };
  }

  /** Why the collector's own limits refuse a series, or undefined. */
  private limitProblem(name: string, labels: Labels): string | undefined {
    try {
      checkLabels(labels, this.job.limits, name);
      return undefined;
    } catch (err) {
      if (err instanceof ValidationError) return err.reason;
      throw err;
    }
  }

  /** A new series' final labels (null when relabeling dropped it); throws ScrapeFailure for what fails the scrape. */
  private labelSample(sample: ExposedSample): Labels | null {
    let exposed: Labels;
    try {
      exposed = seriesLabels(sample.series);
    } catch (err) {
      if (err instanceof ExpositionError) throw new ScrapeFailure(err.message.replace(/^line 0: /, ""));
      throw err;
    }
    const labels = this.withTargetLabels(exposed);
    const relabeled = relabel(labels, this.job.metricRelabel);
    if (relabeled === null || Object.keys(relabeled).length === 0) return null;
    if (relabeled["__name__"] === undefined) throw new ScrapeFailure("missing metric name (__name__ label)");
    const names = Object.keys(relabeled);
    if (!METRIC_NAME.test(relabeled["__name__"]) || names.some((n) => !LABEL_NAME.test(n)))
      throw new ScrapeFailure(`invalid metric name or label names: ${persistedLabelsText(relabeled)}`);
    const job = this.job;
    const metric = relabeled["__name__"].slice(0, 50);
    if (job.labelLimit > 0 && names.length > job.labelLimit)
      throw new ScrapeFailure(
        `label_limit exceeded (metric: ${metric}, number of labels: ${names.length}, limit: ${job.labelLimit})`,
      );
    for (const name of names) {
      const nameLength = Buffer.byteLength(name);
      if (job.labelNameLengthLimit > 0 && nameLength > job.labelNameLengthLimit)
        throw new ScrapeFailure(
          `label_name_length_limit exceeded (metric: ${metric}, label name: ${name.slice(0, 50)}, length: ${nameLength}, limit: ${job.labelNameLengthLimit})`,
        );
      const valueLength = Buffer.byteLength(relabeled[name]!);
      if (job.labelValueLengthLimit > 0 && valueLength > job.labelValueLengthLimit)
        throw new ScrapeFailure(
          `label_value_length_limit exceeded (metric: ${metric}, label name: ${name.slice(0, 50)}, length: ${valueLength}, limit: ${job.labelValueLengthLimit})`,
        );
    }
    return relabeled;
  }

  /** The target's labels on a scraped series (Prometheus's mutateSampleLabels before metric relabeling). */
  private withTargetLabels(exposed: Labels): Labels {
    const out: Labels = Object.create(null);
    for (const name in exposed) if (exposed[name] !== "") out[name] = exposed[name]!;
    const target = this.target.publicLabels;
    if (this.job.honorLabels) {
      for (const name in target) if (!(name in out)) out[name] = target[name]!;
      return out;
    }
    const clashes: [string, string][] = [];
    for (const name of Object.keys(target).sort()) {
      if (out[name] !== undefined) clashes.push([name, out[name]]);
      out[name] = target[name]!;
    }
    clashes.sort((a, b) => a[0].length - b[0].length);
    const taken = new Set<string>();
    for (const clash of clashes) {
      let name = clash[0];
      do name = `exported_${name}`;
      while (exposed[name] !== undefined || target[name] !== undefined || taken.has(name));
      taken.add(name);
      clash[0] = name;
    }
    for (const [name, value] of clashes) out[name] = value;
    return out;
  }

  /** Prometheus's scrapeCache.iterDone: forget what the last successful scrape did not see; current becomes previous. */
  private iterationDone(flush: boolean): void {
    const count = this.cache.size + this.dropped.size;
    if (flush) this.successfulCount = count;
    // A target whose failing scrapes keep exposing new series must not grow the cache without bound.
    else if (count > this.successfulCount * 2 + 1000) flush = true;
    if (flush) {
      for (const [series, entry] of this.cache) if (entry.iteration !== this.iteration) this.cache.delete(series);
      for (const [series, iteration] of this.dropped) if (iteration !== this.iteration) this.dropped.delete(series);
      this.iteration++;
    }
    [this.seriesPrevious, this.seriesCurrent] = [this.seriesCurrent, this.seriesPrevious];
    this.seriesCurrent.clear();
  }
}
