import type { Hono } from "hono";
import { loadClientTls } from "../../common/http-client.js";
import type { Runtime } from "../../runtime.js";
import { KeyRing, signingKey } from "../../common/signing.js";
import type { Store } from "../../storage/store.js";
import { StoreAudit } from "./audit.js";
import { CollectorDirectory } from "./directory.js";
import { NodeIdConflicts } from "./node-conflicts.js";
import type { AlertNotice } from "../ruler/notice.js";
import { Remediator } from "./remediator.js";
import { ActionSender } from "./sender.js";

export interface QueryActions {
  remediator: Remediator;
  directory: CollectorDirectory;
  /** Mounts POST /bifrost/v1/heartbeat. */
  route(app: Hono): void;
}

/** Remediation as query.actions configures it; undefined when it is not enabled. */
export function queryActions(
  runtime: Runtime,
  store: Store,
  onActionFailed?: (alert: AlertNotice) => void,
): QueryActions | undefined {
  const { config } = runtime;
  const a = config.query.actions;
  if (!a.enabled) return undefined;
  const spec = a.keys.find((k) => k.id === a.signing_key_id) ?? a.keys[0]!;
  const directory = new CollectorDirectory({
    collectors: a.collectors,
    ttlMs: a.heartbeat_ttl_ms,
    keys: new KeyRing(a.heartbeat_keys),
    maxSkewMs: a.max_skew_ms,
    conflicts: new NodeIdConflicts({
      ttlMs: a.heartbeat_ttl_ms,
      registry: runtime.registry,
      log: runtime.log.child({ component: "collector-directory" }),
    }),
  });
  const sender = new ActionSender({
    key: signingKey(spec),
    directory,
    requestTimeoutMs: a.request_timeout_ms,
    maxAttempts: a.max_attempts,
    authToken: a.auth_token,
    tls: loadClientTls(a.tls),
  });
  const remediator = new Remediator({
    sender,
    audit: new StoreAudit(store, a.audit_tenant || config.query.default_tenant),
    bindings: a.bindings,
    nodeLabel: a.node_label,
    log: runtime.log.child({ component: "remediation" }),
    ...(onActionFailed ? { onActionFailed } : {}),
  });
  return { remediator, directory, route: (app) => directory.route(app) };
}
