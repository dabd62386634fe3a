// Go's string literals: strconv.Quote for printing, and the escape sequences of Go's scanner for the languages that
// borrow Go's literals (LogQL, PromQL, text/template).

const QUOTE_ESCAPES: Record<string, string> = {
  "\x07": "\\a",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\v": "\\v",
  "\\": "\\\\",
  '"': '\\"',
};

/**
 * strconv.Quote: a double-quoted Go string literal. Control characters and DEL are escaped; a lone surrogate (which
 * UTF-8 cannot carry) is written as its `\u` escape so that the text stays printable.
 */
export function goQuote(text: string): string {
  let out = '"';
  for (const char of text) {
    const escape = QUOTE_ESCAPES[char];
    if (escape !== undefined) {
      out += escape;
      continue;
    }
    const code = char.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else if (code >= 0xd800 && code <= 0xdfff) out += `\\u${code.toString(16)}`;
    else out += char;
  }
  return `${out}"`;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
};

const HEX_DIGITS: Record<string, number> = { x: 2, u: 4, U: 8 };

/**
 * The escape sequence at `text[at]` (a backslash) inside a Go literal quoted with `quote`, as Go's scanner reads
 * it: the text it stands for and its length in `text`, or undefined where Go refuses it (an unknown escape, the
 * other quote, a bad digit count, an octal value over 255, a surrogate or a code point past U+10FFFF). A `\x` or
 * octal escape is one byte in Go; here it becomes the code point of the same number, U+0000 to U+00FF.
 */
export function goEscape(text: string, at: number, quote: '"' | "'"): { value: string; length: number } | undefined {
  const kind = text[at + 1];
  if (kind === undefined) return undefined;
  const simple = kind === quote ? quote : SIMPLE_ESCAPES[kind];
  if (simple !== undefined) return { value: simple, length: 2 };
  const hexDigits = HEX_DIGITS[kind];
  if (hexDigits !== undefined) {
    const digits = text.slice(at + 2, at + 2 + hexDigits);
    if (digits.length !== hexDigits || !/^[0-9a-fA-F]+$/.test(digits)) return undefined;
    const code = Number.parseInt(digits, 16);
    if (kind === "x") return { value: String.fromCharCode(code), length: 2 + hexDigits };
    if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return undefined;
    return { value: String.fromCodePoint(code), length: 2 + hexDigits };
  }
  const octal = text.slice(at + 1, at + 4);
  if (!/^[0-7]{3}$/.test(octal)) return undefined;
  const code = Number.parseInt(octal, 8);
  return code > 255 ? undefined : { value: String.fromCharCode(code), length: 4 };
}
