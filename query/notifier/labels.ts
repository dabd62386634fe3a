import { compareText } from "../../common/go/string-order.js";
import type { Labels } from "../../proto/labels.js";

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
