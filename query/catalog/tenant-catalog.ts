import { compareText } from "../../common/go/string-order.js";
import { compileMatcher } from "../../common/matchers.js";
import { RegexSyntaxError } from "../../common/regex.js";
import { type Labels, persistedLabelsText } from "../../proto/labels.js";
import type {
  IndexChanges,
  LabelMatcher,
  LogCountSeries,
  LogVolumeSelect,
  StreamSpanEntry,
  VolumeCell,
} from "../../storage/store.js";
import type { IndexedStream } from "../../storage/streams-index.js";

// One tenant's streams index and recent per-minute log volume in memory (query/catalog/index-catalog.ts keeps it
// fresh): streams with their labels and the span of their entries, and per stream the entries and bytes of each
// minute from `volumeFromMs` on. Reads answer as the stores answer from their tables (storage/streams-index.ts,
// Store.logVolume), so that an answer from here is the store's. Streams are kept in the order stores return them
// (storage/values.ts sortByLabels: by their persisted label text), so that no read sorts them again.

export const MINUTE_MS = 60_000;

/** Whether a stream's labels pass any of the selectors, each matcher reading a missing label as "". */
export type StreamTest = (labels: Labels) => boolean;

/** Most label values whose result one test remembers: streams share values, which then match once. */
const REMEMBERED_VALUES = 10_000;

function remembered(accepts: (value: string) => boolean): (value: string) => boolean {
  const results = new Map<string, boolean>();
  return (value) => {
    let result = results.get(value);
    if (result === undefined) {
      result = accepts(value);
      if (results.size < REMEMBERED_VALUES) results.set(value, result);
    }
    return result;
  };
}

/** The selectors as a test (none: every stream), or undefined for a pattern that the store should refuse itself. */
export function selectorsTest(selectors: LabelMatcher[][]): StreamTest | undefined {
  if (selectors.length === 0) return () => true;
  try {
    const compiled = selectors.map((matchers) =>
      matchers.map((m) => ({ name: m.name, accepts: remembered(compileMatcher(m.op, m.value)) })),
    );
    return (labels) => compiled.some((matchers) => matchers.every((m) => m.accepts(labels[m.name] ?? "")));
  } catch (err) {
    if (err instanceof RegexSyntaxError) return undefined;
    throw err;
  }
}

/** A stream's volume: parallel columns of minutes (ascending), entries and bytes. */
interface MinuteColumns {
  minutes: number[];
  entries: number[];
  bytes: number[];
  /** Running sums (one more than the minutes, from 0) that sum any span with two lookups; made when read. */
  sums: { entries: Float64Array; bytes: Float64Array } | undefined;
}

function sumsOf(columns: MinuteColumns): { entries: Float64Array; bytes: Float64Array } {
  if (columns.sums === undefined) {
    const entries = new Float64Array(columns.minutes.length + 1);
    const bytes = new Float64Array(columns.minutes.length + 1);
    for (let i = 0; i < columns.minutes.length; i++) {
      entries[i + 1] = entries[i]! + columns.entries[i]!;
      bytes[i + 1] = bytes[i]! + columns.bytes[i]!;
    }
    columns.sums = { entries, bytes };
  }
  return columns.sums;
}

/** The first index of a sorted array holding `value` or more. */
function lowerBound(sorted: number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid]! < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** A streams index entry with its label text, which orders streams. */
interface CatalogStream extends StreamSpanEntry {
  text: string;
}

export class TenantCatalog {
  private readonly streams = new Map<string, CatalogStream>();
  /** The streams by label text; rebuilt after a stream is added. */
  private ordered: CatalogStream[] | undefined;
  private readonly volume = new Map<string, MinuteColumns>();
  private cells = 0;

  /** @param volumeFromMs the first minute whose volume the catalog holds whole. */
  constructor(public volumeFromMs: number) {}

  get streamCount(): number {
    return this.streams.size;
  }

  get cellCount(): number {
    return this.cells;
  }

  /**
   * Takes in a read of changes. `changed` hears each span of minutes whose lines may differ from before: the minutes
   * a stream's span newly covers, and each cell whose sums moved.
   */
  apply(changes: IndexChanges, changed: (fromMs: number, toMs: number) => void): void {
    for (const entry of changes.streams) {
      const before = this.streams.get(entry.fingerprint);
      if (before === undefined) {
        changed(entry.firstSeenMs, entry.lastSeenMs);
        this.streams.set(entry.fingerprint, { ...entry, text: persistedLabelsText(entry.labels) });
        this.ordered = undefined;
        continue;
      }
      if (entry.firstSeenMs < before.firstSeenMs) changed(entry.firstSeenMs, before.firstSeenMs);
      if (entry.lastSeenMs > before.lastSeenMs) changed(before.lastSeenMs, entry.lastSeenMs);
      before.firstSeenMs = entry.firstSeenMs;
      before.lastSeenMs = entry.lastSeenMs;
    }
    for (const cell of changes.volume) {
      if (cell.minuteMs >= this.volumeFromMs && this.setCell(cell)) changed(cell.minuteMs, cell.minuteMs);
    }
  }

