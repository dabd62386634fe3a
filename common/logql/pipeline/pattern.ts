// Loki's pattern matcher (pkg/logql/log/pattern): literals and `<name>` captures, `<_>` capturing nothing.
// Matching is greedy-free and single-pass: each capture ends at the next occurrence of the literal after it.

type PatternNode = { literal: string } | { capture: string };

export interface PatternMatcher {
  /** Names of the named captures, in order. */
  names: string[];
  /** Values of the named captures that matched, in order; possibly fewer than `names`. */
  matches(line: string): string[];
}

const CAPTURE = /^<([A-Za-z_][A-Za-z0-9_]*)>/;

/** A pattern Loki refuses, with Loki's message. */
export class PatternSyntaxError extends Error {
  override name = "PatternSyntaxError";
}

function parse(pattern: string): PatternNode[] {
  const nodes: PatternNode[] = [];
  let literal = "";
  for (let i = 0; i < pattern.length;) {
    const capture = pattern[i] === "<" ? CAPTURE.exec(pattern.slice(i)) : null;
    if (capture === null) {
      literal += pattern[i];
      i++;
      continue;
    }
    if (literal !== "") nodes.push({ literal });
    literal = "";
    nodes.push({ capture: capture[1]! });
    i += capture[0].length;
  }
  if (literal !== "") nodes.push({ literal });
  return nodes;
}

export function compilePattern(pattern: string): PatternMatcher {
  const nodes = parse(pattern);
  const names = nodes.flatMap((node) => ("capture" in node && node.capture !== "_" ? [node.capture] : []));
  if (names.length === 0) throw new PatternSyntaxError("at least one capture is required");
  refuseConsecutiveCaptures(nodes);
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new PatternSyntaxError(`duplicate capture name (${name}): invalid expression`);
    seen.add(name);
  }
  return { names, matches: (line) => match(nodes, line) };
}

function refuseConsecutiveCaptures(nodes: PatternNode[]): void {
  nodes.forEach((node, index) => {
    const next = nodes[index + 1];
    if ("capture" in node && next !== undefined && "capture" in next) {
      throw new PatternSyntaxError(
        `found consecutive capture '<${node.capture}><${next.capture}>': invalid expression`,
      );
    }
  });
}

/** The literal parts of a pattern, in order. */
export function patternLiterals(pattern: string): string[] {
  return parse(pattern).flatMap((node) => ("literal" in node ? [node.literal] : []));
}

/**
 * The test of a pattern line filter (`|> "<_> error <_>"`), Loki's Matcher.Test: only `<_>` captures; each literal
 * must follow the previous one with a non-empty capture between them (the first may start anywhere); the line must
 * end with the last literal, or go on past it when the pattern ends with a capture. An empty pattern matches only
 * the empty line.
 */
export function compileLineFilterPattern(pattern: string): (line: string) => boolean {
  const nodes = parse(pattern);
  refuseConsecutiveCaptures(nodes);
  const named = nodes.find((node) => "capture" in node && node.capture !== "_");
  if (named !== undefined)
    throw new PatternSyntaxError(`named captures are not allowed: found '<${(named as { capture: string }).capture}>'`);
  if (nodes.length === 0) return (line) => line === "";
  const endsOnCapture = "capture" in nodes[nodes.length - 1]!;
  return (line) => {
    if (line === "") return false;
    let offset = 0;
    for (let index = 0; index < nodes.length; index++) {
      const node = nodes[index]!;
      if (!("literal" in node)) continue;
      const at = line.indexOf(node.literal, offset);
      if (at === -1 || (index !== 0 && at === offset)) return false;
      offset = at + node.literal.length;
    }
    return endsOnCapture === (offset !== line.length);
  };
}

function match(nodes: PatternNode[], line: string): string[] {
  const captures: string[] = [];
  if (line === "" || nodes.length === 0) return captures;
  let rest = line;
  let index = 0;
  const first = nodes[0]!;
  if ("literal" in first) {
    if (!rest.startsWith(first.literal)) return captures;
    rest = rest.slice(first.literal.length);
    index = 1;
  }
  while (index < nodes.length) {
    const capture = (nodes[index] as { capture: string }).capture;
    const next = nodes[index + 1] as { literal: string } | undefined;
    if (next === undefined) {
      if (capture !== "_") captures.push(rest);
      return captures;
    }
    const at = rest.indexOf(next.literal);
    if (at === -1) {
      if (capture !== "_") captures.push(rest);
      return captures;
    }
    if (capture !== "_") captures.push(rest.slice(0, at));
    rest = rest.slice(at + next.literal.length);
    index += 2;
  }
  return captures;
}
