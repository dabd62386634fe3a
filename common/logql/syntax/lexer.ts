import { goParseBytes, parsePrometheusDuration } from "../../go/parse.js";
import { goEscape } from "../../go/quote.js";
import { parseDurationNs } from "./units.js";

// The LogQL tokenizer. It follows Loki's lexer (pkg/logql/syntax/lex.go) where that changes what a query means:
// a number directly followed by duration or byte-size characters is one DURATION or BYTES token, `[...]` is one
// RANGE token, `-5m` is a negative duration, `--strict` is a parser flag, `#` starts a comment. Keywords are not
// decided here: the parser reads identifiers in context, so a label may be called `rate` or `json`.

/**
 * A LogQL syntax or validation error; the message reads like Loki's. Loki places syntax errors (`parse error at
 * line 1, col 5: ...`) but not the errors it finds in the parsed query (`parse error : ...`, line and column 0),
 * and its lexer has lost the line, though not the column, by the time it reports at a `[range]` (`line 0`).
 */
export class LogQLParseError extends Error {
  /** 1-based line and column (in code points) of `pos`, the 0-based offset in the query text; 0 when unplaced. */
  readonly line: number;
  readonly col: number;

  constructor(
    readonly detail: string,
    readonly pos: number | undefined,
    text: string,
    placement: "at" | "column" = "at",
  ) {
    const { line, col } = pos === undefined ? { line: 0, col: 0 } : lineCol(text, pos);
    const shownLine = placement === "column" ? 0 : line;
    super(pos === undefined ? `parse error : ${detail}` : `parse error at line ${shownLine}, col ${col}: ${detail}`);
    this.name = "LogQLParseError";
    this.line = shownLine;
    this.col = col;
  }
}

