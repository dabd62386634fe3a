import { LogfmtDecoder } from "../../../common/logfmt-decoder.js";
import { findMember, JsonType } from "../../../common/logql/pipeline/json-scan.js";

// How the pattern miner (drain.ts) splits a line into tokens and joins a template back into a pattern, per
// stream format as Loki's pattern ingester guesses it from the stream's first line (pkg/pattern/drain): plain
// lines split at spaces and punctuation, logfmt lines into key and value tokens (time-like keys always
// variable), JSON lines by their message field alone. A pattern keeps the line's own text around `<_>` so that
// Grafana can put it into a `|> "pattern"` filter, which must match the lines it came from.

export const PLACEHOLDER = "<_>";

/** Lines longer than this are not mined, as in Loki. */
export const MAX_LINE_BYTES = 3000;

export interface Tokenized {
  tokens: string[];
  /** What join needs besides the tokens (where the spaces were), shared by a template made from them. */
  spaces: number[];
}

export interface Tokenizer {
  tokenize(line: string): Tokenized | undefined;
  join(tokens: readonly string[], spaces: readonly number[]): string;
}

export type LineFormat = "json" | "logfmt" | "unknown";

// Loki's test of a logfmt line: key=value pairs separated by single spaces throughout.
const LOGFMT_LINE = /^(\w+?=([^"]\S*?|".+?") )*?(\w+?=([^"]\S*?|".+?"))+$/;

export function lineFormat(line: string): LineFormat {
  if (line.length < 2) return "unknown";
  if (line.startsWith("{") && line.endsWith("}")) return "json";
  return LOGFMT_LINE.test(line) ? "logfmt" : "unknown";
}

export function tokenizerFor(format: LineFormat): Tokenizer {
  switch (format) {
    case "json":
      return new JsonMessageTokenizer();
    case "logfmt":
      return new LogfmtTokenizer();
    case "unknown":
      return new PunctuationTokenizer();
  }
}

const WORD = /[\p{L}\p{N}_\-.:/]/u;
const PUNCTUATION = /\p{P}/u;
const MAX_TOKENS = 127;

const enum CharClass {
  /** Part of a token. */
  Inside,
  /** A token of its own. */
  Alone,
  Space,
}

function classOf(char: string): CharClass {
  if (char === " ") return CharClass.Space;
  if (char === "=") return CharClass.Alone;
  return !WORD.test(char) && PUNCTUATION.test(char) ? CharClass.Alone : CharClass.Inside;
}

const ASCII_CLASSES = Array.from({ length: 128 }, (_, code) => classOf(String.fromCharCode(code)));

/**
 * Words of letters, digits and `_-.:/` are tokens; each other punctuation character and `=` is a token of its own;
 * spaces separate tokens and are remembered (by the index of the token they follow) so that join restores them.
 * Anything else (symbols, tabs) stays inside a token. After 127 tokens the rest of the line is one token.
 */
export class PunctuationTokenizer implements Tokenizer {
  tokenize(line: string): Tokenized | undefined {
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) return undefined;
    const tokens: string[] = [];
    const spaces: number[] = [];
    let start = 0;
    for (let i = 0; i < line.length && tokens.length < MAX_TOKENS;) {
      const code = line.charCodeAt(i);
      let next = i + 1;
      let kind: CharClass;
      if (code < 128) kind = ASCII_CLASSES[code]!;
      else {
        const char = String.fromCodePoint(line.codePointAt(i)!);
        next = i + char.length;
        kind = classOf(char);
      }
      if (kind !== CharClass.Inside) {
        if (i > start) tokens.push(line.slice(start, i));
        if (kind === CharClass.Space) spaces.push(tokens.length - 1);
        else tokens.push(line.slice(i, next));
        start = next;
      }
      i = next;
    }
    if (start < line.length) tokens.push(line.slice(start));
    return { tokens, spaces };
  }

  join(tokens: readonly string[], spaces: readonly number[]): string {
    let out = "";
    let s = 0;
    // Spaces before the first token (index -1).
    while (s < spaces.length && spaces[s]! < 0) {
      out += " ";
      s++;
    }
    for (let i = 0; i < tokens.length; i++) {
      out += tokens[i];
      while (s < spaces.length && spaces[s] === i) {
        out += " ";
        s++;
      }
    }
    return out;
  }
}

/** Keys whose values are times or trace ids: never part of a pattern. */
function isVariableKey(key: string): boolean {
  if (key === "t") return true;
  const lower = key.toLowerCase();
  return lower === "ts" || lower === "traceid" || lower === "time" || lower === "timestamp";
}

/** Pairs of tokens, key and value, joined back as logfmt; a line that does not decode is not mined. */
export class LogfmtTokenizer implements Tokenizer {
  private readonly decoder = new LogfmtDecoder();

  tokenize(line: string): Tokenized | undefined {
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) return undefined;
    const tokens: string[] = [];
    this.decoder.reset(line);
    while (!this.decoder.eol() && this.decoder.scan()) {
      const key = this.decoder.key;
      tokens.push(key, isVariableKey(key) ? PLACEHOLDER : this.decoder.value);
    }
    if (this.decoder.err !== undefined) return undefined;
    return { tokens, spaces: [] };
  }

  join(tokens: readonly string[]): string {
    const pairs: string[] = [];
    for (let i = 0; i < tokens.length; i += 2) {
      const key = tokens[i]!;
      if (key === "" || NEEDS_QUOTES.test(key)) return "";
      pairs.push(`${key}=${logfmtValue(tokens[i + 1] ?? "")}`);
    }
    return pairs.join(" ");
  }
}

// go-logfmt quotes a value holding a space or control character, `=`, `"` or an invalid character.
const NEEDS_QUOTES = /[\u0000-\u0020="\ufffd]/u;

function logfmtValue(value: string): string {
  if (!NEEDS_QUOTES.test(value)) return value;
  let out = '"';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (char === '"' || char === "\\") out += `\\${char}`;
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (code < 0x20) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += char;
  }
  return `${out}"`;
}

/** The fields Loki's pattern ingester tokenizes in a JSON line (the first one present). */
const MESSAGE_FIELDS = ["log", "message", "msg", "msg_", "_msg", "content"];

/**
 * A JSON line by its message field alone, as written in the line (escapes kept); the pattern is the message's
 * pattern between placeholders for the rest of the object. A line without a message field is not mined.
 */
export class JsonMessageTokenizer implements Tokenizer {
  private readonly words = new PunctuationTokenizer();

  tokenize(line: string): Tokenized | undefined {
    for (const field of MESSAGE_FIELDS) {
      const found = findMember(line, 0, field);
      if (typeof found === "object" && found.type === JsonType.String) return this.words.tokenize(found.raw);
    }
    return undefined;
  }

  join(tokens: readonly string[], spaces: readonly number[]): string {
    return `${PLACEHOLDER}${this.words.join(tokens, spaces)}${PLACEHOLDER}`;
  }
}

/** Runs of placeholders made one, as Loki prints patterns. */
export function mergePlaceholders(pattern: string): string {
  return pattern.replace(/(?:<_>){2,}/g, PLACEHOLDER);
}
