import { compareText } from "../common/go/string-order.js";
import { type Labels, persistedLabelsText } from "../proto/labels.js";

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
  const keyed = items.map((item) => ({ item, key: persistedLabelsText(item.labels) }));
  keyed.sort((a, b) => compareText(a.key, b.key));
  return keyed.map((k) => k.item);
}
