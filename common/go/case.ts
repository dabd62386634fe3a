// Go's strings.ToLower and strings.ToUpper: each character mapped on its own by Unicode's simple case mapping,
// where JavaScript's toLowerCase and toUpperCase apply the full, context-sensitive one (Prometheus's lowercase and
// uppercase relabel actions are Go's).

/** Simple uppercase mappings (Go's unicode.ToUpper) of letters whose full mapping, JavaScript's, is two letters. */
function simpleUpper(code: number): number | undefined {
  if ((code >= 0x1f80 && code <= 0x1f87) || (code >= 0x1f90 && code <= 0x1f97) || (code >= 0x1fa0 && code <= 0x1fa7))
    return code + 8;
  return { 0x1fb3: 0x1fbc, 0x1fc3: 0x1fcc, 0x1ff3: 0x1ffc }[code];
}

/**
 * Go's strings.ToLower: each character mapped on its own by Unicode's simple case mapping (no final sigma, no
 * İ -> i̇), where JavaScript's toLowerCase applies the full, context-sensitive one.
 */
export function goLower(text: string): string {
  if (/^[\x00-\x7f]*$/.test(text)) return text.toLowerCase();
  let out = "";
  for (const char of text) {
    const lower = char.toLowerCase();
    out += [...lower].length === 1 ? lower : char === "\u0130" ? "i" : char;
  }
  return out;
}

/** Go's strings.ToUpper, each character by the simple mapping (ß stays ß). */
export function goUpper(text: string): string {
  if (/^[\x00-\x7f]*$/.test(text)) return text.toUpperCase();
  let out = "";
  for (const char of text) {
    const upper = char.toUpperCase();
    const simple = simpleUpper(char.codePointAt(0)!);
    out += simple !== undefined ? String.fromCodePoint(simple) : [...upper].length === 1 ? upper : char;
  }
  return out;
}
