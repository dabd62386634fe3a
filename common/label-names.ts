// Loki turns arbitrary keys into label names: trim whitespace, prefix a leading digit with `_`, and replace every
// character outside [A-Za-z0-9_] with `_` (one `_` per character, not per byte). LogQL's parsers and the
// collector's inputs (syslog structured data, pod labels) name labels this way.

const INVALID = /[^A-Za-z0-9_]/gu;

export function sanitizeLabelKey(key: string): string {
  const trimmed = key.trim();
  if (trimmed === "") return "";
  const replaced = trimmed.replace(INVALID, "_");
  const first = replaced.charCodeAt(0);
  return first >= 48 && first <= 57 ? "_" + replaced : replaced;
}
