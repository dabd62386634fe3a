import RE2 from "re2";

// The one home of regular expressions: LogQL, PromQL, label_replace, Go templates, the ruler and Alertmanager
// matchers are all RE2 (Go's regexp), and they run on Google's RE2 through node-re2. RE2 matches in time linear in
// the input whatever the pattern, so no query can stall the event loop with a backtracking pattern like `(a+)+$`.
// RE2 reads Go's syntax natively (Perl classes, (?P<name>...), flags anywhere like (?i) or (?U), [[:alpha:]] and
// [[:^alpha:]], \pL, \Q...\E, \z) and matches on UTF-8 as Go does. What Go refuses and C++ RE2 takes (\C, one byte
// of UTF-8) is refused here too.

export type Re2 = RE2;

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

// RE2's error codes in the words of Go's regexp/syntax, which Loki and Prometheus users see.
const GO_REASONS: [string, string][] = [
  ["missing ]", "missing closing ]"],
  ["missing )", "missing closing )"],
  ["unexpected )", "unexpected )"],
  ["trailing \\", "trailing backslash at end of expression"],
  ["no argument for repetition operator", "missing argument to repetition operator"],
  ["invalid repetition size", "invalid repeat count"],
  ["bad repetition operator", "invalid nested repetition operator"],
  ["invalid perl operator", "invalid or unsupported Perl syntax"],
  ["invalid named capture group", "invalid named capture"],
];

/** RE2's message (`missing ): (a`) in Go's words and form (``missing closing ): `(a` ``). */
function goReason(err: unknown): string {
  const message = (err as Error).message;
  for (const [re2, go] of GO_REASONS) {
    if (!message.startsWith(re2)) continue;
    // Go names the expression after every code, in backticks, empty when there is none (a trailing backslash).
    const rest = message.slice(re2.length);
    return `${go}: \`${rest.startsWith(": ") ? rest.slice(2) : rest}\``;
  }
  return message;
}

/** Whether `\C` appears as an escape (not as an escaped backslash followed by C). */
function hasByteEscape(pattern: string): boolean {
  for (let i = pattern.indexOf("\\"); i !== -1 && i < pattern.length - 1; i = pattern.indexOf("\\", i + 2)) {
    if (pattern[i + 1] === "C") return true;
  }
  return false;
}

function compile(pattern: string, anchored: boolean, flags: string): Re2 {
  if (hasByteEscape(pattern)) throw new RegexSyntaxError(pattern, "invalid escape sequence: \\C");
  try {
    return new RE2(anchored ? `^(?:${pattern})$` : pattern, flags);
  } catch (err) {
    if (!anchored) throw new RegexSyntaxError(pattern, goReason(err));
  }
  // The anchoring group can hide the reason (a trailing backslash reads as an unclosed group): tell the pattern's own.
  try {
    new RE2(pattern, flags);
  } catch (err) {
    throw new RegexSyntaxError(pattern, goReason(err));
  }
  throw new RegexSyntaxError(pattern, "missing closing )");
}

/**
 * Compiles an RE2 pattern of a query. `anchored` wraps it as Prometheus label matchers do (`^(?:re)$`); line
 * filters and `regexp` stages search unanchored. `.` matches a newline here, as in ClickHouse's match() and the
 * embedded store's regexp_matches(..., 's'), so a filter gives the same answer whether the Store or the TypeScript
 * engine evaluates it; `(?-s)` in the pattern turns that off.
 */
export function compileRe2(pattern: string, anchored = false): Re2 {
  return compile(pattern, anchored, "su");
}

/**
 * Compiles an RE2 pattern with Go's regexp.Compile defaults, where `.` stops at a newline: Prometheus' template
 * functions, Alertmanager's matchers and the collector's configured patterns, which never reach a store.
 */
