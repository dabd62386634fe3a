import type { Labels } from "../../proto/labels.js";
import type {
  LogCountSelect,
  LogCountSeries,
  LogVolumeSelect,
  SeriesSelect,
  Store,
  WriteEpochs,
} from "../../storage/store.js";
import { type IndexedStream, StreamsIndexReads } from "../../storage/streams-index.js";
import type { IndexCacheConfig } from "../config.js";
import { MinuteDetails } from "./minute-details.js";
import { MINUTE_MS, selectorsTest, type StreamTest, TenantCatalog } from "./tenant-catalog.js";

// The reads of the Loki index endpoints (/labels, /label/<name>/values, /series, /index/stats, /index/volume),
// answered from a per-tenant catalog in memory, as Loki answers them from the in-memory heads of its TSDB index,
// rather than by a store query each (a bare query through the ClickHouse client alone costs more than Loki's answer).
//
// A tenant's catalog loads on first use and then reads only what the store stamps as written since its last read
// (Store.indexChanges): streams that arrive late, hours after their entries' time, as edge nodes that were offline
// send them, are picked up like any other. It answers at most `staleness_ms` stale, and at once after a write or
// retention run of the same store object (Store.writeEpochs), so that this process reads its own writes. Past its
// memory bounds, or for what it does not hold (volume before its window, line filters, metrics), the store answers.

/** The store reads behind the index endpoints. */
export type IndexReads = Pick<Store, "series" | "labelNames" | "labelValues" | "countLogs" | "logVolume">;

const MINUTE_NS = BigInt(MINUTE_MS) * 1_000_000n;
/** A tenant over a memory bound is answered by the store this long before its catalog is tried again. */
const OVERFLOW_RECHECK_MS = 300_000;
/** A tenant's catalog unused this long is dropped. */
const IDLE_MS = 600_000;
/** Part minutes kept per tenant, and the most entries a kept minute may have. */
const DETAIL_MINUTES = 8;
const DETAIL_MAX_ENTRIES = 20_000;

const NO_EPOCHS: WriteEpochs = { logAppends: 0, retentionRuns: 0 };

interface TenantState {
  catalog: TenantCatalog | undefined;
  details: MinuteDetails;
  watermarkMs: number | undefined;
  /** The clock and the store's write epochs when the last refresh began. */
  refreshedAt: number;
  epochs: WriteEpochs;
  refreshing: Promise<void> | undefined;
  overflowUntil: number;
  usedAt: number;
}

/** The streams index reads (series, label names and values) over a catalog's streams. */
class CatalogStreams extends StreamsIndexReads {
  constructor(
    private readonly catalog: TenantCatalog,
    private readonly test: StreamTest,
  ) {
    super();
  }

  protected override lookupStreams(select: SeriesSelect): Promise<IndexedStream[]> {
    return Promise.resolve(this.catalog.lookup(this.test, select.startMs, select.endMs));
  }

  /** As the stores' series, without sorting again: lookup finds streams in label text order. */
  override series(select: SeriesSelect): Promise<Labels[]> {
    return Promise.resolve(this.catalog.lookup(this.test, select.startMs, select.endMs).map((s) => s.labels));
  }
}

export class IndexCatalog implements IndexReads {
  private readonly tenants = new Map<string, TenantState>();
  private sweptAt: number;

  /**
   * @param store a store with Store.indexChanges
   * @param clock milliseconds of a monotonic clock, for staleness and idleness
   */
  constructor(
    private readonly store: Store,
    private readonly config: IndexCacheConfig,
    private readonly clock: () => number = () => performance.now(),
  ) {
    if (store.indexChanges === undefined) throw new Error("an index catalog needs a store that keeps index changes");
    this.sweptAt = clock();
  }

  /** The catalog's reads over `store`, or the store itself when the catalog is off or the store keeps no changes. */
  static over(store: Store, config: IndexCacheConfig, clock?: () => number): IndexReads {
    if (!config.enabled || store.indexChanges === undefined) return store;
    return new IndexCatalog(store, config, clock);
  }

  /** The tenant's catalog, fresh within the staleness bound; undefined when the store must answer. */
  private async state(tenant: string): Promise<TenantState | undefined> {
    const now = this.clock();
    this.sweep(now);
    let state = this.tenants.get(tenant);
    if (state === undefined) {
      state = {
        catalog: undefined,
        details: new MinuteDetails(
          (minuteNs) =>
            this.store.countLogs({ tenant, matchers: [], startNs: minuteNs, endNs: minuteNs + MINUTE_NS, stepNs: 1n }),
          DETAIL_MINUTES,
        ),
        watermarkMs: undefined,
        refreshedAt: -Infinity,
        epochs: NO_EPOCHS,
        refreshing: undefined,
        overflowUntil: -Infinity,
        usedAt: now,
      };
      this.tenants.set(tenant, state);
    }
    state.usedAt = now;
    if (now < state.overflowUntil) return undefined;
    const wanted = this.store.writeEpochs?.() ?? NO_EPOCHS;
    try {
      while (!this.fresh(state, now, wanted)) {
        if (state.refreshing === undefined) {
          const current = state;
          state.refreshing = this.refresh(tenant, state).finally(() => (current.refreshing = undefined));
        }
        await state.refreshing;
        if (state.catalog === undefined) return undefined;
      }
    } catch {
      // The store answers, or tells what is wrong, as it would without a catalog.
      return undefined;
    }
    // Past half its staleness the catalog refreshes behind this answer, so that a steady flow of requests seldom
    // waits for a refresh; a failure there leaves the next request to refresh (and answer from the store).
    if (now - state.refreshedAt > this.config.staleness_ms / 2 && state.refreshing === undefined) {
      const current = state;
      state.refreshing = this.refresh(tenant, state)
        .catch(() => undefined)
        .finally(() => (current.refreshing = undefined));
    }
    return state;
  }

