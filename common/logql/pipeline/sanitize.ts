export { sanitizeLabelKey } from "../../label-names.js";

/** A bounded memo of sanitized keys: log lines repeat the same few keys millions of times. */
export class KeyCache<Value = string> {
  private readonly keys = new Map<string, Value>();

  constructor(private readonly limit = 1024) {}

  get(key: string, make: (key: string) => Value): Value {
    let value = this.keys.get(key);
    if (value === undefined) {
      value = make(key);
      if (this.keys.size < this.limit) this.keys.set(key, value);
    }
    return value;
  }
}
