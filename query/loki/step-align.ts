// Loki's query frontend splits metric range queries by interval and, doing so, aligns them to the step: start
// rounded down and end rounded up to multiples of the step (pkg/querier/queryrange/split_by_interval.go), so a
// panel's points fall on multiples of the step whatever range the client asked for. Prometheus does not align,
// so only the Loki API uses this.

/** The range [startNs, endNs] widened to multiples of stepNs. */
export function alignToStep(startNs: bigint, endNs: bigint, stepNs: bigint): { startNs: bigint; endNs: bigint } {
  if (stepNs <= 0n) return { startNs, endNs };
  return { startNs: floorToStep(startNs, stepNs), endNs: ceilToStep(endNs, stepNs) };
}

/** The multiple of stepNs at or before ns (also for times before 1970). */
export function floorToStep(ns: bigint, stepNs: bigint): bigint {
  const rest = ns % stepNs;
  return rest < 0n ? ns - rest - stepNs : ns - rest;
}

/** The multiple of stepNs at or after ns. */
export function ceilToStep(ns: bigint, stepNs: bigint): bigint {
  return -floorToStep(-ns, stepNs);
}
