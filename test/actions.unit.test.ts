import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Hono } from "hono";
import { Registry } from "prom-client";
import { type AllowedAction, compileAllowList } from "../collector/actions/allowlist.js";
import { CollectorAudit } from "../collector/actions/audit.js";
import { ActionEndpoint, type ActionReply } from "../collector/actions/endpoint.js";
import { startHeartbeat } from "../collector/actions/heartbeat.js";
import { actionMetrics } from "../collector/actions/metrics.js";
import { NonceCache } from "../collector/actions/nonces.js";
import { RateLimiter } from "../common/rate-limit.js";
import { ConfigError } from "../common/config.js";
import { loadConfig } from "../config.js";
import { type ClientTlsFiles, loadClientTls } from "../common/http-client.js";
import { createLogger } from "../common/log.js";
import { HttpService } from "../common/service.js";
import {
  type ActionEnvelope,
  actionSigningText,
  heartbeatSigningText,
  KeyRing,
  type KeySpec,
  signingKey,
} from "../common/signing.js";
import { type ActionBinding, actionsForAlert } from "../query/actions/bindings.js";
import { CollectorDirectory } from "../query/actions/directory.js";
import { Remediator } from "../query/actions/remediator.js";
import type { AlertNotice } from "../query/ruler/notice.js";
import { type ActionRequest, ActionSender } from "../query/actions/sender.js";
import { ed25519Keys, hmacKey, processAlive, RecordingBatcher } from "./helpers/actions.js";
import { until } from "./helpers/aggregation.js";
import { testPki } from "./helpers/certs.js";

const log = createLogger("silent");
const NODE = "edge-1";
const SERVICE = { pattern: "[a-z][a-z0-9-]{0,31}", required: true };

/** Prints its first argument: shows exactly which argv element a parameter became. */
const echo: AllowedAction = {
  name: "restart_service",
  command: [process.execPath, "-e", "process.stdout.write(process.argv[1])", "{{service}}"],
  params: { service: SERVICE },
  timeout_ms: 10_000,
  cooldown_ms: 0,
};

interface HarnessOptions {
  keys?: KeySpec[];
  allowed?: AllowedAction[];
  rate?: number;
  burst?: number;
  nonceFile?: string;
}

const registry = new Registry();
const metrics = actionMetrics(registry);

function harness(options: HarnessOptions = {}) {
  const batcher = new RecordingBatcher();
  const nonceFile = options.nonceFile ?? join(mkdtempSync(join(tmpdir(), "bifrost-nonces-")), "action-nonces");
  const nonces = NonceCache.open(nonceFile, 1000);
  const endpoint = new ActionEndpoint({
    node: NODE,
    keys: new KeyRing(options.keys ?? [ed.verifier, hmacKey("hmac-1")]),
    maxSkewMs: 60_000,
    nonces,
    allowed: compileAllowList(options.allowed ?? [echo]),
    rate: new RateLimiter(options.rate ?? 100, options.burst ?? 100),
    maxOutputBytes: 4096,
    audit: new CollectorAudit(batcher, "ops"),
    metrics,
    log,
  });
  const app = new Hono();
  endpoint.route(app);
  const post = async (envelope: ActionEnvelope | string): Promise<ActionReply & { retryAfter: string | null }> => {
    const response = await app.request("/bifrost/v1/actions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: typeof envelope === "string" ? envelope : JSON.stringify(envelope),
    });
    return {
      status: response.status,
      body: (await response.json()) as Record<string, unknown>,
      retryAfter: response.headers.get("Retry-After"),
    };
  };
  return { batcher, nonces, nonceFile, post };
}

const ed = ed25519Keys("ed-1");

function signer(spec: KeySpec = ed.signer): ActionSender {
  return new ActionSender({
    key: signingKey(spec),
    directory: { urlOf: () => undefined },
    requestTimeoutMs: 10_000,
    maxAttempts: 1,
    authToken: "",
  });
}

function envelope(
  request: Partial<ActionRequest> = {},
  options: { spec?: KeySpec; issuedAt?: number } = {},
): ActionEnvelope {
  return signer(options.spec).envelope(
    { node: NODE, action: "restart_service", params: { service: "nginx" }, ...request },
    randomUUID(),
    options.issuedAt,
  );
}

