import { type Labels, NO_LABELS } from "../../../proto/labels.js";

// The label state of one entry while it runs through a pipeline, modelled on Loki's LabelsBuilder: stream labels
// stay untouched as the base, structured metadata and extracted labels are layered on top, deletions are recorded
// by name, and the error label lives apart from the other labels so that `drop __error__` and `__error__=""` can
// treat it specially. One builder is reused for every entry of a pipeline to avoid per-entry allocations.

export const ERROR_LABEL = "__error__";
export const ERROR_DETAILS_LABEL = "__error_details__";
export const DUPLICATE_SUFFIX = "_extracted";

/** An entry's labels split as Loki's `X-Loki-Response-Encoding-Flags: categorize-labels` answers them. */
export interface LabelCategories {
  stream: Labels;
  metadata: Labels;
  parsed: Labels;
}

/** Names and values of a label record, kept per record: stream label records are shared by all entries of a stream. */
interface Entries {
  names: string[];
  values: string[];
}

const entriesCache = new WeakMap<Labels, Entries>();
/** Distinct label sets interned per base record, and over all records: past either, a builder stops interning. */
const MAX_INTERNED = 4096;
const MAX_INTERN_MISSES = 16_384;
const NO_ENTRIES: Entries = { names: [], values: [] };

/**
 * Label records are null-prototype objects, which V8 keeps in dictionary mode where `for...in` is slow; reading
 * each record once and reusing its entries keeps the per-entry cost down. Records must not change after use.
 */
function entriesOf(record: Labels): Entries {
  let entries = entriesCache.get(record);
  if (entries === undefined) {
    const names = Object.keys(record);
    if (names.length === 0) return NO_ENTRIES;
    entries = { names, values: names.map((name) => record[name]!) };
    entriesCache.set(record, entries);
  }
  return entries;
}

export class LabelsBuilder {
  private base: Labels = NO_LABELS;
  /** The base's entries, read when first needed: a builder reset on a new record per entry may never need them. */
  private baseEntriesRead: Entries | undefined = NO_ENTRIES;
  private readonly metadata = new Map<string, string>();
  private readonly parsed = new Map<string, string>();
  private readonly deleted = new Set<string>();
  /** Names extracted by a parser during this entry: a later parser does not overwrite them (Loki's parser hints). */
  private readonly extracted = new Set<string>();
  err = "";
  errDetails = "";

  /**
   * Loki's parser hints check a label filter of the pipeline as soon as a parser extracts its label and drop the
   * line right there (pkg/logql/log/parser_hints.go, ShouldContinueParsingLine): the first single-label filter
   * stage per name, wherever it stands in the pipeline. It matters when a stage between the parser and the filter
   * rewrites the label, and it can set LabelFilterErr early.
   */
  /**
   * With `intern`, labels() hands out one record per distinct label set (per base record and the state layered on
   * it) instead of a new one per entry: for a pipeline that extracts only the few labels a grouped query reads,
   * whose entries share a handful of label sets.
   */
  private interned: WeakMap<Labels, Map<string, Labels>> | undefined;
  private internMisses = 0;

  constructor(
    private readonly parseFilters?: ReadonlyMap<string, (labels: LabelsBuilder) => boolean>,
    private readonly required?: ReadonlySet<string>,
    intern = false,
  ) {
    this.interned = intern ? new WeakMap() : undefined;
  }

  /** Whether a parser must extract `name` (pipeline/hints.ts); every label when the query needs them all. */
  wants(name: string): boolean {
    return this.required === undefined || this.required.has(name);
  }

  /** Whether a parser must descend into a JSON object whose labels would start with `prefix`. */
  wantsPrefix(prefix: string): boolean {
    if (this.required === undefined) return true;
    for (const name of this.required) if (name.startsWith(prefix)) return true;
    return false;
  }

  /** Sets a parsed label; false when the line must be dropped per the parser hints. */
  extract(name: string, value: string): boolean {
    this.set(name, value);
    return this.continueParsing(name);
  }

  continueParsing(name: string): boolean {
    const filter = this.parseFilters?.get(name);
    return filter === undefined || filter(this);
  }

