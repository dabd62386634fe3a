// Loki's logfmt decoder (pkg/logql/log/logfmt), which differs from go-logfmt on purpose: a key without `=` is a
// key with an empty value, a bad pair is skipped rather than ending the line, and errors name the 1-based byte
// position where they happened.

export class LogfmtDecoder {
  private line = "";
  private pos = 0;
  key = "";
  /** The value's text once asked for: most readers skip most keys, and their values then cost nothing. */
  private valueText: string | undefined = "";
  private valueFrom = 0;
  private valueTo = 0;
  /** The last syntax error of the line; only `--strict` reports it. */
  err: string | undefined;

  get value(): string {
    return (this.valueText ??= this.line.slice(this.valueFrom, this.valueTo));
  }

  reset(line: string): void {
    this.line = line;
    this.pos = 0;
    this.valueText = "";
    this.err = undefined;
  }

  eol(): boolean {
    return this.pos >= this.line.length;
  }

  /** Reads the next pair into key/value; false when the pair is malformed (or only whitespace was left). */
  scan(): boolean {
    const line = this.line;
    this.key = "";
    this.valueText = "";
    while (this.pos < line.length && line.charCodeAt(this.pos) <= 32) this.pos++;
    if (this.pos >= line.length) return false;

    const keyStart = this.pos;
    for (; this.pos < line.length; this.pos++) {
      const code = line.charCodeAt(this.pos);
      if (code === 61) {
        if (this.pos === keyStart) {
          this.unexpected("=");
          return this.skipValue();
        }
        this.key = line.slice(keyStart, this.pos);
        if (this.key.includes("\ufffd")) {
          this.syntaxError("invalid key");
          return this.skipValue();
        }
        return this.scanValue();
      }
      if (code === 34) {
        this.unexpected('"');
        return this.skipValue();
      }
      if (code <= 32) break;
    }
    this.key = line.slice(keyStart, this.pos);
    if (this.key.includes("\ufffd")) {
      this.syntaxError("invalid key");
      return false;
    }
    return true;
  }

  private scanValue(): boolean {
    const line = this.line;
    this.pos++;
    if (this.pos >= line.length) return true;
    const first = line.charCodeAt(this.pos);
    if (first <= 32) return true;
    if (first === 34) return this.scanQuoted();
    const start = this.pos;
    for (; this.pos < line.length; this.pos++) {
      const code = line.charCodeAt(this.pos);
      if (code === 61 || code === 34) {
        this.unexpected(code === 61 ? "=" : '"');
        return this.skipValue();
      }
      if (code <= 32) break;
    }
    this.lazyValue(start, this.pos);
    return true;
  }

  private scanQuoted(): boolean {
    const line = this.line;
    const start = this.pos;
    let escaped = false;
    for (let i = start + 1; i < line.length; i++) {
      const code = line.charCodeAt(i);
      if (code === 92) {
        escaped = true;
        i++;
      } else if (code === 34) {
        this.pos = i + 1;
        if (!escaped) {
          this.lazyValue(start + 1, i);
          return true;
        }
        const value = unquote(line.slice(start + 1, i));
        if (value === undefined) {
          this.syntaxError("invalid quoted value");
          return false;
        }
        this.valueText = value;
        return true;
      }
    }
    this.pos = line.length;
    this.syntaxError("unterminated quoted value");
    return false;
  }

  private lazyValue(from: number, to: number): void {
    this.valueText = undefined;
    this.valueFrom = from;
    this.valueTo = to;
  }

  private skipValue(): false {
    while (this.pos < this.line.length && this.line.charCodeAt(this.pos) > 32) this.pos++;
    return false;
  }

  private unexpected(char: string): void {
    this.syntaxError(`unexpected '${char}'`);
  }

  private syntaxError(message: string): void {
    const bytePos = Buffer.byteLength(this.line.slice(0, this.pos)) + 1;
    this.err = `logfmt syntax error at pos ${bytePos} : ${message}`;
  }
}

const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  "'": "'",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** JSON-style unquoting of a quoted value's body, plus `\'`; undefined when an escape is invalid. */
function unquote(body: string): string | undefined {
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const char = body[i]!;
    if (char === '"') return undefined;
    if (char !== "\\") {
      out += char;
      continue;
    }
    const escape = body[++i];
    if (escape === undefined) return undefined;
    if (escape === "u") {
      const code = hex4(body.slice(i + 1, i + 5));
      if (code === undefined) return undefined;
      i += 4;
      if (code >= 0xd800 && code < 0xe000) {
        const low = body[i + 1] === "\\" && body[i + 2] === "u" ? hex4(body.slice(i + 3, i + 7)) : undefined;
        if (code < 0xdc00 && low !== undefined && low >= 0xdc00 && low < 0xe000) {
          out += String.fromCharCode(code, low);
          i += 6;
        } else out += "\ufffd";
      } else out += String.fromCharCode(code);
      continue;
    }
    const simple = ESCAPES[escape];
    if (simple === undefined) return undefined;
    out += simple;
  }
  return out;
}

function hex4(text: string): number | undefined {
  return /^[0-9a-fA-F]{4}$/.test(text) ? parseInt(text, 16) : undefined;
}