/** The request's audit record says it was refused for `reason`, and nothing of it ran. */
function assertRefusedAndAudited(h: ReturnType<typeof harness>, id: string | undefined, reason: string): void {
  const records = id === undefined ? h.batcher.records.filter((r) => r.event["id"] === undefined) : h.batcher.of(id);
  assert.ok(
    records.some((r) => r.labels["outcome"] === "refused" && r.event["reason"] === reason),
    `no refusal audited for ${reason}: ${JSON.stringify(records)}`,
  );
  assert.ok(!records.some((r) => r.labels["outcome"] === "accepted"), "a refused action must not run");
}

describe("action endpoint: accepted actions", () => {
  it("runs a signed allow-listed action with the parameter as one argv element, and audits request and outcome", async () => {
    const h = harness();
    const e = envelope();
    const reply = await h.post(e);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body["status"], "succeeded");
    assert.equal(reply.body["exit_code"], 0);
    assert.equal(reply.body["stdout"], "nginx");
    const records = h.batcher.of(e.id);
    assert.deepEqual(
      records.map((r) => r.labels["outcome"]),
      ["accepted", "succeeded"],
    );
    for (const r of records) {
      assert.equal(r.tenant, "ops");
      assert.deepEqual(
        { service: r.labels["service"], source: r.labels["source"], action: r.labels["action"] },
        { service: "bifrost-actions", source: "collector", action: "restart_service" },
      );
    }
    assert.deepEqual(records[0]!.event["params"], { service: "nginx" });
  });

  it("accepts HMAC-SHA256 signatures and RFC 3339 timestamps", async () => {
    const h = harness();
    const unsigned = {
      id: randomUUID(),
      action: "restart_service",
      params: { service: "redis" },
      node: NODE,
      issued_at: new Date().toISOString(),
      nonce: "rfc3339-nonce-0001",
      key_id: "hmac-1",
    };
    const e = { ...unsigned, signature: signingKey(hmacKey("hmac-1")).sign(actionSigningText(unsigned)) };
    const reply = await h.post(e);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body["stdout"], "redis");
  });

  it("keeps shell metacharacters inert even under a permissive pattern: the value is one argument, no shell runs", async () => {
    const marker = join(mkdtempSync(join(tmpdir(), "bifrost-inert-")), "pwned");
    const anything: AllowedAction = {
      ...echo,
      name: "echo_any",
      params: { service: { pattern: "[^\\n]+", required: true } },
    };
    const h = harness({ allowed: [anything] });
    const value = `x; touch ${marker} $(touch ${marker}) \`touch ${marker}\``;
    const reply = await h.post(envelope({ action: "echo_any", params: { service: value } }));
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body["stdout"], value);
    assert.equal(existsSync(marker), false);
  });

  it("answers a retry of the same id with the first outcome instead of running the action again", async () => {
    const counter = join(mkdtempSync(join(tmpdir(), "bifrost-once-")), "runs");
    const count: AllowedAction = {
      name: "clear_cache",
      command: [process.execPath, "-e", "require('fs').appendFileSync(process.argv[1], 'x')", counter],
      params: {},
      timeout_ms: 10_000,
      cooldown_ms: 0,
    };
    const h = harness({ allowed: [count] });
    const sender = signer();
    const request = { node: NODE, action: "clear_cache", params: {} };
    const first = await h.post(sender.envelope(request, "retry-1"));
    const retry = await h.post(sender.envelope(request, "retry-1"));
    assert.equal(first.status, 200);
    assert.deepEqual(retry.body, first.body);
    assert.equal(readFileSync(counter, "utf8"), "x");
    assert.deepEqual(
      h.batcher.of("retry-1").map((r) => r.labels["outcome"]),
      ["accepted", "succeeded", "duplicate"],
    );
    const conflict = await h.post(
      sender.envelope({ ...request, action: "restart_service", params: { service: "nginx" } }, "retry-1"),
    );
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body["reason"], "id_conflict");
  });

  it("does not run an action it cannot audit, and runs it on a retry of its id once it can", async () => {
    const h = harness();
    const sender = signer();
    const request = { node: NODE, action: "restart_service", params: { service: "nginx" } };
    h.batcher.failing = true;
    const first = await h.post(sender.envelope(request, "audit-1"));
    assert.equal(first.status, 503);
    assert.equal(first.body["reason"], "audit_unavailable");
    assert.ok(Number(first.retryAfter) > 0);
    h.batcher.failing = false;
    const retry = await h.post(sender.envelope(request, "audit-1"));
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body["stdout"], "nginx");
    assert.deepEqual(
      h.batcher.of("audit-1").map((r) => r.labels["outcome"]),
      ["accepted", "succeeded"],
    );
  });

  it("kills the whole process group on timeout", async () => {
    const pidFile = join(mkdtempSync(join(tmpdir(), "bifrost-timeout-")), "grandchild.pid");
    // The command starts a grandchild that would outlive it, then hangs; both must die.
    const script = `const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }); require('fs').writeFileSync(process.argv[1], String(c.pid)); setInterval(() => {}, 1000);`;
    const hang: AllowedAction = {
      name: "run_script",
      command: [process.execPath, "-e", script, pidFile],
      params: {},
      timeout_ms: 1000,
      cooldown_ms: 0,
    };
    const h = harness({ allowed: [hang] });
    const e = envelope({ action: "run_script", params: {} });
    const reply = await h.post(e);
    assert.equal(reply.status, 200);
    assert.equal(reply.body["status"], "timed_out");
    assert.equal(reply.body["signal"], "SIGKILL");
    const grandchild = Number(readFileSync(pidFile, "utf8"));
    await until("the grandchild is gone", () => !processAlive(grandchild), 10_000);
    assert.deepEqual(
      h.batcher.of(e.id).map((r) => r.labels["outcome"]),
      ["accepted", "timed_out"],
    );
  });

  it("reports a command that cannot start as failed", async () => {
    const h = harness({
      allowed: [
        {
          name: "run_script",
          command: ["/nonexistent/bifrost-script"],
          params: {},
          timeout_ms: 10_000,
          cooldown_ms: 0,
        },
      ],
    });
    const reply = await h.post(envelope({ action: "run_script", params: {} }));
    assert.equal(reply.status, 200);
    assert.equal(reply.body["status"], "failed");
    assert.equal(reply.body["exit_code"], null);
    assert.match(reply.body["stderr"] as string, /ENOENT/);
  });

  it("reports a failing command with its exit code and truncated output", async () => {
    const fail: AllowedAction = {
      name: "run_script",
      command: [process.execPath, "-e", "process.stderr.write('e'.repeat(10000)); process.exit(3)"],
      params: {},
      timeout_ms: 10_000,
      cooldown_ms: 0,
    };
    const h = harness({ allowed: [fail] });
    const reply = await h.post(envelope({ action: "run_script", params: {} }));
    assert.equal(reply.body["status"], "failed");
    assert.equal(reply.body["exit_code"], 3);
    assert.equal((reply.body["stderr"] as string).length, 4096);
    assert.equal(reply.body["truncated"], true);
  });
});

