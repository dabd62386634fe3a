import { createHash } from "node:crypto";
import { type Labels, persistedLabelsText } from "../proto/labels.js";

/** A stream's or series' id: the first 64 bits of SHA-256 over its sorted labels, as a decimal UInt64 string. */
export function fingerprint(labels: Labels): string {
  return createHash("sha256").update(persistedLabelsText(labels)).digest().readBigUInt64BE(0).toString();
}
