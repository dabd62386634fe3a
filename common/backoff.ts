/**
 * The wait before retry number `attempt` (1-based): baseMs doubling up to capMs, jittered so that many nodes
 * retrying against the same broker, store or receiver do not retry in step. "equal" waits between half and all
 * of it (a floor keeps a retry storm from forming), "full" anywhere from zero (AWS's full jitter, for clients
 * that should spread out most).
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  jitter: "equal" | "full" = "equal",
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return jitter === "full" ? Math.random() * ceiling : ceiling / 2 + (Math.random() * ceiling) / 2;
}
