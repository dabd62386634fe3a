// Compares two Prometheus API answers number by number: same status, result type, label sets and timestamps,
// values equal within a relative 1e-9 (NaN equal to NaN).

export type PromJson = { status: string; errorType?: string; data?: { resultType: string; result: unknown } };
type Pair = [number, string];
type Element = { metric: Record<string, string>; value?: Pair; values?: Pair[] };

function labelText(metric: Record<string, string>): string {
  return JSON.stringify(Object.entries(metric).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function closeEnough(a: string, b: string): boolean {
  if (a === b) return true;
  const x = Number(a);
  const y = Number(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return false;
  return Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y));
}

function comparePairs(where: string, got: Pair[], want: Pair[]): string | undefined {
  if (got.length !== want.length)
    return `${where}: ${got.length} points, expected ${want.length}: ${JSON.stringify(got.slice(0, 5))} vs ${JSON.stringify(want.slice(0, 5))}`;
  for (let i = 0; i < got.length; i++) {
    const [gt, gv] = got[i]!;
    const [wt, wv] = want[i]!;
    if (Math.abs(gt - wt) > 1e-6) return `${where}: point ${i} at ${gt}, expected ${wt}`;
    if (!closeEnough(gv, wv)) return `${where}: at ${gt} value ${gv}, expected ${wv}`;
  }
  return undefined;
}

/** Why `got` differs from `want`, or undefined when they agree. */
export function compareAnswers(got: PromJson, want: PromJson): string | undefined {
  if (got.status !== want.status)
    return `status ${got.status}, expected ${want.status} (${JSON.stringify(got).slice(0, 300)} vs ${JSON.stringify(want).slice(0, 300)})`;
  if (want.status !== "success")
    return got.errorType === want.errorType ? undefined : `errorType ${got.errorType}, expected ${want.errorType}`;
  const g = got.data!;
  const w = want.data!;
  if (g.resultType !== w.resultType) return `resultType ${g.resultType}, expected ${w.resultType}`;
  if (g.resultType === "scalar" || g.resultType === "string")
    return comparePairs("scalar", [g.result as Pair], [w.result as Pair]);
  const sort = (elements: Element[]) =>
    [...elements].sort((a, b) => (labelText(a.metric) < labelText(b.metric) ? -1 : 1));
  const ge = sort(g.result as Element[]);
  const we = sort(w.result as Element[]);
  const gLabels = ge.map((e) => labelText(e.metric));
  const wLabels = we.map((e) => labelText(e.metric));
  if (JSON.stringify(gLabels) !== JSON.stringify(wLabels))
    return `series ${gLabels.join(" ")}, expected ${wLabels.join(" ")}`;
  for (let i = 0; i < ge.length; i++) {
    const why = comparePairs(gLabels[i]!, ge[i]!.values ?? [ge[i]!.value!], we[i]!.values ?? [we[i]!.value!]);
    if (why !== undefined) return why;
  }
  return undefined;
}
