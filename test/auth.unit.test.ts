import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Hono } from "hono";
import { stringify } from "yaml";
import { Authenticator, tenantOf } from "../common/auth.js";
import { ConfigError } from "../common/config.js";
import { configSchema, loadConfig } from "../config.js";

const ACME = "acme-token-0123456789";
const GLOBEX = "globex-token-0123456789";

function app(enabled: boolean): Hono {
  const auth = new Authenticator(
    configSchema().parse({
      auth: { enabled, tenants: { acme: { tokens: [ACME, "acme-rotated-0123456789"] }, globex: { tokens: [GLOBEX] } } },
    }).auth,
    "fake",
  );
  const hono = new Hono();
  hono.use(auth.middleware());
  hono.get("/ready", (c) => c.text("ready"));
  hono.get("/loki/api/v1/labels", (c) => c.text(tenantOf(c)));
  return hono;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

async function call(
  hono: Hono,
  headers: Record<string, string>,
  path = "/loki/api/v1/labels",
): Promise<[number, string]> {
  const response = await hono.request(path, { headers });
  return [response.status, (await response.text()).trim()];
}

describe("authentication and tenants", () => {
  it("without auth, takes the tenant from X-Scope-OrgID or the default", async () => {
    const hono = app(false);
    assert.deepEqual(await call(hono, {}), [200, "fake"]);
    assert.deepEqual(await call(hono, { "X-Scope-OrgID": "team-a" }), [200, "team-a"]);
    assert.deepEqual(await call(hono, { "X-Scope-OrgID": "bad tenant/../" }), [
      400,
      "X-Scope-OrgID must be 1 to 150 of the characters [A-Za-z0-9!_.*'()-]",
    ]);
  });

  it("with auth, a token acts for its own tenant only", async () => {
    const hono = app(true);
    assert.deepEqual(await call(hono, { Authorization: `Bearer ${ACME}` }), [200, "acme"]);
    assert.deepEqual(await call(hono, { Authorization: "Bearer acme-rotated-0123456789" }), [200, "acme"]);
    assert.deepEqual(await call(hono, { Authorization: `Bearer ${ACME}`, "X-Scope-OrgID": "acme" }), [200, "acme"]);
    assert.deepEqual(await call(hono, { Authorization: `Bearer ${ACME}`, "X-Scope-OrgID": "globex" }), [
      403,
      "the token is not valid for tenant globex",
    ]);
    assert.deepEqual(await call(hono, { Authorization: basic("globex", GLOBEX) }), [200, "globex"]);
    assert.deepEqual(await call(hono, { Authorization: basic("acme", GLOBEX) }), [401, "invalid credentials"]);
  });

  it("refuses missing and wrong credentials with 401 and a challenge, and leaves probes open", async () => {
    const hono = app(true);
    const missing = await hono.request("/loki/api/v1/labels");
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get("WWW-Authenticate"), 'Bearer realm="bifrost"');
    for (const authorization of [
      `Bearer ${ACME}x`,
      `Bearer ${ACME.slice(0, -1)}`,
      "Bearer ",
      `Token ${ACME}`,
      basic("acme", ""),
      "Basic !!!",
    ]) {
      assert.deepEqual(await call(hono, { Authorization: authorization }), [401, "invalid credentials"], authorization);
    }
    assert.deepEqual(await call(hono, {}, "/ready"), [200, "ready"]);
  });

  it("validates the auth configuration", () => {
    const bad = (auth: unknown) => assert.throws(() => loadConfig({ env: {}, ...withAuth(auth) }), ConfigError);
    bad({ enabled: true });
    bad({ tenants: { acme: { tokens: ["short"] } } });
    bad({ tenants: { "bad/tenant": { tokens: [ACME] } } });
    bad({ tenants: { acme: { tokens: [ACME] }, globex: { tokens: [ACME] } } });
    bad({ tenants: { acme: { tokens: [] } } });
  });
});

function withAuth(auth: unknown): { file: string } {
  const path = `/tmp/bifrost-auth-${process.pid}-${Math.random().toString(36).slice(2)}.yaml`;
  writeFileSync(path, stringify({ auth }));
  return { file: path };
}
