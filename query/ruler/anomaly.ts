import type { AnomalyMethod } from "./rules.js";

// The band of an anomaly rule from a series' history: mean ± sensitivity·σ (rolling z-score), or
// median ± sensitivity·1.4826·MAD (median absolute deviation, scaled to σ for normal data, and unmoved by the
// outliers it is meant to find). The history excludes the value being judged, so a spike cannot widen its own band.

export interface Band {
  baseline: number;
  lower: number;
  upper: number;
  /** How many spreads the value lies from the baseline (its z-score, or robust z-score); ±Inf for a flat history. */
  score: number;
}

/** MAD of normally distributed data times this is its standard deviation. */
const MAD_TO_SIGMA = 1.4826;

function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The band, or undefined when the history has fewer than `minSamples` finite values. */
export function anomalyBand(
  history: number[],
  value: number,
  method: AnomalyMethod,
  sensitivity: number,
  minSamples: number,
): Band | undefined {
  const finite = history.filter(Number.isFinite);
  if (finite.length < minSamples) return undefined;
  let baseline: number;
  let spread: number;
  if (method === "zscore") {
    baseline = finite.reduce((sum, v) => sum + v, 0) / finite.length;
    spread = Math.sqrt(finite.reduce((sum, v) => sum + (v - baseline) ** 2, 0) / finite.length);
  } else {
    const sorted = [...finite].sort((a, b) => a - b);
    baseline = median(sorted);
    spread = MAD_TO_SIGMA * median(sorted.map((v) => Math.abs(v - baseline)).sort((a, b) => a - b));
  }
  const deviation = value - baseline;
  const score = spread > 0 ? deviation / spread : deviation === 0 ? 0 : Math.sign(deviation) * Infinity;
  return { baseline, lower: baseline - sensitivity * spread, upper: baseline + sensitivity * spread, score };
}

/** Whether a value lies outside its band. */
export function outside(band: Band, value: number): boolean {
  return value < band.lower || value > band.upper;
}

/**
 * The history window of an evaluation at `timeMs`: the `windowMs` before it, or with seasonality the same span
 * centred on the same time one season earlier. Steps are the group's interval, aligned to it.
 */
export function historyWindow(
  timeMs: number,
  windowMs: number,
  seasonalityMs: number,
  stepMs: number,
): { startMs: number; endMs: number } {
  if (seasonalityMs === 0) return { startMs: timeMs - windowMs, endMs: timeMs - stepMs };
  const centre = timeMs - seasonalityMs;
  return { startMs: centre - Math.floor(windowMs / 2), endMs: centre + Math.floor(windowMs / 2) };
}
