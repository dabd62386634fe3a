import { createHash, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { TENANT_ID } from "./config.js";
import type { AuthConfig } from "./config-sections.js";

// Who is asking, and for which tenant. Without auth (the default, as Loki's auth_enabled: false) the tenant is
// X-Scope-OrgID or the default tenant. With auth, a bearer token (or basic auth: tenant as user, token as
// password, as Grafana's data sources send it) names one tenant; X-Scope-OrgID, when sent, must be that tenant,
// so a token can never read or write another tenant's data.

/** Paths that answer without a token: probes and scrapes come from the platform, not from a tenant. */
const OPEN_PATHS = new Set(["/ready", "/metrics"]);

const TENANT_KEY = "bifrost.tenant";

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

export class Authenticator {
  /** sha256(token) -> tenant; comparing digests keeps the check constant-time in the token's content. */
  private readonly tokens: { digest: Buffer; tenant: string }[] = [];

  constructor(
    private readonly config: AuthConfig,
    private readonly defaultTenant: string,
  ) {
    for (const [tenant, { tokens }] of Object.entries(config.tenants)) {
      for (const token of tokens) this.tokens.push({ digest: digest(token), tenant });
    }
  }

  private tenantOfToken(token: string): string | undefined {
    const presented = digest(token);
    let found: string | undefined;
    // Every entry is compared so the time taken does not tell which token came close.
    for (const entry of this.tokens) if (timingSafeEqual(entry.digest, presented)) found = entry.tenant;
    return found;
  }

  /** The tenant a request acts for, or the HTTP status and reason to refuse it with. */
  resolve(
    authorization: string | undefined,
    orgId: string | undefined,
  ): { tenant: string } | { status: 400 | 401 | 403; reason: string } {
    if (orgId !== undefined && !TENANT_ID.test(orgId)) {
      return { status: 400, reason: "X-Scope-OrgID must be 1 to 150 of the characters [A-Za-z0-9!_.*'()-]" };
    }
    if (!this.config.enabled) return { tenant: orgId ?? this.defaultTenant };
    if (authorization === undefined)
      return { status: 401, reason: "authentication required: send Authorization: Bearer <token>" };
    const [scheme = "", credentials = ""] = authorization.split(/\s+/, 2);
    let tenant: string | undefined;
    if (scheme.toLowerCase() === "bearer") {
      tenant = this.tenantOfToken(credentials);
    } else if (scheme.toLowerCase() === "basic") {
      const decoded = Buffer.from(credentials, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      const user = decoded.slice(0, colon);
      const owner = colon < 0 ? undefined : this.tenantOfToken(decoded.slice(colon + 1));
      tenant = owner !== undefined && owner === user ? owner : undefined;
    }
    if (tenant === undefined) return { status: 401, reason: "invalid credentials" };
    if (orgId !== undefined && orgId !== tenant)
      return { status: 403, reason: `the token is not valid for tenant ${orgId}` };
    return { tenant };
  }

  /** Hono middleware: refuses unauthenticated requests and records the tenant for tenantOf(). */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      if (OPEN_PATHS.has(c.req.path)) return next();
      const result = this.resolve(c.req.header("Authorization"), c.req.header("X-Scope-OrgID"));
      if ("status" in result) {
        const headers: Record<string, string> =
          result.status === 401 ? { "WWW-Authenticate": 'Bearer realm="bifrost"' } : {};
        return c.text(`${result.reason}\n`, result.status, headers);
      }
      c.set(TENANT_KEY as never, result.tenant as never);
      return next();
    };
  }
}

/** The tenant the Authenticator resolved for this request. */
export function tenantOf(c: Context): string {
  const tenant = c.get(TENANT_KEY as never) as string | undefined;
  if (tenant === undefined) throw new Error("tenantOf() needs the Authenticator's middleware in front of the route");
  return tenant;
}