  /** Whether the cell is new or its sums differ. */
  private setCell(cell: VolumeCell): boolean {
    let columns = this.volume.get(cell.fingerprint);
    if (columns === undefined) {
      columns = { minutes: [], entries: [], bytes: [], sums: undefined };
      this.volume.set(cell.fingerprint, columns);
    }
    const at = lowerBound(columns.minutes, cell.minuteMs);
    if (columns.minutes[at] === cell.minuteMs) {
      if (columns.entries[at] === cell.entries && columns.bytes[at] === cell.bytes) return false;
      columns.sums = undefined;
      columns.entries[at] = cell.entries;
      columns.bytes[at] = cell.bytes;
      return true;
    }
    columns.sums = undefined;
    if (at === columns.minutes.length) {
      // New minutes mostly come last; push keeps the arrays packed where splice copies them.
      columns.minutes.push(cell.minuteMs);
      columns.entries.push(cell.entries);
      columns.bytes.push(cell.bytes);
    } else {
      columns.minutes.splice(at, 0, cell.minuteMs);
      columns.entries.splice(at, 0, cell.entries);
      columns.bytes.splice(at, 0, cell.bytes);
    }
    this.cells++;
    return true;
  }

  /** Forgets the volume before `fromMs`, a minute that the window has moved past. */
  prune(fromMs: number): void {
    if (fromMs <= this.volumeFromMs) return;
    this.volumeFromMs = fromMs;
    for (const [fingerprint, columns] of this.volume) {
      const keep = lowerBound(columns.minutes, fromMs);
      if (keep === 0) continue;
      this.cells -= keep;
      if (keep === columns.minutes.length) this.volume.delete(fingerprint);
      else {
        columns.sums = undefined;
        columns.minutes.splice(0, keep);
        columns.entries.splice(0, keep);
        columns.bytes.splice(0, keep);
      }
    }
  }

  /**
   * The streams passing `test` with entries seen in [startMs, endMs), as a store's streams index finds them, in the
   * order of their label text.
   */
  lookup(test: StreamTest, startMs: number, endMs: number): IndexedStream[] {
    this.ordered ??= [...this.streams.values()].sort((a, b) => compareText(a.text, b.text));
    return this.ordered.filter(
      (stream) => stream.lastSeenMs >= startMs && stream.firstSeenMs < endMs && test(stream.labels),
    );
  }

  /** Store.logVolume of these streams (in lookup's order), for a select of whole minutes from volumeFromMs on. */
  volumeOf(streams: IndexedStream[], select: LogVolumeSelect): LogCountSeries[] {
    const out: LogCountSeries[] = [];
    // Each bucket's start once, shared by the points of every stream.
    const starts: bigint[] = [];
    for (const stream of streams) {
      const columns = this.volume.get(stream.fingerprint);
      if (columns === undefined) continue;
      const { minutes } = columns;
      const last = lowerBound(minutes, select.endMs);
      const sums = sumsOf(columns);
      const points: LogCountSeries["points"] = [];
      for (let i = lowerBound(minutes, select.startMs); i < last;) {
        const k = Math.floor((minutes[i]! - select.startMs) / select.stepMs);
        const next = Math.min(last, lowerBound(minutes, select.startMs + (k + 1) * select.stepMs));
        starts[k] ??= BigInt(select.startMs + k * select.stepMs) * 1_000_000n;
        points.push({
          startNs: starts[k],
          count: sums.entries[next]! - sums.entries[i]!,
          bytes: sums.bytes[next]! - sums.bytes[i]!,
        });
        i = next;
      }
      if (points.length > 0) out.push({ labels: stream.labels, points });
    }
    return out;
  }

  /** Entries of every stream in one minute. */
  minuteEntries(minuteMs: number): number {
    let entries = 0;
    for (const columns of this.volume.values()) {
      const at = lowerBound(columns.minutes, minuteMs);
      if (columns.minutes[at] === minuteMs) entries += columns.entries[at]!;
    }
    return entries;
  }
}