  /** Whether the last refresh began within the staleness bound and after the writes this request may have seen. */
  private fresh(state: TenantState, now: number, wanted: WriteEpochs): boolean {
    return (
      state.catalog !== undefined &&
      now - state.refreshedAt <= this.config.staleness_ms &&
      state.epochs.logAppends >= wanted.logAppends &&
      state.epochs.retentionRuns >= wanted.retentionRuns
    );
  }

  private async refresh(tenant: string, state: TenantState): Promise<void> {
    const startedAt = this.clock();
    const epochs = this.store.writeEpochs?.() ?? NO_EPOCHS;
    const windowFromMs = Math.floor((Date.now() - this.config.volume_window_hours * 3_600_000) / MINUTE_MS) * MINUTE_MS;
    // A retention run deletes without stamping anything: what it left is read whole.
    const reload = state.catalog === undefined || epochs.retentionRuns !== state.epochs.retentionRuns;
    const catalog = reload ? new TenantCatalog(windowFromMs) : state.catalog!;
    catalog.prune(windowFromMs);
    const limit = Math.max(this.config.max_streams, this.config.max_volume_cells);
    const changes = await this.store.indexChanges!({
      tenant,
      signal: "logs",
      sinceMs: reload ? undefined : state.watermarkMs,
      volumeFromMs: catalog.volumeFromMs,
      limit,
    });
    if (reload) state.details.clear();
    catalog.apply(changes, (fromMs, toMs) => state.details.invalidate(fromMs, toMs));
    if (
      changes.streams.length > limit ||
      changes.volume.length > limit ||
      catalog.streamCount > this.config.max_streams ||
      catalog.cellCount > this.config.max_volume_cells
    ) {
      state.catalog = undefined;
      state.details.clear();
      state.overflowUntil = startedAt + OVERFLOW_RECHECK_MS;
      return;
    }
    state.catalog = catalog;
    state.watermarkMs = changes.watermarkMs;
    state.refreshedAt = startedAt;
    state.epochs = epochs;
  }

  /** Drops the catalogs of tenants unused for IDLE_MS, looking at most once a minute. */
  private sweep(now: number): void {
    if (now - this.sweptAt < MINUTE_MS) return;
    this.sweptAt = now;
    for (const [tenant, state] of this.tenants) {
      if (now - state.usedAt > IDLE_MS && state.refreshing === undefined) this.tenants.delete(tenant);
    }
  }

  /** The catalog's streams reads for a select of logs, or undefined when the store must answer it. */
  private async streamsFor(select: SeriesSelect): Promise<CatalogStreams | undefined> {
    if (select.signal !== "logs") return undefined;
    const test = selectorsTest(select.selectors);
    if (test === undefined) return undefined;
    const catalog = (await this.state(select.tenant))?.catalog;
    return catalog === undefined ? undefined : new CatalogStreams(catalog, test);
  }

  async series(select: SeriesSelect): Promise<Labels[]> {
    return ((await this.streamsFor(select)) ?? this.store).series(select);
  }

  async labelNames(select: SeriesSelect): Promise<string[]> {
    return ((await this.streamsFor(select)) ?? this.store).labelNames(select);
  }

  async labelValues(select: SeriesSelect, name: string): Promise<string[]> {
    return ((await this.streamsFor(select)) ?? this.store).labelValues(select, name);
  }

  async logVolume(select: LogVolumeSelect): Promise<LogCountSeries[]> {
    const whole = [select.startMs, select.endMs, select.stepMs].every(
      (ms) => Number.isSafeInteger(ms) && ms % MINUTE_MS === 0,
    );
    const test = selectorsTest([select.matchers]);
    if (!whole || select.stepMs <= 0 || test === undefined) return this.store.logVolume(select);
    const catalog = (await this.state(select.tenant))?.catalog;
    if (catalog === undefined || select.startMs < catalog.volumeFromMs) return this.store.logVolume(select);
    return catalog.volumeOf(catalog.lookup(test, select.startMs, select.endMs), select);
  }

  /**
   * Counts within one minute, as the part minutes at the ends of an index/stats or index/volume range are counted,
   * from the minute's entries kept in memory; every other count from the store.
   */
  async countLogs(select: LogCountSelect): Promise<LogCountSeries[]> {
    const { startNs, endNs } = select;
    const minuteNs = (startNs / MINUTE_NS) * MINUTE_NS;
    const test = selectorsTest([select.matchers]);
    const partMinute =
      (select.lineFilters ?? []).length === 0 &&
      select.groupBy === undefined &&
      select.byMetadata !== true &&
      select.bytes !== false &&
      startNs >= 0n &&
      endNs > startNs &&
      endNs <= minuteNs + MINUTE_NS &&
      select.stepNs >= endNs - startNs &&
      test !== undefined;
    if (!partMinute) return this.store.countLogs(select);
    const state = await this.state(select.tenant);
    const minuteMs = Number(minuteNs / 1_000_000n);
    const catalog = state?.catalog;
    if (catalog === undefined || minuteMs < catalog.volumeFromMs) return this.store.countLogs(select);
    const entries = catalog.minuteEntries(minuteMs);
    // Every line is in the volume: a minute without any has no entries to count.
    if (entries === 0) return [];
    if (entries > DETAIL_MAX_ENTRIES) return this.store.countLogs(select);
    return state!.details.count(test, startNs, endNs);
  }
}
