import type { Labels } from "./batch.js";
import { compareText } from "../storage/values.js";

// Label-set helpers shared by the LogQL and PromQL evaluators. Label sets are plain null-prototype objects; these
// functions give them the identity, ordering and text form that Prometheus' labels.Labels has.

export const METRIC_NAME = "__name__";

/** A label set built from entries, with its names in sorted order. */
export function makeLabels(entries: Iterable<readonly [string, string]>): Labels {
  const sorted = [...entries].sort(([a], [b]) => compareText(a, b));
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

/** The text Prometheus and Loki print for a label set, `{a="1", b="x\"y"}`, values quoted as Go's strconv.Quote. */
export function formatLabels(labels: Labels): string {
  return `{${sortedNames(labels)
    .map((name) => `${name}=${goQuote(labels[name]!)}`)
    .join(", ")}}`;
}

const GO_ESCAPES: Record<string, string> = {
  "\u0007": "\\a",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\u000b": "\\v",
  "\\": "\\\\",
  '"': '\\"',
};

function goQuote(text: string): string {
  let out = '"';
  for (const char of text) {
    const escape = GO_ESCAPES[char];
    if (escape !== undefined) out += escape;
    else {
      const code = char.codePointAt(0)!;
      if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
      else out += char;
    }
  }
  return `${out}"`;
}

/** The labels named in `names` that the set has. */
export function keepLabels(labels: Labels, names: readonly string[]): Labels {
  const out: [string, string][] = [];
  for (const name of names) {
    const value = labels[name];
    if (value !== undefined) out.push([name, value]);
  }
  return makeLabels(out);
}

/** The set without the labels named in `names`. */
export function dropLabels(labels: Labels, names: readonly string[]): Labels {
  const drop = new Set(names);
  return makeLabels(Object.entries(labels).filter(([name]) => !drop.has(name)));
}
