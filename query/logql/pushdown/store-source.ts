import type { LogEntry, LogStream } from "../../../proto/batch.js";
import { type Labels, labelsKey } from "../../../proto/labels.js";
import type { Direction, LineFilter, LogColumns, LogSelect, Store } from "../../../storage/store.js";
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
    const pages = this.pages(log, pushed, startNs, endNs, direction, entriesPerRead, limit === undefined);
    // One record per stream for the whole read, though each page looks its streams up anew: what the pipeline
    // keeps per record (its entries, its interned label sets) then lasts from page to page.
    const records = new Map<string, Labels>();
    const same = (labels: Labels): Labels => {
      const key = labelsKey(labels);
      const known = records.get(key);
      if (known !== undefined) return known;
      records.set(key, labels);
      return labels;
    };
    for await (const page of pages) {
      const rows: LogRow[] = [];
      const { stream, ts, lines, metadata } = page;
      const streams = page.streams.map(same);
      for (let i = 0; i < ts.length; i++) {
        const line = lines[i]!;
        this.count(line, metadata[i]!);
        const result = pipeline.process(ts[i]!, line, streams[stream[i]!]!, metadata[i]!);
        if (result === null) continue;
        const row: LogRow = { tsNs: ts[i]!, line: result.line, labels: result.labels };
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
   * With `prefetch`, the next read starts before a page is handed out, so that the Store reads while the page
   * runs through the pipeline; a reader that takes every page (a metric query) wants it, one that stops at a
   * limit would read a page for nothing.
   */
  private async *pages(
    log: LogExpr,
    lineFilters: LineFilter[],
    startNs: bigint,
    endNs: bigint,
    direction: Direction,
    pageEntries: number,
    prefetch: boolean,
  ): AsyncIterable<LogColumns> {
    const forward = direction === "forward";
    let low = startNs;
    let high = endNs;
    let span: bigint | undefined;
    // `whole`: the nanosecond that a full page of entries sharing one timestamp left, read without a limit.
    type Read = { low: bigint; high: bigint; whole: boolean };
    const following = (): Read | undefined => {
      if (low >= high) return undefined;
      const readLow = forward || span === undefined || high - span < low ? low : high - span;
      const readHigh = !forward || span === undefined || low + span > high ? high : low + span;
      return { low: readLow, high: readHigh, whole: false };
    };
    const start = (read: Read) =>
      this.read(log, lineFilters, read.low, read.high, direction, read.whole ? Number.MAX_SAFE_INTEGER : pageEntries);
    let current = following();
    let pending = current === undefined ? undefined : start(current);
    try {
      while (current !== undefined) {
        const page = await pending!;
        pending = undefined;
        const count = page.ts.length;
        let out: LogColumns | undefined = page;
        if (current.whole || count < pageEntries) {
          if (forward) low = current.high;
          else high = current.low;
          // A sparse stretch: cover more time with the next read.
          if (!current.whole && span !== undefined && count < pageEntries / 2) span *= 2n;
          current = following();
        } else {
          const boundary = page.ts[count - 1]!;
          let complete = count - 1;
          while (complete > 0 && page.ts[complete - 1] === boundary) complete--;
          if (complete > 0) {
            out = head(page, complete);
            span = forward ? boundary - current.low : current.high - boundary;
            if (span < 1n) span = 1n;
            if (forward) low = boundary;
            else high = boundary + 1n;
            current = following();
          } else {
            // Every entry of the page shares one timestamp: read that nanosecond whole, then move past it.
            out = undefined;
            current = { low: boundary, high: boundary + 1n, whole: true };
          }
        }
        if (prefetch && current !== undefined) pending = start(current);
        if (out !== undefined && out.ts.length > 0) yield out;
        if (!prefetch && current !== undefined) pending = start(current);
      }
    } finally {
      // A reader that stopped early leaves a read under way: its failure no longer matters to anyone.
      pending?.catch(() => undefined);
    }
  }

  private async read(
    log: LogExpr,
    lineFilters: LineFilter[],
    startNs: bigint,
    endNs: bigint,
    direction: Direction,
    limit: number,
  ): Promise<LogColumns> {
    const select: LogSelect = {
      tenant: this.tenant,
      matchers: log.matchers,
      startNs,
      endNs,
      lineFilters,
      limit,
      direction,
    };
    if (readsColumns(this.store)) return this.store.selectLogColumns(select);
    return columnsOf(await this.store.selectLogs(select), direction);
  }
}

/**
 * Whether the store's column read answers as its selectLogs does: it has one, and its selectLogs is its class's
 * own. A wrapper that replaces selectLogs (to watch or alter reads) is honoured: reads then go through it.
 */
function readsColumns(store: Store): store is Store & Required<Pick<Store, "selectLogColumns">> {
  const own = (Object.getPrototypeOf(store) as Partial<Store> | null)?.selectLogs;
  return store.selectLogColumns !== undefined && store.selectLogs === own;
}

/** The first `count` entries of a page. */
function head(page: LogColumns, count: number): LogColumns {
  return {
    streams: page.streams,
    stream: page.stream.slice(0, count),
    ts: page.ts.slice(0, count),
    lines: page.lines.slice(0, count),
    metadata: page.metadata.slice(0, count),
  };
}

/** selectLogs' streams (sorted by label text) merged by time as LogColumns order them: for stores without columns. */
function columnsOf(read: LogStream[], direction: Direction): LogColumns {
  const order: { stream: number; entry: LogEntry }[] = [];
  read.forEach((stream, s) => {
    for (const entry of stream.entries) order.push({ stream: s, entry });
  });
  const sign = direction === "forward" ? 1 : -1;
  order.sort((a, b) =>
    a.entry.timeUnixNano === b.entry.timeUnixNano ? 0 : a.entry.timeUnixNano < b.entry.timeUnixNano ? -sign : sign,
  );
  return {
    streams: read.map((stream) => stream.labels),
    stream: order.map((o) => o.stream),
    ts: order.map((o) => o.entry.timeUnixNano),
    lines: order.map((o) => o.entry.line),
    metadata: order.map((o) => o.entry.metadata),
  };
}
