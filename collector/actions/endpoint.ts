import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "../../common/log.js";
import { type ActionEnvelope, actionSigningText, type KeyRing, timestampMs } from "../../common/signing.js";
import type { RateLimiter } from "../../common/rate-limit.js";
import { type CompiledAction, ParamError } from "./allowlist.js";
import type { CollectorAudit } from "./audit.js";
import type { ActionMetrics } from "./metrics.js";
import type { NonceCache } from "./nonces.js";
import { runCommand } from "./run.js";

// POST /bifrost/v1/actions: a signed envelope (common/signing.ts) asking this collector to run one
// allow-listed action. Checks, in order, each refusal audited and answered with its reason:
//   400 malformed          not an envelope (JSON object with exactly the envelope's fields), 413 over 64 KiB
//   401 unknown_key, bad_signature, stale_timestamp, future_timestamp
//   403 wrong_node         signed for another collector
//   409 replay             nonce already used; id_conflict: the id of an earlier action with other content
//   503 nonce_cache_full   too many unexpired nonces to remember one more
//   403 unknown_action     not in collector.actions.allowed
//   422 bad_params         missing, undeclared, or not matching the anchored pattern
//   429 cooldown, rate_limited (with Retry-After)
// The rate limit applies only to authenticated requests, so that nobody without a key can use up the budget.
// An accepted action is audited before it runs (503 audit_unavailable if that fails) and answered 200 with its
// outcome once it finished; a retry with the same id (fresh nonce and timestamp) gets that same outcome
// instead of running the action again.

const MAX_BODY_BYTES = 64 << 10;
const ENVELOPE_FIELDS = ["id", "action", "params", "node", "issued_at", "nonce", "key_id", "signature"];
const ID = /^[A-Za-z0-9._:-]{1,128}$/;
const NONCE = /^[A-Za-z0-9_-]{16,128}$/;
const MAX_PARAMS = 32;
/** How long a finished action's outcome is kept for retries of its id. */
const OUTCOME_TTL_MS = 10 * 60_000;
const MAX_REMEMBERED_RUNS = 10_000;
const MAX_AUDITED_CHARS = 256;

export interface ActionEndpointOptions {
  node: string;
  keys: KeyRing;
  maxSkewMs: number;
  nonces: Pick<NonceCache, "remember">;
  allowed: Map<string, CompiledAction>;
  rate: Pick<RateLimiter, "take">;
  maxOutputBytes: number;
  audit: Pick<CollectorAudit, "write">;
  metrics?: ActionMetrics;
  log: Logger;
}

export interface ActionReply {
  status: number;
  body: Record<string, unknown>;
  retryAfterS?: number;
}

class Refusal {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly detail: string,
    readonly retryAfterS?: number,
  ) {}
}

interface Run {
  fingerprint: string;
  reply: Promise<ActionReply>;
  expires: number;
}

export class ActionEndpoint {
  private readonly cooldownUntil = new Map<string, number>();
  private readonly runs = new Map<string, Run>();

  constructor(private readonly options: ActionEndpointOptions) {}

  route(app: Hono): void {
    app.post(
      "/bifrost/v1/actions",
      bodyLimit({
        maxSize: MAX_BODY_BYTES,
        onError: async (c) =>
          send(c, await this.refuse(undefined, new Refusal(413, "malformed", `body over ${MAX_BODY_BYTES} bytes`))),
      }),
      async (c) => send(c, await this.handle(await c.req.text())),
    );
  }

  async handle(text: string): Promise<ActionReply> {
    this.options.metrics?.received.inc();
    const envelope = parseEnvelope(text);
    if (typeof envelope === "string") return this.refuse(undefined, new Refusal(400, "malformed", envelope));
    const verdict = this.admit(envelope, Date.now());
    if (verdict instanceof Refusal) return this.refuse(envelope, verdict);
    if ("duplicate" in verdict) {
      await this.audit("duplicate", envelope, {}).catch((err: unknown) =>
        this.options.log.error({ err, id: envelope.id }, "cannot audit a repeated action"),
      );
      return { ...(await verdict.duplicate.reply) };
    }
    return verdict.reply;
  }

