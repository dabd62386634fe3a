import type { Labels } from "../proto/labels.js";
import type { SeriesSelect } from "./store.js";
import { sortByLabels } from "./values.js";
import { compareText } from "../common/go/string-order.js";

/** A stream or series as a store's streams index returns it. */
export interface IndexedStream {
  fingerprint: string;
  labels: Labels;
  kind: number;
}

/**
 * What a store answers from its streams index alone, derived the same way in every store from the index
 * entries that the store looks up: series (sorted by label text), label names, and non-empty label values.
 */
export abstract class StreamsIndexReads {
  /** The streams or series of `select.signal` matching any of its selectors and seen in [startMs, endMs). */
  protected abstract lookupStreams(select: SeriesSelect): Promise<IndexedStream[]>;

  async series(select: SeriesSelect): Promise<Labels[]> {
    return sortByLabels(await this.lookupStreams(select)).map((s) => s.labels);
  }

  async labelNames(select: SeriesSelect): Promise<string[]> {
    // Names and values are sorted on their own: the streams are read without series' sort by label text.
    const names = new Set<string>();
    for (const { labels } of await this.lookupStreams(select)) for (const name of Object.keys(labels)) names.add(name);
    return [...names].sort(compareText);
  }

  async labelValues(select: SeriesSelect, name: string): Promise<string[]> {
    const values = new Set<string>();
    for (const { labels } of await this.lookupStreams(select)) {
      const value = labels[name];
      if (value !== undefined && value !== "") values.add(value);
    }
    return [...values].sort(compareText);
  }
}
