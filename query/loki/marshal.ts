import { formatFloatF } from "../../common/go/float-format.js";
import type { Labels } from "../../proto/labels.js";
import type { QueryResult, StreamEntry } from "../logql/evaluation/evaluator.js";

// Query results in Loki's JSON (pkg/util/marshal): sample values as strings in Go's shortest 'f' format ("NaN",
// "+Inf"), sample times as JSON numbers of seconds with millisecond precision, log timestamps as strings of
// nanoseconds. Built as text because JSON.stringify cannot write bigint and would print 1e+21 for large values.

/** Milliseconds as Prometheus's model.Time prints them: seconds, up to three decimals. */
export function formatTime(ms: number): string {
  return String(ms / 1000);
}

export function labelsJson(labels: Labels): string {
  const names = Object.keys(labels).sort();
  return `{${names.map((name) => `${JSON.stringify(name)}:${JSON.stringify(labels[name])}`).join(",")}}`;
}

/** An entry's third element under categorize-labels: `{}`, or its non-empty categories. */
function categoriesJson(categories: StreamEntry[2]): string {
  const parts: string[] = [];
  if (categories !== undefined) {
    if (Object.keys(categories.metadata).length > 0)
      parts.push(`"structuredMetadata":${labelsJson(categories.metadata)}`);
    if (Object.keys(categories.parsed).length > 0) parts.push(`"parsed":${labelsJson(categories.parsed)}`);
  }
  return `{${parts.join(",")}}`;
}

function resultJson(result: QueryResult, categorized: boolean): string {
  switch (result.type) {
    case "streams":
      return result.streams
        .map(
          (stream) =>
            `{"stream":${labelsJson(stream.labels)},"values":[${stream.entries
              .map(
                ([ts, line, categories]) =>
                  `["${ts}",${JSON.stringify(line)}${categorized ? `,${categoriesJson(categories)}` : ""}]`,
              )
              .join(",")}]}`,
        )
        .join(",");
    case "matrix":
      return result.series
        .map(
          (series) =>
            `{"metric":${labelsJson(series.labels)},"values":[${series.points
              .map(([ms, value]) => `[${formatTime(ms)},"${formatFloatF(value)}"]`)
              .join(",")}]}`,
        )
        .join(",");
    case "vector":
      return result.samples
        .map(
          (sample) =>
            `{"metric":${labelsJson(sample.labels)},"value":[${formatTime(sample.tsMs)},"${formatFloatF(sample.value)}"]}`,
        )
        .join(",");
    case "scalar":
      return `${formatTime(result.tsMs)},"${formatFloatF(result.value)}"`;
  }
}

export interface QueryStats {
  execTimeSeconds: number;
  linesProcessed: number;
  bytesProcessed: number;
  structuredMetadataBytesProcessed: number;
  entriesReturned: number;
}

/** The `stats` object in the shape Grafana reads (pkg/logqlmodel/stats); what Bifrost does not measure is 0. */
function statsJson(stats: QueryStats): string {
  const perSecond = (n: number) => (stats.execTimeSeconds > 0 ? Math.round(n / stats.execTimeSeconds) : 0);
  const summary = {
    bytesProcessedPerSecond: perSecond(stats.bytesProcessed),
    linesProcessedPerSecond: perSecond(stats.linesProcessed),
    totalBytesProcessed: stats.bytesProcessed,
    totalLinesProcessed: stats.linesProcessed,
    execTime: stats.execTimeSeconds,
    queueTime: 0,
    subqueries: 0,
    totalEntriesReturned: stats.entriesReturned,
    splits: 0,
    shards: 0,
    totalPostFilterLines: stats.entriesReturned,
    totalStructuredMetadataBytesProcessed: stats.structuredMetadataBytesProcessed,
  };
  return JSON.stringify({ summary, querier: { store: {} }, ingester: {}, cache: {}, index: {} });
}

/**
 * The envelope of /query and /query_range. `encodingFlags` (X-Loki-Response-Encoding-Flags) are echoed on log
 * results, as Loki does; with categorize-labels among them each entry carries its labels by category.
 */
export function queryResponseJson(result: QueryResult, stats: QueryStats, encodingFlags: string[] = []): string {
  const flags =
    result.type === "streams" && encodingFlags.length > 0 ? `"encodingFlags":${JSON.stringify(encodingFlags)},` : "";
  const categorized = result.type === "streams" && encodingFlags.includes(CATEGORIZE_LABELS);
  // A scalar is one [time, value] pair; the other types are lists of series.
  return `{"status":"success","data":{"resultType":"${result.type}",${flags}"result":[${resultJson(result, categorized)}],"stats":${statsJson(stats)}}}`;
}

export const ENCODING_FLAGS_HEADER = "X-Loki-Response-Encoding-Flags";
export const CATEGORIZE_LABELS = "categorize-labels";

/** The flags of an X-Loki-Response-Encoding-Flags header as Loki reads them: comma-separated, each once. */
export function encodingFlags(header: string | undefined): string[] {
  return header === undefined || header === "" ? [] : [...new Set(header.split(","))];
}

export function entriesReturned(result: QueryResult): number {
  switch (result.type) {
    case "streams":
      return result.streams.reduce((n, s) => n + s.entries.length, 0);
    case "matrix":
      return result.series.reduce((n, s) => n + s.points.length, 0);
    case "vector":
      return result.samples.length;
    case "scalar":
      return 1;
  }
}