function lineCol(text: string, pos: number): { line: number; col: number } {
  let line = 1;
  let col = 1;
  for (let i = 0; i < pos && i < text.length;) {
    const code = text.codePointAt(i)!;
    i += code > 0xffff ? 2 : 1;
    if (code === 10) {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  return { line, col };
}

export type TokenKind =
  "error" | "ident" | "string" | "number" | "duration" | "bytes" | "range" | "flag" | "op" | "eof";

export interface Token {
  kind: TokenKind;
  /** The source text, or for `op` tokens the operator itself. */
  text: string;
  pos: number;
  /** The unquoted value of a string, the flag of a `flag`, the message of an `error`. */
  value: string;
  /** Nanoseconds of a duration or range. */
  ns: bigint;
  /** The value of a number (NaN for Go integer spellings that are not floats, like 0x10) or byte size. */
  num: number;
}

const TWO_CHAR_OPERATORS = new Set(["|=", "|~", "|>", "!=", "!~", "!>", "=~", "==", ">=", "<="]);
const ONE_CHAR_OPERATORS = new Set(["|", "=", ">", "<", "+", "-", "*", "/", "%", "^", ",", "(", ")", "{", "}", "."]);

const PARSER_FLAGS = new Set(["--strict", "--keep-empty"]);
const DURATION_RUNE = /[0-9.nuµmshdwy]/;
const BYTES_RUNE = /[0-9.BikKMGTP]/;
const IDENT_START = /[\p{L}_]/u;
const IDENT_PART = /[\p{L}\p{Nd}_]/u;
/** Go's scanner also reads hexadecimal, octal and binary integers; LogQL then fails to use them as floats. */
const NUMBER = /0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
/** Loki's maxInputSize, in UTF-8 bytes. */
const MAX_INPUT = 131072;

type Push = (kind: TokenKind, pos: number, end: number, extra?: Partial<Token>) => void;

/**
 * Splits a query into tokens. The last token is `eof`, or `error` where the text stops being LogQL: like Loki's
 * lexer, which runs alongside the parser, a syntax error before that point is reported first.
 */
export function tokenize(text: string): Token[] {
  const size = text.length < MAX_INPUT / 3 ? text.length : Buffer.byteLength(text, "utf8");
  if (size >= MAX_INPUT) throw new LogQLParseError(`input size too long (${size} > ${MAX_INPUT})`, 0, text);
  const tokens: Token[] = [];
  const push: Push = (kind, pos, end, extra) => {
    const token: Token = { kind, text: text.slice(pos, end), pos, value: "", ns: 0n, num: 0 };
    tokens.push(extra === undefined ? token : Object.assign(token, extra));
  };
  try {
    scan(text, push);
  } catch (err) {
    if (!(err instanceof LogQLParseError)) throw err;
    push("error", err.pos ?? 0, err.pos ?? 0, { value: err.detail });
    return tokens;
  }
  push("eof", text.length, text.length);
  return tokens;
}

function scan(text: string, push: Push): void {
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    const code = ch.charCodeAt(0);
    if (code === 32 || (code >= 9 && code <= 13) || (code > 127 && /\s/.test(ch))) {
      i++;
      continue;
    }
    if (ch === "#") {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    const start = i;
    if (ch === '"' || ch === "`") {
      const { value, end } = readString(text, i);
      push("string", start, end, { value });
      i = end;
      continue;
    }
    if (ch === "[") {
      const close = text.indexOf("]", i);
      if (close < 0) throw new LogQLParseError("missing closing ']' in duration", i, text);
      const ns = parsePrometheusDuration(text.slice(i + 1, close));
      if (typeof ns === "string") throw new LogQLParseError(ns, i, text);
      push("range", start, close + 1, { ns });
      i = close + 1;
      continue;
    }
    if (isDigit(code) || (ch === "." && isDigit(text.charCodeAt(i + 1)))) {
      i = readNumberLike(text, i, push);
      continue;
    }
    if (ch === "-" && text[i + 1] === "-") {
      let end = i + 2;
      while (end < text.length && /[\p{L}-]/u.test(text[end]!)) end++;
      const flag = text.slice(i, end);
      if (PARSER_FLAGS.has(flag)) {
        push("flag", start, end, { value: flag });
        i = end;
        continue;
      }
    }
    if (ch === "-" && /[0-9.]/.test(text[i + 1] ?? "")) {
      const end = runEnd(text, i + 1, DURATION_RUNE);
      const ns = durationToken(text.slice(i, end));
      if (ns !== undefined) {
        push("duration", start, end, { ns });
        i = end;
        continue;
      }
    }
    if (isIdentStart(code, ch)) {
      let end = i + 1;
      while (end < text.length && isIdentPart(text.charCodeAt(end), text[end]!)) end++;
      push("ident", start, end);
      i = end;
      continue;
    }
    const pair = text.slice(i, i + 2);
    const op = TWO_CHAR_OPERATORS.has(pair) ? pair : ONE_CHAR_OPERATORS.has(ch) ? ch : undefined;
    if (op === undefined) {
      const char = String.fromCodePoint(text.codePointAt(i)!);
      throw new LogQLParseError(`syntax error: unexpected character ${JSON.stringify(char)}`, i, text);
    }
    push("op", start, i + op.length);
    i += op.length;
  }
}

const GO_DURATION = /^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;

/** A DURATION token as Loki reads one: a Prometheus duration, else a Go time.ParseDuration one (`1.5s`, `-5m`). */
function durationToken(text: string): bigint | undefined {
  if (typeof parsePrometheusDuration(text) !== "bigint" && !GO_DURATION.test(text)) return undefined;
  return parseDurationNs(text);
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isIdentStart(code: number, ch: string): boolean {
  if ((code >= 97 && code <= 122) || (code >= 65 && code <= 90) || code === 95) return true;
  return code > 127 && IDENT_START.test(ch);
}

function isIdentPart(code: number, ch: string): boolean {
  return isIdentStart(code, ch) || isDigit(code) || (code > 127 && IDENT_PART.test(ch));
}

function runEnd(text: string, from: number, rune: RegExp): number {
  let end = from;
  while (end < text.length && rune.test(text[end]!)) end++;
  return end;
}

/** A number, or a duration or byte size when the characters right after the number make one (as Loki does). */
function readNumberLike(text: string, start: number, push: Push): number {
  NUMBER.lastIndex = start;
  const match = NUMBER.exec(text)!;
  const numberEnd = start + match[0].length;
  const durationEnd = runEnd(text, numberEnd, DURATION_RUNE);
  if (durationEnd > numberEnd) {
    const ns = durationToken(text.slice(start, durationEnd));
    if (ns !== undefined) {
      push("duration", start, durationEnd, { ns });
      return durationEnd;
    }
  }
  const bytesEnd = runEnd(text, numberEnd, BYTES_RUNE);
  if (bytesEnd > numberEnd) {
    const bytes = goParseBytes(text.slice(start, bytesEnd)).value;
    if (bytes !== undefined) {
      // go-humanize's ParseBytes returns a whole number of bytes.
      push("bytes", start, bytesEnd, { num: Math.floor(bytes) });
      return bytesEnd;
    }
  }
  push("number", start, numberEnd, { num: /^0[xXoObB]/.test(match[0]) ? NaN : Number(match[0]) });
  return numberEnd;
}

/**
 * Reads a Go string literal: `"..."` with Go escapes, or a raw `` `...` `` string (carriage returns dropped).
 * Errors point at the opening quote, as Loki's do.
 */
function readString(text: string, start: number): { value: string; end: number } {
  const quote = text[start]!;
  if (quote === "`") {
    const close = text.indexOf("`", start + 1);
    if (close < 0) throw new LogQLParseError("literal not terminated", start, text);
    return { value: text.slice(start + 1, close).replace(/\r/g, ""), end: close + 1 };
  }
  let value = "";
  let i = start + 1;
  for (;;) {
    const ch = text[i];
    if (ch === undefined || ch === "\n") throw new LogQLParseError("literal not terminated", start, text);
    if (ch === '"') return { value, end: i + 1 };
    if (ch !== "\\") {
      value += ch;
      i++;
      continue;
    }
    const escape = goEscape(text, i, '"');
    if (escape === undefined) throw new LogQLParseError("invalid char escape", start, text);
    value += escape.value;
    i += escape.length;
  }
}
