import type { Labels } from "../../../proto/labels.js";
import type { Direction, LineFilter, Store } from "../../../storage/store.js";
import type { Grouping, LogExpr, LogRange, RangeAggregationExpr } from "../../../common/logql/syntax/ast.js";
import type { EngineSource, LogRow, SampleRow, Step, Timeline } from "../evaluation/source.js";
import { compilePipeline, compileUnwrap } from "../pipeline/pipeline.js";
import { canPush, canPushSum, pushRangeAggregation, type ProcessedStats } from "./range-aggregation.js";
import { pushableLineFilters } from "./line-filters.js";

// Feeds the LogQL engine from the Store. The selector, the time range and the line filters that come before any
// stage that rewrites the line are pushed into the Store's query; the rest of the pipeline runs here. Entries are
// read in pages so that memory stays bounded however long the range is.

/** Entries per Store read; big enough to amortise a round trip, small enough to bound memory. */
const PAGE_ENTRIES = 10_000;

interface Flat {
  tsNs: bigint;
  line: string;
  labels: Labels;
  metadata: Labels;
}

export class StoreSource implements EngineSource {
  readonly processed: ProcessedStats = { lines: 0, bytes: 0, structuredMetadataBytes: 0 };

  /**
   * `pushdown` off makes every range aggregation stream through the engine: the reference that the differential
   * test compares pushed-down answers with.
   */
  constructor(
    private readonly store: Store,
    private readonly tenant: string,
    private readonly options: { pushdown?: boolean; pageEntries?: number } = {},
  ) {}

  async rangeAggregation(expr: RangeAggregationExpr, timeline: Timeline): Promise<Step[] | undefined> {
    if (this.options.pushdown === false || !canPush(expr, timeline)) return undefined;
    return pushRangeAggregation(this.store, this.tenant, expr, timeline, undefined, this.processed);
  }

  async groupedRangeAggregation(
    expr: RangeAggregationExpr,
    grouping: Grouping | undefined,
    timeline: Timeline,
  ): Promise<Step[] | undefined> {
    if (this.options.pushdown === false || !canPushSum(expr, grouping, timeline)) return undefined;
    return pushRangeAggregation(this.store, this.tenant, expr, timeline, { grouping }, this.processed);
  }

  private count(line: string, metadata: Labels): void {
    let metadataBytes = 0;
    for (const name in metadata) metadataBytes += Buffer.byteLength(name) + Buffer.byteLength(metadata[name]!);
    this.processed.lines++;
    this.processed.bytes += Buffer.byteLength(line) + metadataBytes;
    this.processed.structuredMetadataBytes += metadataBytes;
  }

  async *logs(
    log: LogExpr,
    startNs: bigint,
    endNs: bigint,
    direction: Direction,
    limit?: number,
    categorize?: boolean,
    required?: ReadonlySet<string>,
  ): AsyncIterable<LogRow[]> {
    const { pushed, rest } = pushableLineFilters(log.pipeline);
    const pipeline = compilePipeline(rest, { categorize: categorize === true, ...(required && { required }) });
    const pageEntries = this.options.pageEntries ?? PAGE_ENTRIES;
    // When the Store applies the whole pipeline, `limit` entries are all the caller takes; one more lets the page
    // end past the last one's timestamp, so that the entries sharing it are complete without a second read.
    const entriesPerRead = limit !== undefined && rest.length === 0 ? Math.min(pageEntries, limit + 1) : pageEntries;
    for await (const page of this.pages(log, pushed, startNs, endNs, direction, entriesPerRead)) {
      const rows: LogRow[] = [];
      for (const entry of page) {
        this.count(entry.line, entry.metadata);
        const result = pipeline.process(entry.tsNs, entry.line, entry.labels, entry.metadata);
        if (result === null) continue;
        const row: LogRow = { tsNs: entry.tsNs, line: result.line, labels: result.labels };
        if (result.categories !== undefined) row.categories = result.categories;
        rows.push(row);
      }
      if (rows.length > 0) yield rows;
    }
  }

  async *samples(
    range: LogRange,
    startNs: bigint,
    endNs: bigint,
    required?: ReadonlySet<string>,
  ): AsyncIterable<SampleRow[]> {
    if (range.unwrap === undefined) throw new Error("samples() needs a range with unwrap");
    const unwrap = compileUnwrap(range.unwrap);
    for await (const rows of this.logs(range.log, startNs, endNs, "forward", undefined, false, required)) {
      const samples: SampleRow[] = [];
      for (const row of rows) {
        const sample = unwrap(row);
        if (sample !== null) samples.push({ tsNs: row.tsNs, value: sample.value, labels: sample.labels });
      }
      if (samples.length > 0) yield samples;
    }
  }

  /**
   * Pages of entries in `direction` order. A full page may end in the middle of a run of entries with the same
   * timestamp, so only the entries strictly before that last timestamp are emitted and the next page starts at it.
   * After a full page, the next read covers only about the time span that page did: the Store sorts what the read
   * covers to find its first entries, so reading to the end of the range each time would cost the square of it.
   */
  private async *pages(
    log: LogExpr,
    lineFilters: LineFilter[],
    startNs: bigint,
    endNs: bigint,
    direction: Direction,
    pageEntries = this.options.pageEntries ?? PAGE_ENTRIES,
  ): AsyncIterable<Flat[]> {
    const forward = direction === "forward";
    let low = startNs;
    let high = endNs;
    let span: bigint | undefined;
    while (low < high) {
      const readLow = forward || span === undefined || high - span < low ? low : high - span;
      const readHigh = !forward || span === undefined || low + span > high ? high : low + span;
      const page = await this.read(log, lineFilters, readLow, readHigh, direction, pageEntries);
      if (page.length < pageEntries) {
        if (page.length > 0) yield page;
        if (forward) low = readHigh;
        else high = readLow;
        // A sparse stretch: cover more time with the next read.
        if (span !== undefined && page.length < pageEntries / 2) span *= 2n;
        continue;
      }
      const boundary = page[page.length - 1]!.tsNs;
      const complete = page.filter((entry) => entry.tsNs !== boundary);
      if (complete.length > 0) {
        yield complete;
        span = forward ? boundary - readLow : readHigh - boundary;
        if (span < 1n) span = 1n;
        if (forward) low = boundary;
        else high = boundary + 1n;
        continue;
      }
      // Every entry of the page shares one timestamp: read that nanosecond whole, then move past it.
      yield await this.read(log, lineFilters, boundary, boundary + 1n, direction, Number.MAX_SAFE_INTEGER);
      if (forward) low = boundary + 1n;
      else high = boundary;
    }
  }

  private async read(
    log: LogExpr,
    lineFilters: LineFilter[],
    startNs: bigint,
    endNs: bigint,
    direction: Direction,
    limit: number,
  ): Promise<Flat[]> {
    const streams = await this.store.selectLogs({
      tenant: this.tenant,
      matchers: log.matchers,
      startNs,
      endNs,
      lineFilters,
      limit,
      direction,
    });
    const flat: Flat[] = [];
    for (const stream of streams) {
      for (const entry of stream.entries) {
        flat.push({ tsNs: entry.timeUnixNano, line: entry.line, labels: stream.labels, metadata: entry.metadata });
      }
    }
    const sign = direction === "forward" ? 1 : -1;
    return flat.sort((a, b) => (a.tsNs === b.tsNs ? 0 : a.tsNs < b.tsNs ? -sign : sign));
  }
}
