// Arithmetic shared by the two ways the store answers a range function per slice: raw sample slices
// (slices.ts) and rollup slices (rollups.ts).

/** Greatest common divisor, for the widest slice width that divides every step and range. */
export function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return Math.abs(a);
}

/** Index of the first slice numbered at or after k. */
export function firstAtOrAfter(slices: Float64Array, k: number): number {
  let lo = 0;
  let hi = slices.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (slices[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
