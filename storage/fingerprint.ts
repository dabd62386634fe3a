import { createHash } from "node:crypto";
import type { Labels } from "../proto/batch.js";

/** The label set as Prometheus prints it, names sorted: `{a="1", b="x\"y"}`. Stable, so it keys streams. */
export function labelsText(labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((name) => `${name}=${JSON.stringify(labels[name])}`);
  return `{${parts.join(", ")}}`;
}

/** A stream's or series' id: the first 64 bits of SHA-256 over its sorted labels, as a decimal UInt64 string. */
export function fingerprint(labels: Labels): string {
  return createHash("sha256").update(labelsText(labels)).digest().readBigUInt64BE(0).toString();
}