async function refusedCount(reason: string): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === "bifrost_collector_actions_refused_total");
  return metric?.values.find((v) => v.labels["reason"] === reason)?.value ?? 0;
}

describe("action endpoint: refusals, each audited", () => {
  it("bad signature (another key under a known key id) -> 401", async () => {
    const h = harness();
    const forged = envelope({}, { spec: { ...ed25519Keys("ed-1").signer } });
    const reply = await h.post(forged);
    assert.equal(reply.status, 401);
    assert.equal(reply.body["reason"], "bad_signature");
    assertRefusedAndAudited(h, forged.id, "bad_signature");
  });

  it("unknown key id -> 401", async () => {
    const h = harness();
    const e = envelope({}, { spec: ed25519Keys("ed-9").signer });
    const reply = await h.post(e);
    assert.equal(reply.status, 401);
    assert.equal(reply.body["reason"], "unknown_key");
    assertRefusedAndAudited(h, e.id, "unknown_key");
  });

  it("tampered params -> 401", async () => {
    const h = harness();
    const e = envelope();
    const reply = await h.post({ ...e, params: { service: "sshd" } });
    assert.equal(reply.status, 401);
    assertRefusedAndAudited(h, e.id, "bad_signature");
  });

  it("stale and future timestamps -> 401", async () => {
    const h = harness();
    const stale = envelope({}, { issuedAt: Date.now() - 61_000 });
    const future = envelope({}, { issuedAt: Date.now() + 61_000 });
    assert.equal((await h.post(stale)).status, 401);
    assert.equal((await h.post(future)).status, 401);
    assertRefusedAndAudited(h, stale.id, "stale_timestamp");
    assertRefusedAndAudited(h, future.id, "future_timestamp");
  });

  it("reused nonce -> 409, also after a restart (the nonce file is reloaded)", async () => {
    const h = harness();
    const e = envelope();
    assert.equal((await h.post(e)).status, 200);
    const again = await h.post(e);
    assert.equal(again.status, 409);
    assert.equal(again.body["reason"], "replay");
    const other = envelope();
    assert.equal((await h.post(other)).status, 200);
    h.nonces.close();
    const restarted = harness({ nonceFile: h.nonceFile });
    const replayed = await restarted.post(other);
    assert.equal(replayed.status, 409);
    assertRefusedAndAudited(restarted, other.id, "replay");
    assert.equal((await restarted.post(envelope())).status, 200);
  });

  it("unknown action -> 403, audited under action=unknown", async () => {
    const h = harness();
    const e = envelope({ action: "format_disk" });
    const reply = await h.post(e);
    assert.equal(reply.status, 403);
    assert.equal(reply.body["reason"], "unknown_action");
    assertRefusedAndAudited(h, e.id, "unknown_action");
    assert.equal(h.batcher.of(e.id)[0]!.labels["action"], "unknown");
    assert.equal(h.batcher.of(e.id)[0]!.event["action"], "format_disk");
  });

  for (const value of [
    "nginx; rm -rf /",
    "$(reboot)",
    "`reboot`",
    "nginx\nreboot",
    "nginx && reboot",
    "nginx|sh",
    "../../etc/passwd",
    "nginx\u0000x",
    "",
  ]) {
    it(`parameter injection ${JSON.stringify(value)} -> 422`, async () => {
      const h = harness();
      const e = envelope({ params: { service: value } });
      const reply = await h.post(e);
      assert.equal(reply.status, 422, JSON.stringify(reply.body));
      assertRefusedAndAudited(h, e.id, "bad_params");
    });
  }

  it("missing required and undeclared parameters -> 422", async () => {
    const h = harness();
    const missing = envelope({ params: {} });
    const extra = envelope({ params: { service: "nginx", unit: "x" } });
    assert.equal((await h.post(missing)).status, 422);
    assert.equal((await h.post(extra)).status, 422);
    assertRefusedAndAudited(h, missing.id, "bad_params");
    assertRefusedAndAudited(h, extra.id, "bad_params");
  });

  it("signed for another node -> 403", async () => {
    const h = harness();
    const e = envelope({ node: "edge-2" });
    const reply = await h.post(e);
    assert.equal(reply.status, 403);
    assertRefusedAndAudited(h, e.id, "wrong_node");
  });

  it("malformed envelopes -> 400", async () => {
    const h = harness();
    const e = envelope();
    assert.equal((await h.post("not json")).status, 400);
    assert.equal((await h.post({ ...e, extra: "unsigned" } as ActionEnvelope)).status, 400);
    assert.equal((await h.post({ ...e, nonce: "short" })).status, 400);
    assert.equal((await h.post({ ...e, params: { service: 1 } } as unknown as ActionEnvelope)).status, 400);
    assert.equal(h.batcher.records.filter((r) => r.event["reason"] === "malformed").length, 4);
    assert.ok(!h.batcher.records.some((r) => r.labels["outcome"] === "accepted"));
  });

  it("a flood of valid actions -> 429 with Retry-After beyond the burst", async () => {
    const h = harness({ rate: 0.01, burst: 3 });
    const limitedBefore = await refusedCount("rate_limited");
    const envelopes = Array.from({ length: 10 }, () => envelope());
    const replies = await Promise.all(envelopes.map((e) => h.post(e)));
    assert.equal(replies.filter((r) => r.status === 200).length, 3);
    const limited = replies.filter((r) => r.status === 429);
    assert.equal(limited.length, 7);
    for (const r of limited) {
      assert.equal(r.body["reason"], "rate_limited");
      assert.ok(Number(r.retryAfter) >= 1);
    }
    envelopes.forEach((e, i) => {
      if (replies[i]!.status === 429) assertRefusedAndAudited(h, e.id, "rate_limited");
    });
    assert.equal((await refusedCount("rate_limited")) - limitedBefore, 7);
  });

  it("the same action within its cooldown -> 429 with Retry-After", async () => {
    const h = harness({ allowed: [{ ...echo, cooldown_ms: 60_000 }] });
    assert.equal((await h.post(envelope())).status, 200);
    const e = envelope({ params: { service: "redis" } });
    const reply = await h.post(e);
    assert.equal(reply.status, 429);
    assert.equal(reply.body["reason"], "cooldown");
    assert.ok(Number(reply.retryAfter) >= 59);
    assertRefusedAndAudited(h, e.id, "cooldown");
  });
});