  /** Every check, synchronously, so that two concurrent requests cannot both pass the nonce, id or cooldown. */
  private admit(envelope: ActionEnvelope, now: number): Refusal | { duplicate: Run } | Run {
    const { options } = this;
    const signature = options.keys.check(envelope.key_id, actionSigningText(envelope), envelope.signature);
    if (signature !== null)
      return new Refusal(
        401,
        signature,
        signature === "unknown_key" ? `no key ${envelope.key_id}` : "the signature does not verify",
      );
    const issued = timestampMs(envelope.issued_at)!;
    if (now - issued > options.maxSkewMs)
      return new Refusal(401, "stale_timestamp", `issued ${now - issued} ms ago, more than ${options.maxSkewMs}`);
    if (issued - now > options.maxSkewMs)
      return new Refusal(401, "future_timestamp", `issued ${issued - now} ms ahead, more than ${options.maxSkewMs}`);
    if (envelope.node !== options.node)
      return new Refusal(403, "wrong_node", `signed for node ${envelope.node}, this is ${options.node}`);
    const nonce = options.nonces.remember(envelope.nonce, issued + options.maxSkewMs, now);
    if (nonce === "replay") return new Refusal(409, "replay", "nonce already used");
    if (nonce === "full") return new Refusal(503, "nonce_cache_full", "too many recent actions", 1);
    const fingerprint = JSON.stringify([
      envelope.action,
      Object.entries(envelope.params).sort(([a], [b]) => (a < b ? -1 : 1)),
    ]);
    const earlier = this.runs.get(envelope.id);
    if (earlier !== undefined && earlier.expires > now) {
      return earlier.fingerprint === fingerprint
        ? { duplicate: earlier }
        : new Refusal(409, "id_conflict", "an earlier action had this id");
    }
    const action = options.allowed.get(envelope.action);
    if (action === undefined) return new Refusal(403, "unknown_action", "the action is not allow-listed");
    let argv: string[];
    try {
      argv = action.argv(envelope.params);
    } catch (err) {
      if (err instanceof ParamError) return new Refusal(422, "bad_params", err.message);
      throw err;
    }
    const until = this.cooldownUntil.get(action.name) ?? 0;
    if (until > now)
      return new Refusal(
        429,
        "cooldown",
        `${action.name} ran less than ${action.spec.cooldown_ms} ms ago`,
        Math.ceil((until - now) / 1000),
      );
    const wait = options.rate.take("actions", 1);
    if (wait > 0) return new Refusal(429, "rate_limited", "too many actions", wait);
    this.cooldownUntil.set(action.name, now + action.spec.cooldown_ms);
    this.forgetExpiredRuns(now);
    // Started after this run is registered under its id, which execute() may withdraw.
    const run: Run = {
      fingerprint,
      reply: Promise.resolve().then(() => this.execute(envelope, action, argv)),
      expires: Number.POSITIVE_INFINITY,
    };
    run.reply.finally(() => (run.expires = Date.now() + OUTCOME_TTL_MS)).catch(() => {});
    this.runs.set(envelope.id, run);
    return run;
  }

  private forgetExpiredRuns(now: number): void {
    if (this.runs.size < MAX_REMEMBERED_RUNS) return;
    for (const [id, run] of this.runs) if (run.expires <= now) this.runs.delete(id);
  }

  private async execute(envelope: ActionEnvelope, action: CompiledAction, argv: string[]): Promise<ActionReply> {
    const { options } = this;
    try {
      await this.audit("accepted", envelope, { argv });
    } catch (err) {
      options.log.error({ err, id: envelope.id }, "cannot audit an action: not running it");
      options.metrics?.refused.inc({ reason: "audit_unavailable" });
      // Nothing ran: a retry of this id may run it once the audit trail is writable again.
      this.runs.delete(envelope.id);
      this.cooldownUntil.delete(action.name);
      return {
        status: 503,
        body: {
          id: envelope.id,
          status: "refused",
          reason: "audit_unavailable",
          error: "the audit trail cannot be written",
        },
        retryAfterS: 5,
      };
    }
    options.log.info({ id: envelope.id, action: action.name, argv }, "running action");
    const result = await runCommand(argv, {
      timeoutMs: action.spec.timeout_ms,
      maxOutputBytes: options.maxOutputBytes,
    });
    options.metrics?.executed.inc({ action: action.name, status: result.status });
    options.metrics?.duration.observe({ action: action.name }, result.duration_ms / 1000);
    const outcome = { id: envelope.id, action: action.name, node: options.node, ...result };
    try {
      await this.audit(result.status, envelope, { ...result });
    } catch (err) {
      options.log.error({ err, id: envelope.id, outcome }, "cannot audit an action's outcome");
    }
    return { status: 200, body: outcome };
  }

