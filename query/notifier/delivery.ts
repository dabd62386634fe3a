import { appendFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { retryAfterMs as parseRetryAfter } from "../../common/http-client.js";
import { VERSION } from "../../common/version.js";
import type { Logger } from "../../common/log.js";
import type { NotifierMetrics } from "./metrics.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, sign } from "./signature.js";
import { backoffDelay } from "../../common/backoff.js";

/** Where one notification goes and how it is sent. */
export interface Target {
  /** Metric label and dead-letter file name (`<name>.jsonl`). */
  name: string;
  url: string;
  timeoutMs: number;
  headers: Record<string, string>;
  hmacSecret?: string | undefined;
}

export interface RetryPolicy {
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
}

/** One record of a dead-letter log, one JSON object a line. */
export interface DeadLetter {
  time: string;
  receiver: string;
  url: string;
  /** The webhook group key; for an Alertmanager target, the fingerprints of the alerts posted, comma-separated. */
  groupKey: string;
  attempts: number;
  error: string;
  payload: unknown;
}

interface AttemptOutcome {
  ok: boolean;
  retryable: boolean;
  error: string;
  reason: string;
  retryAfterMs?: number;
}

/**
 * Posts JSON with bounded retries: network errors, timeouts, 429 and 5xx are retried after an exponential backoff
 * with jitter (or the receiver's Retry-After, capped by max_backoff_ms); any other status is final. A notification
 * whose attempts run out is appended to the target's dead-letter log. Aborting `signal` (shutdown) lets the request
 * under way finish but starts no other: a notification not yet accepted then returns false without a dead letter,
 * and the caller keeps it to send after the restart.
 */
export class Delivery {
  constructor(
    private readonly policy: RetryPolicy,
    private readonly deadLetterDir: string,
    private readonly metrics: NotifierMetrics,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
  ) {}

  async deliver(target: Target, payload: unknown, groupKey: string): Promise<boolean> {
    const body = JSON.stringify(payload);
    let last: AttemptOutcome | undefined;
    let attempts = 0;
    while (attempts < this.policy.maxAttempts) {
      if (this.signal.aborted) return false;
      attempts++;
      last = await this.attempt(target, body);
      if (last.ok) {
        this.metrics.sent.inc({ receiver: target.name });
        return true;
      }
      if (this.signal.aborted) return false;
      this.metrics.failedAttempts.inc({ receiver: target.name, reason: last.reason });
      this.log.warn(
        { receiver: target.name, groupKey, attempt: attempts, error: last.error },
        "notification attempt failed",
      );
      if (!last.retryable || attempts === this.policy.maxAttempts) break;
      if (!(await this.sleep(this.backoff(attempts, last.retryAfterMs)))) return false;
    }
    await this.deadLetter(target, { groupKey, attempts, error: last?.error ?? "no attempt", payload });
    return false;
  }

  private async attempt(target: Target, body: string): Promise<AttemptOutcome> {
    const timestamp = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      ...target.headers,
      "Content-Type": "application/json",
      "User-Agent": `Bifrost/${VERSION}`,
      [TIMESTAMP_HEADER]: String(timestamp),
    };
    if (target.hmacSecret !== undefined) headers[SIGNATURE_HEADER] = sign(target.hmacSecret, timestamp, body);
    const timeout = AbortSignal.timeout(target.timeoutMs);
    const started = performance.now();
    try {
      // Shutdown does not cut a request short: one the receiver may already have acted upon is better finished
      // and logged than sent again after the restart.
      const response = await fetch(target.url, { method: "POST", headers, body, signal: timeout });
      // Read the body so the connection can be reused; its text explains a refusal.
      const text = (await response.text()).slice(0, 512);
      if (response.ok) return { ok: true, retryable: false, error: "", reason: "" };
      const retryable = response.status === 429 || response.status >= 500;
      const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
      return {
        ok: false,
        retryable,
        error: `HTTP ${response.status}${text ? `: ${text}` : ""}`,
        reason: `status_${response.status}`,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      };
    } catch (err) {
      const timedOut = timeout.aborted;
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      return {
        ok: false,
        retryable: true,
        error: timedOut
          ? `timed out after ${target.timeoutMs} ms`
          : `${(err as Error).message}${cause ? `: ${cause}` : ""}`,
        reason: timedOut ? "timeout" : "network",
      };
    } finally {
      this.metrics.latency.observe({ receiver: target.name }, (performance.now() - started) / 1000);
    }
  }

  private backoff(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, this.policy.maxBackoffMs);
    return backoffDelay(attempt, this.policy.backoffMs, this.policy.maxBackoffMs);
  }

  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.signal.aborted) return resolve(false);
      const done = (): void => {
        clearTimeout(timer);
        this.signal.removeEventListener("abort", done);
        resolve(!this.signal.aborted);
      };
      const timer = setTimeout(done, ms);
      this.signal.addEventListener("abort", done, { once: true });
    });
  }

  private async deadLetter(target: Target, record: Omit<DeadLetter, "time" | "receiver" | "url">): Promise<void> {
    const letter: DeadLetter = { time: new Date().toISOString(), receiver: target.name, url: target.url, ...record };
    this.metrics.deadLettered.inc({ receiver: target.name });
    this.log.error(
      { receiver: target.name, groupKey: record.groupKey, attempts: record.attempts, error: record.error },
      "notification dead-lettered",
    );
    try {
      await mkdir(this.deadLetterDir, { recursive: true });
      await appendFile(deadLetterPath(this.deadLetterDir, target.name), `${JSON.stringify(letter)}\n`);
    } catch (err) {
      this.log.error({ err, receiver: target.name }, "cannot write the dead-letter log");
    }
  }
}

export function deadLetterPath(dir: string, name: string): string {
  return join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, "_")}.jsonl`);
}