describe("key rotation", () => {
  it("accepts the old and the new key while both are configured, and refuses the old once it is removed", async () => {
    const old = ed25519Keys("2025-q4");
    const next = ed25519Keys("2026-q1");
    const during = harness({ keys: [old.verifier, next.verifier] });
    assert.equal((await during.post(envelope({}, { spec: old.signer }))).status, 200);
    assert.equal((await during.post(envelope({}, { spec: next.signer }))).status, 200);
    const after = harness({ keys: [next.verifier] });
    const stale = envelope({}, { spec: old.signer });
    const refused = await after.post(stale);
    assert.equal(refused.status, 401);
    assertRefusedAndAudited(after, stale.id, "unknown_key");
    assert.equal((await after.post(envelope({}, { spec: next.signer }))).status, 200);
  });
});

describe("nonce cache", () => {
  it("forgets expired nonces, and refuses new ones when full of live ones rather than forget any", () => {
    const file = join(mkdtempSync(join(tmpdir(), "bifrost-nonces-")), "n");
    const cache = NonceCache.open(file, 2);
    // Logical times ten seconds in the past, so that on reopening (at the real time) "a" has expired and "b", "c" have not.
    const t0 = Date.now() - 10_000;
    assert.equal(cache.remember("a".repeat(16), t0 + 1000, t0), "ok");
    assert.equal(cache.remember("b".repeat(16), t0 + 70_000, t0), "ok");
    assert.equal(cache.remember("c".repeat(16), t0 + 70_000, t0), "full");
    assert.equal(cache.remember("c".repeat(16), t0 + 70_000, t0 + 2000), "ok");
    assert.equal(cache.remember("b".repeat(16), t0 + 70_000, t0 + 2000), "replay");
    cache.close();
    writeFileSync(file, readFileSync(file, "utf8") + "123 torn");
    const reopened = NonceCache.open(file, 10);
    assert.equal(reopened.remember("c".repeat(16), Date.now() + 60_000), "replay");
    assert.equal(reopened.remember("a".repeat(16), Date.now() + 60_000), "ok");
    reopened.close();
  });
});

