import { goEscape } from "../../../common/go/quote.js";

// Splits a PromQL query into tokens. Keywords (by, offset, bool, ...) come out as identifiers: which ones are
// keywords depends on where they stand (`by` is a label name inside braces), so the parser decides.

export type TokenType = "ident" | "number" | "duration" | "string" | "punct" | "eof";

export interface Token {
  type: TokenType;
  /** The source text; for strings, the unquoted value. */
  text: string;
  pos: number;
}

export class PromqlParseError extends Error {
  constructor(
    readonly query: string,
    readonly pos: number,
    readonly reason: string,
  ) {
    super(`${position(query, pos)} parse error: ${reason}`);
    this.name = "PromqlParseError";
  }
}

/** `line:column:` as Prometheus prints a parse error's position (both 1-based). */
function position(query: string, pos: number): string {
  if (pos < 0 || pos > query.length) return "invalid position:";
  let line = 1;
  let lastBreak = -1;
  for (let i = 0; i < pos; i++) {
    if (query[i] === "\n") {
      line++;
      lastBreak = i;
    }
  }
  return `${line}:${pos - lastBreak}:`;
}

const PUNCT = [
  "=~",
  "!~",
  "!=",
  "==",
  "<=",
  ">=",
  "(",
  ")",
  "{",
  "}",
  "[",
  "]",
  ",",
  "=",
  "<",
  ">",
  "+",
  "-",
  "*",
  "/",
  "%",
  "^",
  "@",
  ":",
];
const IDENT = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const DURATION = /(?:\d+(?:ms|[smhdwy]))+(?![a-zA-Z0-9_])/y;
const NUMBER = /(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![a-zA-Z0-9_])/y;

export function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  // Inside brackets a colon separates a subquery's range from its step instead of starting a metric name.
  let brackets = 0;
  let parens = 0;
  const fail = (pos: number, reason: string): never => {
    throw new PromqlParseError(query, pos, reason);
  };
  const sticky = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    return re.exec(query)?.[0];
  };
  while (i < query.length) {
    const char = query[i]!;
    if (/\s/.test(char)) {
      i++;
      continue;
    }
    if (char === "#") {
      while (i < query.length && query[i] !== "\n") i++;
      continue;
    }
    if (char === '"' || char === "'" || char === "`") {
      const start = i;
      i++;
      let value = "";
      for (;;) {
        if (i >= query.length) fail(start, "unterminated quoted string");
        const c = query[i]!;
        if (c === char) break;
        if (char !== "`" && c === "\n") fail(start, "unterminated quoted string");
        if (char !== "`" && c === "\\") {
          if (i + 1 >= query.length) fail(i, "unterminated quoted string");
          const escape = goEscape(query, i, char as '"' | "'");
          if (escape === undefined) return fail(i, "invalid escape sequence in string");
          value += escape.value;
          i += escape.length;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      tokens.push({ type: "string", text: value, pos: start });
      continue;
    }
    if (/[0-9.]/.test(char)) {
      const duration = sticky(DURATION);
      if (duration !== undefined) {
        tokens.push({ type: "duration", text: duration, pos: i });
        i += duration.length;
        continue;
      }
      const number = brackets > 0 ? undefined : sticky(NUMBER);
      if (number === undefined) {
        // Prometheus quotes what it read: the digits in a range, the digits and the offending character elsewhere.
        const read = /^[0-9.]*[a-zA-Z_]?/.exec(query.slice(i))![0];
        fail(
          i,
          brackets > 0
            ? `bad duration syntax: "${/^[0-9.]*/.exec(read)![0]}"`
            : `bad number or duration syntax: "${read}"`,
        );
      }
      tokens.push({ type: "number", text: number!, pos: i });
      i += number!.length;
      continue;
    }
    const ident = char === ":" && brackets > 0 ? undefined : sticky(IDENT);
    if (ident !== undefined) {
      tokens.push({ type: "ident", text: ident, pos: i });
      i += ident.length;
      continue;
    }
    const punct = PUNCT.find((p) => query.startsWith(p, i));
    if (punct === undefined) fail(i, `unexpected character: '${char}'`);
    if (punct === "[") brackets++;
    if (punct === "]") brackets--;
    if (punct === "(") parens++;
    if (punct === ")") parens--;
    tokens.push({ type: "punct", text: punct!, pos: i });
    i += punct!.length;
  }
  if (parens > 0) fail(query.length, "unclosed left parenthesis");
  tokens.push({ type: "eof", text: "", pos: query.length });
  return tokens;
}
