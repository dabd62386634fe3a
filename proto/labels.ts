import { goQuote } from "../common/go/quote.js";
import { compareText } from "../common/go/string-order.js";

// Label sets, the one home of their type, constructors, identity, order and text forms. A label set is a plain
// object created without a prototype, so that names such as `__proto__` stay plain keys.

export type Labels = Record<string, string>;

export const METRIC_NAME = "__name__";

/** The metadata of an entry that has none, shared: receivers make millions of such entries. */
export const NO_LABELS: Labels = Object.freeze(Object.create(null));

type LabelSource = Iterable<readonly [string, string]> | Readonly<Record<string, string>>;

function entriesOf(source: LabelSource): Iterable<readonly [string, string]> {
  return Symbol.iterator in source
    ? (source as Iterable<readonly [string, string]>)
    : Object.entries(source as Record<string, string>);
}

/**
 * A label set with its names in the order given. Ingestion keeps the sender's order: the wire encoding of a
 * batch writes labels in property order, and its bytes must not change.
 */
export function labelsOf(source: LabelSource): Labels {
  const labels: Labels = Object.create(null);
  for (const [name, value] of entriesOf(source)) labels[name] = value;
  return labels;
}

/** A label set with its names in Go's string order, as Prometheus keeps one: what the query engines return. */
export function sortedLabelsOf(source: LabelSource): Labels {
  const sorted = [...entriesOf(source)].sort(([a], [b]) => compareText(a, b));
  const labels: Labels = Object.create(null);
  for (const [name, value] of sorted) labels[name] = value;
  return labels;
}

/** Label names in Go's string order, as Prometheus keeps a label set. */
export function sortedNames(labels: Labels): string[] {
  return Object.keys(labels).sort(compareText);
}

/** An identity for a label set: equal sets give equal keys whatever the property order. */
export function labelsKey(labels: Labels): string {
  let key = "";
  for (const name of sortedNames(labels)) key += `${name}\u0000${labels[name]}\u0001`;
  return key;
}

/** Prometheus' labels.Compare: name by name, then value, then the shorter set first. */
export function compareLabels(a: Labels, b: Labels): number {
  const an = sortedNames(a);
  const bn = sortedNames(b);
  const n = Math.min(an.length, bn.length);
  for (let i = 0; i < n; i++) {
    const nameOrder = compareText(an[i]!, bn[i]!);
    if (nameOrder !== 0) return nameOrder;
    const valueOrder = compareText(a[an[i]!]!, b[bn[i]!]!);
    if (valueOrder !== 0) return valueOrder;
  }
  return an.length - bn.length;
}

/**
 * The canonical text of a label set, as Prometheus' labels.String() and Loki print it: `{a="1", b="x\"y"}`, names
 * in Go's string order, values quoted as Go's strconv.Quote.
 */
export function formatLabels(labels: Labels): string {
  return `{${sortedNames(labels)
    .map((name) => `${name}=${goQuote(labels[name]!)}`)
    .join(", ")}}`;
}

/**
 * The text that stream and series fingerprints hash and that stores sort their results by: like formatLabels,
 * but with names in JavaScript's (UTF-16) order and values quoted as JSON. It differs from the canonical text only
 * where a name holds a character from U+E000 up or a value a control character, and it is frozen: fingerprints
 * are persisted, so every byte of this form must stay as it is.
 */
export function persistedLabelsText(labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((name) => `${name}=${JSON.stringify(labels[name])}`);
  return `{${parts.join(", ")}}`;
}

/** The labels named in `names` that the set has. */
export function keepLabels(labels: Labels, names: readonly string[]): Labels {
  const out: [string, string][] = [];
  for (const name of names) {
    const value = labels[name];
    if (value !== undefined) out.push([name, value]);
  }
  return sortedLabelsOf(out);
}

/** The set without the labels named in `names`. */
export function dropLabels(labels: Labels, names: readonly string[]): Labels {
  const drop = new Set(names);
  return sortedLabelsOf(Object.entries(labels).filter(([name]) => !drop.has(name)));
}
