import { randomBytes, randomUUID } from "node:crypto";
import { type ClientTls, postJson } from "../../common/http-client.js";
import { type ActionEnvelope, actionSigningText, type SigningKey } from "../../common/signing.js";
import { backoffDelay } from "../../common/backoff.js";

export interface ActionRequest {
  node: string;
  action: string;
  params: Record<string, string>;
}

/**
 * What became of an action: the collector's outcome (`succeeded`, `failed`, `timed_out`), its refusal
 * (`refused`, with the collector's reason), or `undeliverable` (no known collector, or no answer after the
 * retries).
 */
export interface ActionOutcome extends ActionRequest {
  id: string;
  status: "succeeded" | "failed" | "timed_out" | "refused" | "undeliverable";
  reason?: string;
  error?: string;
  http_status?: number;
  exit_code?: number | null;
  signal?: string | null;
  duration_ms?: number;
  stdout?: string;
  stderr?: string;
  collector?: string;
  attempts: number;
}

export interface SenderOptions {
  key: SigningKey;
  directory: { urlOf(node: string): string | undefined };
  /** Per attempt; longer than the slowest action's timeout, as the collector answers when the action ends. */
  requestTimeoutMs: number;
  maxAttempts: number;
  /** Bearer token for collectors with auth enabled; empty sends none. */
  authToken: string;
  /** First pause between attempts, doubling after each. */
  retryDelayMs?: number;
  /** CA and client certificate for collectors behind (mutual) TLS. */
  tls?: ClientTls;
}

/** Statuses worth another attempt: the collector or a proxy before it was briefly unable to answer. */
const RETRIED = new Set([502, 503, 504]);

/**
 * Signs actions and sends them to the collector of their node. Every attempt is signed afresh (new nonce and
 * timestamp) under the same id, so a retry after a lost answer gets the outcome of the first run from the
 * collector instead of running the action twice.
 */
export class ActionSender {
  constructor(private readonly options: SenderOptions) {}

  envelope(request: ActionRequest, id: string, issuedAt: number = Date.now()): ActionEnvelope {
    const unsigned = {
      id,
      action: request.action,
      params: request.params,
      node: request.node,
      issued_at: issuedAt,
      nonce: randomBytes(18).toString("base64url"),
      key_id: this.options.key.id,
    };
    return { ...unsigned, signature: this.options.key.sign(actionSigningText(unsigned)) };
  }

  async send(request: ActionRequest, id: string = randomUUID()): Promise<ActionOutcome> {
    const base = { id, node: request.node, action: request.action, params: request.params };
    const collector = this.options.directory.urlOf(request.node);
    if (collector === undefined)
      return { ...base, status: "undeliverable", error: `no collector known for node ${request.node}`, attempts: 0 };
    // Relative to the collector URL, so that one behind a proxy under a path prefix is reached there.
    const url = new URL("bifrost/v1/actions", collector.endsWith("/") ? collector : `${collector}/`).toString();
    const headers: Record<string, string> = {};
    if (this.options.authToken !== "") headers["Authorization"] = `Bearer ${this.options.authToken}`;
    let error = "";
    for (let attempt = 1; ; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        const response = await postJson(url, JSON.stringify(this.envelope(request, id)), {
          headers,
          timeoutMs: this.options.requestTimeoutMs,
          ...(this.options.tls ? { tls: this.options.tls } : {}),
        });
        if (!RETRIED.has(response.status))
          return { ...base, ...outcomeOf(response.status, response.text), collector, attempts: attempt };
        error = `HTTP ${response.status}: ${response.text.slice(0, 200)}`;
        const retryAfter = Number(response.retryAfter);
        if (Number.isFinite(retryAfter) && retryAfter > 0) retryAfterMs = retryAfter * 1000;
      } catch (err) {
        error = (err as Error).message;
      }
      if (attempt >= this.options.maxAttempts)
        return { ...base, status: "undeliverable", error, collector, attempts: attempt };
      const backoff = backoffDelay(attempt, this.options.retryDelayMs ?? 500, 30_000);
      await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, Math.max(backoff, retryAfterMs ?? 0))));
    }
  }
}

function outcomeOf(httpStatus: number, text: string): Omit<ActionOutcome, keyof ActionRequest | "id" | "attempts"> {
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { status: "refused", reason: "unexpected_answer", error: text.slice(0, 500), http_status: httpStatus };
  }
  const status = body["status"];
  if (httpStatus === 200 && (status === "succeeded" || status === "failed" || status === "timed_out")) {
    return {
      status,
      http_status: httpStatus,
      exit_code: body["exit_code"] as number | null,
      signal: body["signal"] as string | null,
      duration_ms: body["duration_ms"] as number,
      stdout: body["stdout"] as string,
      stderr: body["stderr"] as string,
    };
  }
  return {
    status: "refused",
    reason: typeof body["reason"] === "string" ? body["reason"] : "unexpected_answer",
    error: String(body["error"] ?? text).slice(0, 500),
    http_status: httpStatus,
  };
}