describe("query side", () => {
  it("matches alerts to actions by their bindings, taking the node and params from the labels", () => {
    const bindings: ActionBinding[] = [
      {
        matchers: { alertname: "NginxDown", severity: "critical" },
        action: "restart_service",
        params: { mode: "hard" },
        params_from_labels: { service: "job" },
      },
      { matchers: { alertname: "CacheFull" }, action: "clear_cache", params: {}, params_from_labels: {} },
    ];
    assert.deepEqual(
      actionsForAlert(
        { labels: { alertname: "NginxDown", severity: "critical", node: "edge-1", job: "nginx" } },
        bindings,
        "node",
      ),
      [{ node: "edge-1", action: "restart_service", params: { mode: "hard", service: "nginx" } }],
    );
    assert.deepEqual(
      actionsForAlert(
        { labels: { alertname: "NginxDown", severity: "warning", node: "edge-1", job: "nginx" } },
        bindings,
        "node",
      ),
      [],
    );
    assert.deepEqual(
      actionsForAlert({ labels: { alertname: "NginxDown", severity: "critical", node: "edge-1" } }, bindings, "node"),
      [],
    );
    assert.deepEqual(actionsForAlert({ labels: { alertname: "CacheFull" } }, bindings, "node"), []);
  });

  it("learns collector URLs from signed heartbeats, refusing forged and older ones, and falls back to the configuration", () => {
    const key = hmacKey("hb-1");
    const directory = new CollectorDirectory({
      collectors: { "edge-1": "http://static:4318" },
      ttlMs: 30_000,
      keys: new KeyRing([key]),
      maxSkewMs: 60_000,
    });
    const beat = (url: string, ts: number, spec = key) => {
      const unsigned = { node: "edge-1", url, ts, key_id: spec.id };
      return JSON.stringify({ ...unsigned, signature: signingKey(spec).sign(heartbeatSigningText(unsigned)) });
    };
    const now = Date.now();
    assert.equal(directory.urlOf("edge-1", now), "http://static:4318");
    assert.equal(directory.accept(beat("http://10.0.0.7:4318", now), now).status, 204);
    assert.equal(directory.urlOf("edge-1", now), "http://10.0.0.7:4318");
    assert.equal(directory.accept(beat("http://evil:1", now + 1, hmacKey("hb-1", "x".repeat(40))), now).status, 401);
    assert.equal(directory.accept(beat("http://old:1", now - 1000), now).status, 409);
    assert.equal(directory.accept(beat("http://late:1", now - 120_000), now).status, 401);
    assert.equal(directory.urlOf("edge-1", now + 1000), "http://10.0.0.7:4318");
    assert.equal(directory.urlOf("edge-1", now + 31_000), "http://static:4318");
    assert.equal(directory.urlOf("edge-9", now), undefined);
    const other = new CollectorDirectory({
      collectors: {},
      ttlMs: 30_000,
      keys: new KeyRing([key]),
      maxSkewMs: 60_000,
    });
    assert.equal(other.accept(beat("http://10.0.0.8:4318", now), now, { commonName: "edge-2", uris: [] }).status, 403);
    assert.equal(
      other.accept(beat("http://10.0.0.8:4318", now), now, { commonName: "gw", uris: ["spiffe://fleet/node/edge-1"] })
        .status,
      204,
    );
  });

  it("retries an unanswered send under the same id with a fresh nonce, and audits send and outcome; failures raise an alert", async () => {
    const h = harness();
    const seen: ActionEnvelope[] = [];
    let calls = 0;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        seen.push(JSON.parse(body) as ActionEnvelope);
        if (++calls === 1) {
          res.writeHead(503, { "Retry-After": "0" }).end("busy");
          return;
        }
        void h
          .post(body)
          .then((reply) =>
            res.writeHead(reply.status, { "Content-Type": "application/json" }).end(JSON.stringify(reply.body)),
          );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const sender = new ActionSender({
        key: signingKey(ed.signer),
        directory: { urlOf: (node) => (node === NODE ? url : undefined) },
        requestTimeoutMs: 10_000,
        maxAttempts: 3,
        authToken: "",
        retryDelayMs: 10,
      });
      const audited: { outcome: string; id: string }[] = [];
      const failed: AlertNotice[] = [];
      const remediator = new Remediator({
        sender,
        audit: { write: async (outcome, request) => void audited.push({ outcome, id: request.id }) },
        bindings: [
          {
            matchers: { alertname: "NginxDown" },
            action: "restart_service",
            params: {},
            params_from_labels: { service: "job" },
          },
        ],
        nodeLabel: "node",
        onActionFailed: (alert) => failed.push(alert),
        log,
      });
      const [outcome] = await remediator.remediate({ labels: { alertname: "NginxDown", node: NODE, job: "nginx" } });
      assert.equal(outcome!.status, "succeeded", JSON.stringify(outcome));
      assert.equal(outcome!.attempts, 2);
      assert.equal(seen.length, 2);
      assert.equal(seen[0]!.id, seen[1]!.id);
      assert.notEqual(seen[0]!.nonce, seen[1]!.nonce);
      assert.deepEqual(audited, [
        { outcome: "sending", id: outcome!.id },
        { outcome: "succeeded", id: outcome!.id },
      ]);
      assert.equal(failed.length, 0);

      const [refused] = await remediator.remediate({ labels: { alertname: "NginxDown", node: NODE, job: "bad;job" } });
      assert.equal(refused!.status, "refused");
      assert.equal(refused!.reason, "bad_params");
      const [lost] = await remediator.remediate({ labels: { alertname: "NginxDown", node: "edge-404", job: "nginx" } });
      assert.equal(lost!.status, "undeliverable");
      assert.deepEqual(
        failed.map((a) => [
          a.labels["alertname"],
          a.labels["node"],
          a.labels["outcome"],
          a.labels["reason"],
          a.annotations["cause"],
        ]),
        [
          ["BifrostActionFailed", NODE, "refused", "bad_params", "NginxDown"],
          ["BifrostActionFailed", "edge-404", "undeliverable", undefined, "NginxDown"],
        ],
      );
    } finally {
      server.close();
    }
  });
});

