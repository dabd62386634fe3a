// Loki turns arbitrary keys into label names: trim whitespace, prefix a leading digit with `_`, and replace every
// character outside [A-Za-z0-9_] with `_` (one `_` per character, not per byte).

const INVALID = /[^A-Za-z0-9_]/gu;

export function sanitizeLabelKey(key: string): string {
  const trimmed = key.trim();
  if (trimmed === "") return "";
  const replaced = trimmed.replace(INVALID, "_");
  const first = replaced.charCodeAt(0);
  return first >= 48 && first <= 57 ? "_" + replaced : replaced;
}

/** A bounded memo of sanitized keys: log lines repeat the same few keys millions of times. */
export class KeyCache {
  private readonly keys = new Map<string, string>();

  constructor(private readonly limit = 1024) {}

  get(key: string, make: (key: string) => string): string {
    let value = this.keys.get(key);
    if (value === undefined) {
      value = make(key);
      if (this.keys.size < this.limit) this.keys.set(key, value);
    }
    return value;
  }
}
