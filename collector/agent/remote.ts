import { parseDocument } from "yaml";
import { ConfigError } from "../../common/config.js";
import { type Config, loadConfig } from "../../config.js";
import {
  parseSignature,
  REMOTE_CONFIG_FILE,
  REMOTE_SIGNATURE_FILE,
  remoteDocumentProblems,
  signatureProblem,
} from "../../common/remote-config.js";
import { KeyRing } from "../../common/signing.js";
import type { AgentConfigMap } from "../../proto/opamp.js";
import { actionProblems, filePathProblems } from "./restrictions.js";
import type { StoredConfig } from "./state.js";

// A remote configuration as it arrives, checked before anything of it runs: a configuration file must come with
// a signature for this node by one of collector.actions.keys, not older than the configuration running now nor
// from the future; its document may set only what remote configurations may set; laid over the node's own file
// it must pass the schema of --check-config and the node's restrictions. An offer without a configuration file
// means the node's own file alone, which needs no signature: going back to local is always safe.

export class RemoteConfigRefused extends Error {
  override readonly name = "RemoteConfigRefused";
}

export interface CheckContext {
  /** The node's own file (undefined: defaults and environment only). */
  localFile: string | undefined;
  /** The configuration from the node's own file and environment alone. */
  local: Config;
  /** The newest issued_at of a configuration this node ran. */
  lastIssuedAt: number;
  nowMs: number;
}

export interface CheckedConfig {
  stored: StoredConfig;
  config: Config;
}

/** The effective configuration from the local file with a stored remote document over it. */
export function effectiveConfig(
  ctx: Pick<CheckContext, "localFile" | "local">,
  stored: StoredConfig | undefined,
): Config {
  if (stored === undefined || stored.body === "") return ctx.local;
  const document: unknown = parseDocument(stored.body).toJS();
  try {
    return loadConfig({ file: ctx.localFile, overlay: document });
  } catch (err) {
    if (err instanceof ConfigError) throw new RemoteConfigRefused(err.problems.join("; "));
    throw err;
  }
}

/** Checks an offer whose config hash (hex, as the server sent it) is `hash`. */
export function checkRemoteConfig(map: AgentConfigMap, hash: string, ctx: CheckContext): CheckedConfig {
  const file = map[REMOTE_CONFIG_FILE];
  if (file === undefined) {
    if (Object.keys(map).length > 0)
      throw new RemoteConfigRefused(`expected the file ${REMOTE_CONFIG_FILE}, got ${Object.keys(map).join(", ")}`);
    return { stored: { hash, body: "", signature: "", issued_at: ctx.lastIssuedAt }, config: ctx.local };
  }
  const body = file.body;
  const signatureFile = map[REMOTE_SIGNATURE_FILE];
  if (signatureFile === undefined) throw new RemoteConfigRefused("the configuration is not signed; refused");
  const signatureText = Buffer.from(signatureFile.body).toString("utf8");
  const signature = parseSignature(signatureText);
  if (signature === undefined) throw new RemoteConfigRefused(`${REMOTE_SIGNATURE_FILE} is not a signature`);
  const node = ctx.local.node.id;
  const refused = signatureProblem(new KeyRing(ctx.local.collector.actions.keys), node, body, signature);
  if (refused !== null) throw new RemoteConfigRefused(refused);
  if (signature.issued_at < ctx.lastIssuedAt)
    throw new RemoteConfigRefused(
      `signed at ${new Date(signature.issued_at).toISOString()}, before the configuration running now (${new Date(ctx.lastIssuedAt).toISOString()}): a replay`,
    );
  if (signature.issued_at > ctx.nowMs + ctx.local.collector.fleet.max_skew_ms)
    throw new RemoteConfigRefused(`signed at ${new Date(signature.issued_at).toISOString()}, in the future`);
  const text = Buffer.from(body).toString("utf8");
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) throw new RemoteConfigRefused(`not YAML: ${doc.errors[0]!.message.split("\n")[0]}`);
  const document: unknown = doc.toJS() ?? {};
  const problems = remoteDocumentProblems(document);
  if (problems.length > 0) throw new RemoteConfigRefused(problems.join("; "));
  const stored = { hash, body: text, signature: signatureText, issued_at: signature.issued_at };
  const config = effectiveConfig(ctx, stored);
  const restricted = [...actionProblems(ctx.local, config), ...filePathProblems(ctx.local, config)];
  if (restricted.length > 0) throw new RemoteConfigRefused(restricted.join("; "));
  return { stored, config };
}