describe("actions over mutual TLS", () => {
  it("reach a collector whose listener requires client certificates only with one; heartbeats present the node's certificate", async () => {
    const pki = testPki();
    const server = pki.issue("collector", { commonName: "edge-1", ips: ["127.0.0.1"] });
    const client = pki.issue("query", { commonName: "query" });
    const h = harness();
    const http = new HttpService("collector", new Registry(), log);
    http.app.post("/bifrost/v1/actions", async (c) => {
      const reply = await h.post(await c.req.text());
      return c.json(reply.body, reply.status as 200);
    });
    const directory = new CollectorDirectory({
      collectors: {},
      ttlMs: 60_000,
      keys: new KeyRing([hmacKey("hb")]),
      maxSkewMs: 60_000,
    });
    directory.route(http.app);
    const { port } = await http.listen("127.0.0.1:0", {
      enabled: true,
      cert_file: server.cert,
      key_file: server.key,
      client_ca_file: pki.caCert,
      client_auth: "require",
    });
    try {
      const send = (tls: ClientTlsFiles) =>
        new ActionSender({
          key: signingKey(ed.signer),
          directory: { urlOf: () => `https://127.0.0.1:${port}` },
          requestTimeoutMs: 10_000,
          maxAttempts: 1,
          authToken: "",
          tls: loadClientTls(tls),
        }).send({
          node: NODE,
          action: "restart_service",
          params: { service: "nginx" },
        });
      const outcome = await send({ ca_file: pki.caCert, cert_file: client.cert, key_file: client.key });
      assert.equal(outcome.status, "succeeded", JSON.stringify(outcome));
      assert.equal(outcome.stdout, "nginx");
      const refused = await send({ ca_file: pki.caCert });
      assert.equal(refused.status, "undeliverable");

      const nodeCert = pki.issue("node", { commonName: "gw", uris: [`spiffe://fleet.example/node/${NODE}`] });
      const stop = startHeartbeat({
        url: `https://127.0.0.1:${port}/bifrost/v1/heartbeat`,
        intervalMs: 100,
        node: NODE,
        incarnation: "0123456789abcdef",
        advertiseUrl: "https://edge-1.example:4318",
        key: signingKey(hmacKey("hb")),
        authToken: "",
        tls: loadClientTls({ ca_file: pki.caCert, cert_file: nodeCert.cert, key_file: nodeCert.key }),
        log,
      });
      await until("a heartbeat over mutual TLS", () => directory.urlOf(NODE) === "https://edge-1.example:4318", 10_000);
      stop();
    } finally {
      await http.close();
    }
  });
});