  private async refuse(envelope: ActionEnvelope | undefined, refusal: Refusal): Promise<ActionReply> {
    this.options.metrics?.refused.inc({ reason: refusal.reason });
    this.options.log.warn(
      { id: envelope?.id, action: envelope?.action, reason: refusal.reason, detail: refusal.detail },
      "refused an action",
    );
    try {
      await this.audit("refused", envelope, { reason: refusal.reason, detail: refusal.detail });
    } catch (err) {
      this.options.log.error({ err, reason: refusal.reason }, "cannot audit a refused action");
    }
    const body = { id: envelope?.id, status: "refused", reason: refusal.reason, error: refusal.detail };
    return refusal.retryAfterS === undefined
      ? { status: refusal.status, body }
      : { status: refusal.status, body, retryAfterS: refusal.retryAfterS };
  }

  private audit(outcome: string, envelope: ActionEnvelope | undefined, fields: Record<string, unknown>): Promise<void> {
    const name = envelope !== undefined && this.options.allowed.has(envelope.action) ? envelope.action : "unknown";
    const request =
      envelope === undefined
        ? {}
        : {
            id: envelope.id,
            action: envelope.action,
            params: clipped(envelope.params),
            node: envelope.node,
            issued_at: envelope.issued_at,
            key_id: envelope.key_id,
            nonce: envelope.nonce,
          };
    return this.options.audit.write({ outcome, action: name, fields: { ...request, ...fields } });
  }
}

/** Params as audited: refused requests may come from anyone, so their size in the audit trail is bounded. */
function clipped(params: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(params).map(([name, value]) => [
      name.slice(0, MAX_AUDITED_CHARS),
      value.slice(0, MAX_AUDITED_CHARS),
    ]),
  );
}

function send(c: Context, reply: ActionReply): Response {
  const headers: Record<string, string> =
    reply.retryAfterS === undefined ? {} : { "Retry-After": String(reply.retryAfterS) };
  return c.json(reply.body, reply.status as ContentfulStatusCode, headers);
}

/** The envelope in `text`, or why it is not one. Unknown fields are refused: they would not be signed. */
export function parseEnvelope(text: string): ActionEnvelope | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "the body is not JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "the body must be a JSON object";
  const body = value as Record<string, unknown>;
  const extra = Object.keys(body).filter((key) => !ENVELOPE_FIELDS.includes(key));
  if (extra.length > 0) return `unknown fields: ${extra.slice(0, 5).join(", ").slice(0, 200)}`;
  const { id, action, params, node, issued_at, nonce, key_id, signature } = body;
  if (typeof id !== "string" || !ID.test(id)) return "id must be 1 to 128 of [A-Za-z0-9._:-]";
  if (typeof action !== "string" || action.length === 0 || action.length > 128)
    return "action must be a string of 1 to 128 characters";
  if (typeof node !== "string" || node.length === 0 || node.length > 256)
    return "node must be a string of 1 to 256 characters";
  if (timestampMs(issued_at) === undefined) return "issued_at must be RFC 3339 text or Unix milliseconds";
  if (typeof nonce !== "string" || !NONCE.test(nonce)) return "nonce must be 16 to 128 of [A-Za-z0-9_-]";
  if (typeof key_id !== "string" || key_id.length === 0 || key_id.length > 64)
    return "key_id must be a string of 1 to 64 characters";
  if (typeof signature !== "string" || signature.length === 0 || signature.length > 512)
    return "signature must be a base64 string";
  if (typeof params !== "object" || params === null || Array.isArray(params))
    return "params must be an object of strings";
  const entries = Object.entries(params);
  if (entries.length > MAX_PARAMS) return `at most ${MAX_PARAMS} params`;
  const copy: Record<string, string> = Object.create(null);
  for (const [name, param] of entries) {
    if (typeof param !== "string") return "params must be an object of strings";
    copy[name] = param;
  }
  return { id, action, params: copy, node, issued_at: issued_at as string | number, nonce, key_id, signature };
}
