import { formatFloatF } from "../../common/go/float-format.js";
import type { Labels } from "../../proto/labels.js";
import type { QueryResult } from "../logql/evaluation/evaluator.js";

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

function resultJson(result: QueryResult): string {
  switch (result.type) {
    case "streams":
      return result.streams
        .map(
          (stream) =>
            `{"stream":${labelsJson(stream.labels)},"values":[${stream.entries
              .map(([ts, line]) => `["${ts}",${JSON.stringify(line)}]`)
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
    totalStructuredMetadataBytesProcessed: 0,
  };
  return JSON.stringify({ summary, querier: { store: {} }, ingester: {}, cache: {}, index: {} });
}

/** The envelope of /query and /query_range. */
export function queryResponseJson(result: QueryResult, stats: QueryStats): string {
  // A scalar is one [time, value] pair; the other types are lists of series.
  return `{"status":"success","data":{"resultType":"${result.type}","result":[${resultJson(result)}],"stats":${statsJson(stats)}}}`;
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