  reset(base: Labels, metadata: Labels): void {
    this.base = base;
    this.baseEntriesRead = undefined;
    if (this.metadata.size > 0) this.metadata.clear();
    if (this.parsed.size > 0) this.parsed.clear();
    if (this.deleted.size > 0) this.deleted.clear();
    if (this.extracted.size > 0) this.extracted.clear();
    this.err = "";
    this.errDetails = "";
    const { names, values } = entriesOf(metadata);
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const value = values[i]!;
      const key = base[name] !== undefined ? name + DUPLICATE_SUFFIX : name;
      if (key === ERROR_LABEL) this.err = value;
      else if (key === ERROR_DETAILS_LABEL) this.errDetails = value;
      else if (!this.parsed.has(key)) this.metadata.set(key, value);
    }
  }

  private get baseEntries(): Entries {
    return (this.baseEntriesRead ??= entriesOf(this.base));
  }

  /** A parsed label colliding with a stream label or structured metadata gets the `_extracted` suffix. */
  parsedName(name: string): string {
    return this.base[name] !== undefined || this.metadata.has(name) ? name + DUPLICATE_SUFFIX : name;
  }

  wasExtracted(name: string): boolean {
    return this.extracted.has(name);
  }

  /** A stream label with an empty value counts as absent, as in Prometheus label sets. */
  get(name: string): string | undefined {
    const parsed = this.parsed.get(name);
    if (parsed !== undefined) return parsed;
    const metadata = this.metadata.get(name);
    if (metadata !== undefined) return metadata;
    if (this.deleted.has(name)) return undefined;
    const value = this.base[name];
    return value === undefined || value === "" ? undefined : value;
  }

  set(name: string, value: string): void {
    this.metadata.delete(name);
    if (!this.parsed.has(name)) this.extracted.add(name);
    this.parsed.set(name, value);
  }

  delete(name: string): void {
    this.metadata.delete(name);
    this.parsed.delete(name);
    this.deleted.add(name);
  }

  setError(err: string, details?: string): void {
    this.err = err;
    if (details !== undefined && details !== "") this.errDetails = details;
  }

  /** Visits every visible label except the error labels, in base, metadata, parsed order. */
  forEach(visit: (name: string, value: string) => void): void {
    const changed = this.deleted.size > 0 || this.metadata.size > 0 || this.parsed.size > 0;
    const { names, values } = this.baseEntries;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      if (changed && (this.deleted.has(name) || this.metadata.has(name) || this.parsed.has(name))) continue;
      visit(name, values[i]!);
    }
    for (const [name, value] of this.metadata) if (!this.parsed.has(name)) visit(name, value);
    for (const [name, value] of this.parsed) visit(name, value);
  }

  /**
   * The labels in Loki's three categories (categorize-labels): the stream's own labels less those deleted or
   * replaced, structured metadata not replaced by a parsed label, and parsed labels with the error labels.
   */
  categories(): LabelCategories {
    const stream: Labels = Object.create(null);
    const metadata: Labels = Object.create(null);
    const parsed: Labels = Object.create(null);
    const { names, values } = this.baseEntries;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      if (this.deleted.has(name) || this.metadata.has(name) || this.parsed.has(name)) continue;
      stream[name] = values[i]!;
    }
    for (const [name, value] of this.metadata) if (!this.parsed.has(name)) metadata[name] = value;
    for (const [name, value] of this.parsed) parsed[name] = value;
    if (this.err !== "") parsed[ERROR_LABEL] = this.err;
    if (this.errDetails !== "") parsed[ERROR_DETAILS_LABEL] = this.errDetails;
    return { stream, metadata, parsed };
  }

  /**
   * All labels including `__error__` and `__error_details__`. When no stage changed anything this is the stream
   * labels record itself (building a record costs more than most stages), so results are read-only.
   */
  labels(): Labels {
    const changed = this.deleted.size > 0 || this.metadata.size > 0 || this.parsed.size > 0;
    if (!changed && this.err === "" && this.errDetails === "") return this.base;
    if (this.interned === undefined) return this.build(changed);
    let records = this.interned.get(this.base);
    if (records === undefined) this.interned.set(this.base, (records = new Map()));
    const key = this.stateKey();
    let labels = records.get(key);
    if (labels === undefined) {
      labels = this.build(changed);
      records.set(key, labels);
      // So many distinct label sets that interning no longer pays: the builder stops, and its memory goes.
      if (++this.internMisses > MAX_INTERN_MISSES || records.size >= MAX_INTERNED) this.interned = undefined;
    }
    return labels;
  }

  /** What the labels hold besides the base record, length-prefixed so that no two states share a key. */
  private stateKey(): string {
    let key = `${this.err.length}:${this.err}${this.errDetails.length}:${this.errDetails}|`;
    for (const [name, value] of this.metadata) key += `${name.length}:${name}${value.length}:${value}`;
    key += "|";
    for (const [name, value] of this.parsed) key += `${name.length}:${name}${value.length}:${value}`;
    key += "|";
    for (const name of this.deleted) key += `${name.length}:${name}`;
    return key;
  }

  private build(changed: boolean): Labels {
    const out: Labels = Object.create(null);
    const { names, values } = this.baseEntries;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      if (changed && (this.deleted.has(name) || this.metadata.has(name) || this.parsed.has(name))) continue;
      out[name] = values[i]!;
    }
    for (const [name, value] of this.metadata) if (!this.parsed.has(name)) out[name] = value;
    for (const [name, value] of this.parsed) out[name] = value;
    if (this.err !== "") out[ERROR_LABEL] = this.err;
    if (this.errDetails !== "") out[ERROR_DETAILS_LABEL] = this.errDetails;
    return out;
  }
}
