// The lexer of Go's text/template: text between actions, and inside `{{ }}` the tokens of Go's template
// language, with `{{-`/`-}}` trimming and `/* */` comments.

export class TemplateParseError extends Error {
  override name = "TemplateParseError";
}

type TokenKind =
  | "text"
  | "left"
  | "right"
  | "space"
  | "field"
  | "dot"
  | "variable"
  | "identifier"
  | "string"
  | "number"
  | "char"
  | "pipe"
  | "lparen"
  | "rparen"
  | "declare"
  | "assign"
  | "comma"
  | "eof";

export interface Token {
  kind: TokenKind;
  text: string;
  pos: number;
}

const NUMBER =
  /^[+-]?(?:0[xX][0-9a-fA-F_]+(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?\d+)?|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)/;

export function lex(name: string, source: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  const fail = (at: number, message: string): never => {
    throw new TemplateParseError(`template: ${name}:${lineOf(source, at)}: ${message}`);
  };
  while (pos < source.length) {
    const open = source.indexOf("{{", pos);
    if (open === -1) {
      tokens.push({ kind: "text", text: source.slice(pos), pos });
      break;
    }
    let text = source.slice(pos, open);
    let inner = open + 2;
    const trimLeft =
      source.startsWith("- ", inner) ||
      source.startsWith("-\t", inner) ||
      source.startsWith("-\n", inner) ||
      source.startsWith("-\r", inner);
    if (trimLeft) {
      text = text.replace(/[ \t\r\n]+$/, "");
      inner += 1;
    }
    if (text !== "") tokens.push({ kind: "text", text, pos });
    // A comment fills a whole action.
    const afterSpace = inner + /^[ \t\r\n]*/.exec(source.slice(inner))![0].length;
    if (source.startsWith("/*", trimLeft ? afterSpace : inner)) {
      const start = trimLeft ? afterSpace : inner;
      const end = source.indexOf("*/", start + 2);
      if (end === -1) fail(start, "unclosed comment");
      let close = end + 2;
      const trimRight = /^[ \t\r\n]+-}}/.test(source.slice(close));
      close = trimRight ? source.indexOf("-}}", close) : close;
      if (!source.startsWith(trimRight ? "-}}" : "}}", close)) fail(close, "comment ends before closing delimiter");
      pos = close + (trimRight ? 3 : 2);
      if (trimRight) pos += /^[ \t\r\n]*/.exec(source.slice(pos))![0].length;
      continue;
    }
    tokens.push({ kind: "left", text: "{{", pos: open });
    pos = inner;
    for (;;) {
      if (pos >= source.length) fail(open, "unclosed action");
      const rest = source.slice(pos);
      const closing = /^[ \t\r\n]+-}}/.exec(rest);
      if (closing !== null) {
        tokens.push({ kind: "right", text: "}}", pos });
        pos += closing[0].length;
        pos += /^[ \t\r\n]*/.exec(source.slice(pos))![0].length;
        break;
      }
      if (rest.startsWith("}}")) {
        tokens.push({ kind: "right", text: "}}", pos });
        pos += 2;
        break;
      }
      const char = rest[0]!;
      let match: RegExpExecArray | null;
      if ((match = /^[ \t\r\n]+/.exec(rest)) !== null) tokens.push({ kind: "space", text: match[0], pos });
      else if ((match = /^\.[A-Za-z_][A-Za-z0-9_]*/.exec(rest)) !== null)
        tokens.push({ kind: "field", text: match[0], pos });
      else if ((match = /^\$[A-Za-z0-9_]*/.exec(rest)) !== null) tokens.push({ kind: "variable", text: match[0], pos });
      else if ((match = NUMBER.exec(rest)) !== null && !(char === "." && !/^\.\d/.test(rest))) {
        tokens.push({ kind: "number", text: match[0], pos });
      } else if (char === ".") tokens.push({ kind: "dot", text: ".", pos });
      else if ((match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest)) !== null)
        tokens.push({ kind: "identifier", text: match[0], pos });
      else if ((match = /^"(?:[^"\\\n]|\\.)*"/.exec(rest)) !== null)
        tokens.push({ kind: "string", text: match[0], pos });
      else if ((match = /^`[^`]*`/.exec(rest)) !== null) tokens.push({ kind: "string", text: match[0], pos });
      else if ((match = /^'(?:[^'\\\n]|\\.[^']*)'/.exec(rest)) !== null)
        tokens.push({ kind: "char", text: match[0], pos });
      else if (rest.startsWith(":=")) tokens.push({ kind: "declare", text: ":=", pos });
      else if (char === "=") tokens.push({ kind: "assign", text: "=", pos });
      else if (char === "|") tokens.push({ kind: "pipe", text: "|", pos });
      else if (char === "(") tokens.push({ kind: "lparen", text: "(", pos });
      else if (char === ")") tokens.push({ kind: "rparen", text: ")", pos });
      else if (char === ",") tokens.push({ kind: "comma", text: ",", pos });
      else if (char === '"' || char === "`") fail(pos, "unterminated quoted string");
      else fail(pos, `unexpected ${JSON.stringify(char)} in command`);
      pos += tokens[tokens.length - 1]!.text.length;
    }
  }
  tokens.push({ kind: "eof", text: "", pos: source.length });
  return tokens;
}

export function lineOf(source: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos && i < source.length; i++) if (source.charCodeAt(i) === 10) line++;
  return line;
}

/** Go's `line:col` of an error: 1-based line, 0-based byte column. */
export function location(source: string, pos: number): string {
  const before = source.slice(0, pos);
  const newline = before.lastIndexOf("\n");
  const column = Buffer.byteLength(newline === -1 ? before : before.slice(newline + 1));
  return `${lineOf(source, pos)}:${column}`;
}
