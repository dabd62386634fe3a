export { sanitizeLabelKey } from "../../label-names.js";

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