describe("actions configuration", () => {
  it("reads allow-list, keys and bindings, and refuses placeholders that are not whole argv elements", () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-actions-config-"));
    const file = join(dir, "config.yaml");
    writeFileSync(
      file,
      `collector:
  actions:
    enabled: true
    keys: [{ id: k1, algorithm: ed25519, file: /etc/bifrost/query.pub.pem }]
    allowed:
      - name: restart_service
        command: [systemctl, restart, "{{service}}"]
        params: { service: { pattern: "[a-z][a-z0-9@.-]*" } }
query:
  actions:
    enabled: true
    keys: [{ id: k1, algorithm: hmac-sha256, key: "\${SECRET}" }]
    bindings:
      - { matchers: { alertname: NginxDown }, action: restart_service, params_from_labels: { service: job } }
`,
    );
    const config = loadConfig({ file, env: { SECRET: "s".repeat(40) } });
    assert.deepEqual(config.collector.actions.allowed[0]!.params["service"], {
      pattern: "[a-z][a-z0-9@.-]*",
      required: true,
    });
    assert.equal(config.collector.actions.allowed[0]!.cooldown_ms, 60_000);
    assert.equal(config.query.actions.keys[0]!.key, "s".repeat(40));
    writeFileSync(
      file,
      `collector:\n  actions:\n    allowed:\n      - { name: x, command: [sh, "-c", "restart {{service}}"], params: { service: { pattern: ".*" } } }\n`,
    );
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.includes("placeholder")),
    );
    writeFileSync(file, `collector:\n  actions:\n    enabled: true\n`);
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.includes("at least one key")),
    );
  });
});
