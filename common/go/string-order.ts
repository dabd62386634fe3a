/**
 * Byte order of UTF-8, as both engines and Go sort strings. UTF-8 byte order is code point order, which differs
 * from JavaScript's UTF-16 code unit order only where a surrogate meets a unit in U+E000..U+FFFF; the first
 * differing units are compared with the surrogates moved above that range, without encoding either string.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) < codePointRank(y) ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}
