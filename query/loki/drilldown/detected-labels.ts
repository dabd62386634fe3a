import { goParseFloat } from "../../../common/go/parse.js";

// /loki/api/v1/detected_labels as Loki's querier answers it (pkg/querier/querier.go, DetectedLabels): the stream
// labels of the selected streams that are worth grouping by in Logs Drilldown, each with its number of values.
// A label is left out when it has no value or when all its values are identifiers (numbers or UUIDs), except
// that two values 0 and 1 are a flag, and cluster, namespace, instance and pod are always kept.

export interface DetectedLabel {
  label: string;
  cardinality: number;
}

const ALWAYS_KEPT = new Set(["cluster", "namespace", "instance", "pod"]);
const FLAG_VALUES = new Set(["0", "1"]);
// The forms Go's uuid.Parse accepts.
const UUID = /^(?:urn:uuid:|\{)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?$|^[0-9a-f]{32}$/i;

function isIdentifier(value: string): boolean {
  if (goParseFloat(value).error === undefined) return true;
  if (!UUID.test(value)) return false;
  // Braces come in pairs, and the urn prefix goes without them.
  return value.startsWith("{") === value.endsWith("}") && !(value.startsWith("urn:") && value.endsWith("}"));
}

function worthGrouping(values: readonly string[]): boolean {
  if (values.length === 0) return false;
  if (values.length <= 2 && values.every((value) => FLAG_VALUES.has(value))) return true;
  return !values.every(isIdentifier);
}

/** The labels worth grouping by, sorted by name, from each label's distinct values. */
export function detectedLabels(valuesByLabel: ReadonlyMap<string, readonly string[]>): DetectedLabel[] {
  const detected: DetectedLabel[] = [];
  for (const [label, values] of valuesByLabel) {
    if ((ALWAYS_KEPT.has(label) && values.length > 0) || worthGrouping(values))
      detected.push({ label, cardinality: new Set(values).size });
  }
  return detected.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}
