import { compareText } from "../../common/go/string-order.js";
import { type Labels, sortedNames } from "../../proto/labels.js";

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;
const SEPARATOR = 0xff;

/**
 * Prometheus's model.LabelSet.Fingerprint, as Alertmanager shows it: FNV-1a 64 over the label names in byte
 * order, each name and value followed by the byte 0xff, printed as 16 lower-case hex digits. Equal to what
 * Alertmanager's API reports for the same labels, so responders can correlate both.
 */
export function alertFingerprint(labels: Labels): string {
  let hash = FNV_OFFSET;
  const add = (byte: number): void => {
    hash = ((hash ^ BigInt(byte)) * FNV_PRIME) & MASK;
  };
  for (const name of sortedNames(labels)) {
    for (const byte of Buffer.from(name, "utf8")) add(byte);
    add(SEPARATOR);
    for (const byte of Buffer.from(labels[name]!, "utf8")) add(byte);
    add(SEPARATOR);
  }
  return hash.toString(16).padStart(16, "0");
}

/** model.LabelSet.Before, with Alertmanager's AlertSlice order in front: `job`, then `instance`, then the labels. */
export function compareAlertLabels(a: Labels, b: Labels): number {
  for (const key of ["job", "instance"]) {
    const x = a[key];
    const y = b[key];
    if (x === undefined && y === undefined) continue;
    if (x === undefined) return 1;
    if (y === undefined) return -1;
    if (x !== y) return compareText(x, y);
  }
  return compareLabelSets(a, b);
}

function compareLabelSets(a: Labels, b: Labels): number {
  const sizeA = Object.keys(a).length;
  const sizeB = Object.keys(b).length;
  if (sizeA !== sizeB) return sizeA - sizeB;
  for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort(compareText)) {
    const x = a[name];
    const y = b[name];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x !== y) return compareText(x, y);
  }
  return 0;
}
