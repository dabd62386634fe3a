import { type Labels, labelsOf } from "../proto/batch.js";
import { labelsText } from "./fingerprint.js";

// Conversions and ordering shared by both stores, so that they return identical results.

export class StoreError extends Error {
  override readonly name = "StoreError";
  /** The engine or the way to it fails for now: the same write succeeds later. */
  readonly transient: boolean;
  /**
   * The engine refused rows of the write for what they hold (a constraint, a value it cannot hold or parse):
   * those rows never succeed, the others of the write do (aggregator/isolate.ts writes them apart).
   */
  readonly rowsRejected: boolean;
  constructor(message: string, options: { cause?: unknown; transient?: boolean; rowsRejected?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.transient = options.transient ?? false;
    this.rowsRejected = !this.transient && (options.rowsRejected ?? false);
  }
}

/** Nanoseconds as decimal seconds ("1764000000.123456789"): how both engines read DateTime64(9) unambiguously. */
export function nsText(ns: bigint): string {
  const negative = ns < 0n;
  const abs = negative ? -ns : ns;
  return `${negative ? "-" : ""}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, "0")}`;
}

/** Milliseconds as decimal seconds ("1764000000.123"). */
export function msText(ms: number): string {
  return nsText(BigInt(ms) * 1_000_000n).slice(0, -6);
}

export function nsToMsFloor(ns: bigint): number {
  const ms = ns / 1_000_000n;
  return Number(ns < 0n && ns % 1_000_000n !== 0n ? ms - 1n : ms);
}

export function nsToMsCeil(ns: bigint): number {
  return -nsToMsFloor(-ns);
}

/** A float as the engines print it with toString: nan, inf, -inf, or a number. */
export function parseFloatText(text: string): number {
  switch (text) {
    case "nan":
    case "-nan":
      return NaN;
    case "inf":
    case "+inf":
      return Infinity;
    case "-inf":
      return -Infinity;
    default:
      return Number(text);
  }
}

/** A float for a JSON row: non-finite values, and -0 (which JSON.stringify writes as 0), as strings the engines parse. */
export function floatValue(value: number): number | string {
  if (Object.is(value, -0)) return "-0";
  return Number.isFinite(value) ? value : Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
}

/** Prometheus series labels: the metric name travels as `__name__`. */
export function seriesLabels(name: string, labels: Labels): Labels {
  const out: Labels = Object.create(null);
  out["__name__"] = name;
  for (const key in labels) out[key] = labels[key]!;
  return out;
}

/** A label map as read back from an engine, as a prototype-free Labels object. */
export function toLabels(labels: Record<string, string> | [string, string][]): Labels {
  return labelsOf(Array.isArray(labels) ? labels : Object.entries(labels));
}

/**
 * Byte order of UTF-8, as both engines and Go sort strings. UTF-8 byte order is code point order, which differs
 * from JavaScript's UTF-16 code unit order only where a surrogate meets a unit in U+E000..U+FFFF; the first
 * differing units are compared with the surrogates moved above that range, without encoding either string.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) < codePointRank(y) ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}

const dayNames = new Map<number, string>();

/** The UTC date of a time, as ClickHouse prints toDate(): called per row, so the text is cached per day. */
export function dayOfMs(ms: number): string {
  const day = Math.floor(ms / 86_400_000);
  let name = dayNames.get(day);
  if (name === undefined) {
    name = new Date(day * 86_400_000).toISOString().slice(0, 10);
    if (dayNames.size > 10_000) dayNames.clear();
    dayNames.set(day, name);
  }
  return name;
}

export function monthOfMs(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

/** Items sorted by the text of their labels: the order in which every read returns streams and series. */
export function sortByLabels<T extends { labels: Labels }>(items: T[]): T[] {
  const keyed = items.map((item) => ({ item, key: labelsText(item.labels) }));
  keyed.sort((a, b) => compareText(a.key, b.key));
  return keyed.map((k) => k.item);
}
