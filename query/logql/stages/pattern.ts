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

function parse(pattern: string): PatternNode[] {
  const nodes: PatternNode[] = [];
  let literal = "";
  for (let i = 0; i < pattern.length; ) {
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
  if (names.length === 0) throw new Error("at least one capture is required");
  nodes.forEach((node, index) => {
    const next = nodes[index + 1];
    if ("capture" in node && next !== undefined && "capture" in next) {
      throw new Error(`found consecutive capture '<${node.capture}><${next.capture}>': invalid expression`);
    }
  });
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new Error(`duplicate capture name (${name}): invalid expression`);
    seen.add(name);
  }
  return { names, matches: (line) => match(nodes, line) };
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
