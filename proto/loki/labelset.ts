import type { Labels } from "../labels.js";

/** A label set that is not in Prometheus text form; `position` points at the offending character. */
export class LabelSetError extends Error {
  override readonly name = "LabelSetError";
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at position ${position}`);
  }
}

const NAME_START = /[a-zA-Z_]/;
const NAME_CHAR = /[a-zA-Z0-9_]/;
const SIMPLE_ESCAPES: Record<string, string> = {
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
  '"': '"',
  "'": "'",
};

/**
 * Parses `{app="api", level="info"}` as Loki's push API carries stream labels: names as in Prometheus,
 * values as Go quoted strings (\n, \t, \", \\, \xNN, \uNNNN, \UNNNNNNNN and the rest of Go's escapes).
 */
export function parseLabelSet(text: string): Labels {
  const labels: Labels = Object.create(null);
  let pos = 0;
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const expect = (char: string) => {
    skipSpace();
    if (text[pos] !== char) throw new LabelSetError(`expected '${char}'`, pos);
    pos++;
  };
  expect("{");
  skipSpace();
  if (text[pos] === "}") {
    pos++;
  } else {
    for (;;) {
      skipSpace();
      const start = pos;
      if (!NAME_START.test(text[pos] ?? "")) throw new LabelSetError("expected a label name", pos);
      while (pos < text.length && NAME_CHAR.test(text[pos]!)) pos++;
      const name = text.slice(start, pos);
      expect("=");
      skipSpace();
      if (text[pos] !== '"') throw new LabelSetError("expected a quoted label value", pos);
      pos++;
      // Go's \xNN escapes are bytes (a UTF-8 character may take several), so the value is built as bytes.
      const bytes: number[] = [];
      const push = (chars: string) => bytes.push(...Buffer.from(chars));
      for (;;) {
        const char = text[pos];
        if (char === undefined) throw new LabelSetError("unterminated label value", pos);
        pos++;
        if (char === '"') break;
        if (char !== "\\") {
          push(char);
          continue;
        }
        const backslash = pos - 1;
        const escape = text[pos++];
        if (escape !== undefined && escape in SIMPLE_ESCAPES) push(SIMPLE_ESCAPES[escape]!);
        else if (escape === "x" || escape === "u" || escape === "U") {
          const digits = { x: 2, u: 4, U: 8 }[escape];
          const hex = text.slice(pos, pos + digits);
          if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== digits)
            throw new LabelSetError(`bad \\${escape} escape`, backslash);
          const code = Number.parseInt(hex, 16);
          if (escape === "x") bytes.push(code);
          else if (code > 0x10ffff) throw new LabelSetError(`bad \\${escape} escape`, backslash);
          else push(String.fromCodePoint(code));
          pos += digits;
        } else throw new LabelSetError(`unknown escape \\${escape ?? ""}`, backslash);
      }
      const value = Buffer.from(bytes).toString("utf8");
      if (name in labels) throw new LabelSetError(`duplicate label ${name}`, start);
      labels[name] = value;
      skipSpace();
      if (text[pos] === ",") {
        pos++;
        skipSpace();
        if (text[pos] === "}") {
          pos++;
          break;
        }
        continue;
      }
      expect("}");
      break;
    }
  }
  skipSpace();
  if (pos !== text.length) throw new LabelSetError("unexpected text after the label set", pos);
  return labels;
}
