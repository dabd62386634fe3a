import RE2 from "re2";

// The one home of regular expressions: LogQL, PromQL, Go templates, Alertmanager matchers and Prometheus relabel
// rules are all RE2 (Go's regexp). JavaScript's RegExp covers the same language once a few spellings are
// translated; what RE2 has and JavaScript lacks (flags in the middle of a pattern, \C) is refused with a message
// rather than silently matching something else. Patterns applied to ingested data on the collector (relabel rules)
// are compiled by RE2's own engine instead (compileLinearRe2): its matching time is linear, so no rule can stall
// the event loop that serves ingestion.

export class RegexSyntaxError extends Error {
  /**
   * @param goReason the error as Go's regexp package words the common ones (``missing closing ): `(a` ``), which
   *   Loki shows after "error parsing regexp: "; else `reason`.
   */
  constructor(
    readonly pattern: string,
    reason: string,
    readonly goReason = reason,
  ) {
    super(`invalid regular expression ${JSON.stringify(pattern)}: ${reason}`);
    this.name = "RegexSyntaxError";
  }
}

const POSIX_CLASSES: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7F",
  blank: "\\t ",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

function escapeLiteral(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

/** Leading `(?flags)` groups, e.g. `(?i)` or `(?is)`, become RegExp flags. */
function leadingFlags(pattern: string, flags: Set<string>): string {
  let rest = pattern;
  for (;;) {
    const match = /^\(\?([imsU]*)(?:-([imsU]*))?\)/.exec(rest);
    if (match === null) return rest;
    for (const flag of match[1] ?? "") flags.add(flag);
    for (const flag of match[2] ?? "") flags.delete(flag);
    if (flags.has("U")) throw new RegexSyntaxError(pattern, "the ungreedy flag (?U) is not supported");
    rest = rest.slice(match[0].length);
  }
}

function translate(pattern: string, body: string): string {
  let out = "";
  let inClass = false;
  let classStart = 0;
  for (let i = 0; i < body.length; i++) {
    const char = body[i]!;
    if (char === "\\") {
      const next = body[i + 1];
      if (next === undefined)
        throw new RegexSyntaxError(pattern, "trailing backslash", "trailing backslash at end of expression: ``");
      if (next === "Q") {
        const end = body.indexOf("\\E", i + 2);
        const literal = body.slice(i + 2, end === -1 ? body.length : end);
        out += escapeLiteral(literal);
        i = end === -1 ? body.length : end + 1;
        continue;
      }
      if (next === "z" && !inClass) {
        out += "$";
        i++;
        continue;
      }
      if (next === "A" && !inClass) {
        out += "^";
        i++;
        continue;
      }
      if (next === "C") throw new RegexSyntaxError(pattern, "\\C is not supported");
      if ((next === "p" || next === "P") && body[i + 2] !== "{" && body[i + 2] !== undefined) {
        out += `\\${next}{${body[i + 2]}}`;
        i += 2;
        continue;
      }
      out += char + next;
      i++;
      continue;
    }
    if (inClass) {
      if (char === "[" && body[i + 1] === ":") {
        const end = body.indexOf(":]", i + 2);
        const name = end === -1 ? undefined : body.slice(i + 2, end);
        const negated = name?.startsWith("^");
        const ranges = name === undefined ? undefined : POSIX_CLASSES[negated ? name.slice(1) : name];
        if (ranges === undefined) throw new RegexSyntaxError(pattern, "unknown POSIX class");
        if (negated) throw new RegexSyntaxError(pattern, "negated POSIX classes are not supported");
        out += ranges;
        i = end + 1;
        continue;
      }
      if (char === "]") inClass = false;
      else if (char === "[") out += "\\";
      out += char;
      continue;
    }
    if (char === "[") {
      inClass = true;
      classStart = i;
      out += char;
      if (body[i + 1] === "^") out += body[++i];
      if (body[i + 1] === "]") out += "\\" + body[++i];
      continue;
    }
    if (char === "(" && body[i + 1] === "?") {
      if (body[i + 2] === "P" && body[i + 3] === "<") {
        out += "(?<";
        i += 3;
        continue;
      }
      if (body[i + 2] === ":" || body[i + 2] === "<") {
        out += char;
        continue;
      }
      throw new RegexSyntaxError(pattern, "flags inside a pattern are not supported; put them at the start");
    }
    out += char;
  }
  if (inClass)
    throw new RegexSyntaxError(pattern, "missing closing ]", `missing closing ]: \`${body.slice(classStart)}\``);
  return out;
}

function compile(pattern: string, anchored: boolean, flags: Set<string>): RegExp {
  const body = translate(pattern, leadingFlags(pattern, flags));
  const source = anchored ? `^(?:${body})$` : body;
  const flagText = [...flags].join("");
  try {
    return new RegExp(source, flagText + "u");
  } catch {
    try {
      // Unicode mode rejects some escapes RE2 takes as literals (`\-`, a lone `{`); fall back to the legacy mode.
      return new RegExp(source, flagText);
    } catch (err) {
      const reason = (err as Error).message.replace(/^Invalid regular expression: /, "");
      throw new RegexSyntaxError(pattern, reason, goReason(pattern, reason));
    }
  }
}

/**
 * Compiles an RE2 pattern of a query. `anchored` wraps it as Prometheus label matchers do (`^(?:re)$`); line
 * filters and `regexp` stages search unanchored. `.` matches a newline here, as in ClickHouse's match() and the
 * embedded store's regexp_matches(..., 's'), so a filter gives the same answer whether the Store or the TypeScript
 * engine evaluates it.
 */
export function compileRe2(pattern: string, anchored = false): RegExp {
  return compile(pattern, anchored, new Set(["s"]));
}

/**
 * Compiles an RE2 pattern with Go's regexp.Compile defaults, where `.` stops at a newline: Prometheus' template
 * functions and Alertmanager's matchers, which never reach a store.
 */
export function compileGoRegexp(pattern: string, anchored = false): RegExp {
  return compile(pattern, anchored, new Set());
}

const NAME_CHAR = /[\p{L}\p{Nd}_]/u;

/**
 * `template` with `$1`, `${1}`, `$name`, `${name}` replaced by the match's groups and `$$` by `$`, as Go's
 * Regexp.Expand: a name is the longest run of letters, digits and `_` (`$1x` is the group named `1x`), an
 * unknown or unmatched group expands to nothing, and a `$` not followed by a name stays as it is.
 */
export function expandReplacement(template: string, match: RegExpExecArray): string {
  if (!template.includes("$")) return template;
  let out = "";
  let i = 0;
  while (i < template.length) {
    const dollar = template.indexOf("$", i);
    if (dollar < 0) break;
    out += template.slice(i, dollar);
    i = dollar + 1;
    if (template[i] === "$") {
      out += "$";
      i++;
      continue;
    }
    const brace = template[i] === "{";
    let end = brace ? i + 1 : i;
    for (const char of template.slice(end)) {
      if (!NAME_CHAR.test(char)) break;
      end += char.length;
    }
    const name = template.slice(brace ? i + 1 : i, end);
    if (name === "" || (brace && template[end] !== "}")) {
      out += "$";
      continue;
    }
    i = brace ? end + 1 : end;
    out += groupValue(name, match) ?? "";
  }
  return out + template.slice(i);
}

function groupValue(name: string, match: RegExpExecArray): string | undefined {
  if (/^(0|[1-9][0-9]{0,7})$/.test(name)) return match[Number(name)];
  return match.groups?.[name];
}

const globalCopies = new WeakMap<RegExp, RegExp>();

/** Go's Regexp.ReplaceAllStringFunc: every match replaced by `replacement(match)`, an empty match once per position. */
export function replaceAllMatches(
  regex: RegExp,
  text: string,
  replacement: (match: RegExpExecArray) => string,
): string {
  let global = globalCopies.get(regex);
  if (global === undefined) {
    global = regex.global ? regex : new RegExp(regex.source, regex.flags + "g");
    globalCopies.set(regex, global);
  }
  global.lastIndex = 0;
  let out = "";
  let last = 0;
  for (let match = global.exec(text); match !== null; match = global.exec(text)) {
    out += text.slice(last, match.index) + replacement(match);
    last = match.index + match[0].length;
    if (match[0] === "") global.lastIndex += text.codePointAt(global.lastIndex)! > 0xffff ? 2 : 1;
  }
  return out + text.slice(last);
}

/** The names of a compiled regex's named groups, in the order they open. */
export function groupNames(regex: RegExp): string[] {
  // An alternative that matches the empty string makes every group take part, unset, in a match.
  const probe = new RegExp(`${regex.source}|`, regex.flags).exec("");
  return Object.keys(probe?.groups ?? {});
}

/** V8's words for the commonest syntax errors, in Go's (regexp/syntax), which Loki shows its users. */
function goReason(pattern: string, reason: string): string {
  if (reason.endsWith(": Unterminated group")) return `missing closing ): \`${pattern}\``;
  if (reason.endsWith(": Unmatched ')'")) return `unexpected ): \`${pattern}\``;
  return reason;
}

/** A pattern compiled by RE2's engine; it has RegExp's exec, test and replace. */
export type LinearRegex = InstanceType<typeof RE2>;

/**
 * Compiles an RE2 pattern with Google's RE2 (the re2 package, the engine behind Go's regexp): the same syntax
 * (Perl classes, (?P<name>...), flags anywhere, [[:alpha:]], \pL, \Q...\E), linear-time matching on UTF-8, `.`
 * stopping at a newline unless (?s). `anchored` wraps it as Prometheus does (`^(?:re)$`).
 */
export function compileLinearRe2(pattern: string, anchored = false): LinearRegex {
  try {
    return new RE2(anchored ? `^(?:${pattern})$` : pattern);
  } catch (err) {
    throw new RegexSyntaxError(pattern, (err as Error).message);
  }
}