export function compileGoRegexp(pattern: string, anchored = false): Re2 {
  return compile(pattern, anchored, "u");
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

const globalCopies = new WeakMap<Re2, Re2>();

/** Go's Regexp.ReplaceAllStringFunc: every match replaced by `replacement(match)`, an empty match once per position. */
export function replaceAllMatches(regex: Re2, text: string, replacement: (match: RegExpExecArray) => string): string {
  let global = globalCopies.get(regex);
  if (global === undefined) {
    // Copying from the compiled regex keeps its RE2 syntax as is (a string would be translated from JavaScript's again).
    global = regex.global ? regex : (new RE2(regex, regex.flags + "g") as Re2);
    globalCopies.set(regex, global);
  }
  global.lastIndex = 0;
  let out = "";
  let last = 0;
  for (let match = global.exec(text); match !== null; match = global.exec(text)) {
    out += text.slice(last, match.index) + replacement(match);
    last = match.index + match[0].length;
    if (match[0] === "") {
      if (global.lastIndex >= text.length) break;
      global.lastIndex += text.codePointAt(global.lastIndex)! > 0xffff ? 2 : 1;
    }
  }
  return out + text.slice(last);
}

/** The names of a compiled regex's named groups, in the order they open. */
export function groupNames(regex: Re2): string[] {
  // An alternative that matches the empty string makes every group take part, unset, in a match.
  const probe = new RE2(`(?:${regex.internalSource})|`, regex.flags).exec("");
  return Object.keys(probe?.groups ?? {});
}

const META = new Set([..."\\^$.|?*+()[]{}"]);

/**
 * The literal runs of one alternative that every match contains: `status=5\d\d` needs "status=5". Undefined when
 * the alternative has none or uses syntax this does not follow (flags, which may fold case).
 */
function requiredLiteral(alternative: string): { literal: string; whole: boolean } | undefined {
  let best = "";
  let run = "";
  let whole = true;
  const end = () => {
    if (run.length > best.length) best = run;
    run = "";
    whole = false;
  };
  for (let i = 0; i < alternative.length; i++) {
    const char = alternative[i]!;
    let literal: string | undefined;
    if (char === "\\") {
      const next = alternative[++i];
      if (next === undefined) return undefined;
      if (!/[0-9A-Za-z]/.test(next)) literal = next;
      // Perl classes and assertions match no fixed text; other letter escapes (\p, \x, \Q, \n...) are not followed.
      else if (!"dDwWsSbBAz".includes(next)) return undefined;
    } else if (char === "(" || char === "[" || char === ")" || char === "]") return undefined;
    else if (!META.has(char)) literal = char;
    const quantifier = alternative[i + 1];
    if (quantifier === "*" || quantifier === "?" || quantifier === "{") {
      // An atom under an optional quantifier may be absent; `+` keeps it once.
      end();
      i = quantifier === "{" ? alternative.indexOf("}", i) : i + 1;
      if (i === -1) return undefined;
      if (alternative[i + 1] === "?") i++;
    } else if (literal === undefined) end();
    else run += literal;
  }
  const last = run;
  const wasWhole = whole;
  end();
  return best === "" ? undefined : { literal: best, whole: wasWhole && last === best };
}

/**
 * A test of `pattern` (see compileRe2) that skips RE2 where plain string search answers: node-re2 costs a few
 * microseconds a call to hand the text to C++, so a line filter runs ~10 times faster when most lines lack the
 * pattern's literal part, and a pattern that is only literals (`error`, Grafana's `a|b|c` multi-value variables)
 * never reaches RE2 at all.
 */
/**
 * Literal strings one of which every match of `pattern` contains (a plain `includes` before RE2 skips most
 * texts); undefined when some alternative has none this can tell.
 */
export function requiredLiterals(pattern: string): string[] | undefined {
  const alternatives = pattern.split("|").map(requiredLiteral);
  if (alternatives.some((alternative) => alternative === undefined)) return undefined;
  return alternatives.map((alternative) => alternative!.literal);
}

export function compileRe2Test(pattern: string, anchored = false): (text: string) => boolean {
  const regex = compileRe2(pattern, anchored);
  const alternatives = pattern.split("|").map(requiredLiteral);
  if (alternatives.some((alternative) => alternative === undefined)) return (text) => regex.test(text);
  const literals = alternatives.map((alternative) => alternative!.literal);
  if (alternatives.every((alternative) => alternative!.whole)) {
    if (anchored) {
      const values = new Set(literals);
      return (text) => values.has(text);
    }
    return (text) => literals.some((literal) => text.includes(literal));
  }
  return (text) => literals.some((literal) => text.includes(literal)) && regex.test(text);
}

/** A global copy of `regex` whose matches carry the positions of their groups (`indices`), for replacing groups in place. */
export function withIndices(regex: Re2): Re2 {
  const flags = new Set([...regex.flags, "g", "d"]);
  return new RE2(regex, [...flags].join("")) as Re2;
}

/** How many capture groups a compiled regex has. */
export function groupCount(regex: Re2): number {
  return new RE2(`(?:${regex.internalSource})|`, regex.flags).exec("")!.length - 1;
}
