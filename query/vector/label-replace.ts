import { expandReplacement } from "../../common/regex.js";
import { sortedLabelsOf } from "../../proto/labels.js";
import type { Sample } from "../../common/vector/types.js";

/**
 * label_replace: where the source label's value matches `regex` (anchored), sets `dst` to the expanded
 * replacement, or removes it when the expansion is empty. Samples that do not match pass unchanged.
 */
export function labelReplace(
  vector: readonly Sample[],
  dst: string,
  replacement: string,
  src: string,
  regex: RegExp,
): Sample[] {
  return vector.map((sample) => {
    const match = regex.exec(sample.labels[src] ?? "");
    if (match === null) return sample;
    const value = expandReplacement(replacement, match);
    const entries = Object.entries(sample.labels).filter(([name]) => name !== dst);
    if (value !== "") entries.push([dst, value]);
    return { labels: sortedLabelsOf(entries), value: sample.value };
  });
}
