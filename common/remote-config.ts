import { createHash } from "node:crypto";
import { type KeyRing, remoteConfigSigningText, type RemoteConfigSignature, type SigningKey } from "./signing.js";
import { isMapping } from "./merge.js";

// A Bifrost collector's remote configuration as the fleet server offers it over OpAMP: an AgentConfigMap of two
// files, the YAML document (laid over the collector's local file) and its signature. The fleet server and the
// collector's agent both follow this module, so that what one signs and checks is what the other verifies.

/** The configuration document: a Bifrost YAML file holding only sections a remote config may set. */
export const REMOTE_CONFIG_FILE = "bifrost.yaml";
/** Its signature (RemoteConfigSignature as JSON). */
export const REMOTE_SIGNATURE_FILE = "bifrost.yaml.sig";
export const YAML_CONTENT_TYPE = "text/yaml";
export const SIGNATURE_CONTENT_TYPE = "application/json";
/** The `service.name` a Bifrost collector reports in its agent description. */
export const COLLECTOR_AGENT_TYPE = "bifrost-collector";

/** The top-level sections a remote configuration may set: what a collector runs with. */
export const REMOTE_SECTIONS = ["collector", "kafka", "log", "overrides"];

/**
 * Keys only the node's own file may set: its identity, how it reaches and trusts the fleet server, where its
 * disk buffer lies (moving it would strand what is buffered), the files it writes, who may push to it, and the
 * action keys and limits. The allow-list itself (collector.actions.allowed) may be narrowed remotely, never
 * widened (collector/agent/restrictions.ts).
 */
export const LOCAL_ONLY_KEYS = [
  ["collector", "fleet"],
  ["collector", "wal", "dir"],
  ["collector", "files_positions"],
  ["collector", "tls"],
  ["collector", "actions", "keys"],
  ["collector", "actions", "max_skew_ms"],
  ["collector", "actions", "nonce_cache_size"],
  ["collector", "actions", "rate_per_s"],
  ["collector", "actions", "burst"],
  ["collector", "actions", "max_output_bytes"],
  ["collector", "actions", "audit_tenant"],
  ["collector", "actions", "heartbeat"],
];

/** Lowercase hex SHA-256: the config hash of OpAMP messages and of the fleet's inventory. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Why a remote document may not be applied as it stands (sections and keys it may not set); empty if none. */
export function remoteDocumentProblems(document: unknown): string[] {
  if (!isMapping(document)) return ["a remote configuration must be a YAML mapping"];
  const problems: string[] = [];
  for (const section of Object.keys(document)) {
    if (!REMOTE_SECTIONS.includes(section))
      problems.push(`${section}: a remote configuration may set only ${REMOTE_SECTIONS.join(", ")}`);
  }
  for (const path of LOCAL_ONLY_KEYS) {
    let node: unknown = document;
    for (const key of path) node = isMapping(node) ? node[key] : undefined;
    if (node !== undefined) problems.push(`${path.join(".")}: only the node's own configuration file may set this`);
  }
  return problems;
}

/** The signature of `body` for `node`, by `key`, issued at `issuedAt` (Unix milliseconds). */
export function signRemoteConfig(
  key: SigningKey,
  node: string,
  body: Uint8Array,
  issuedAt: number,
): RemoteConfigSignature {
  const unsigned = { node, issued_at: issuedAt, key_id: key.id, sha256: sha256Hex(body) };
  return { ...unsigned, signature: key.sign(remoteConfigSigningText(unsigned)) };
}

/** Parses a signature file; undefined when it is not one. */
export function parseSignature(text: string): RemoteConfigSignature | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isMapping(value)) return undefined;
  const { node, issued_at, key_id, sha256, signature } = value;
  if (
    typeof node !== "string" ||
    typeof issued_at !== "number" ||
    !Number.isSafeInteger(issued_at) ||
    typeof key_id !== "string" ||
    typeof sha256 !== "string" ||
    typeof signature !== "string"
  )
    return undefined;
  return { node, issued_at, key_id, sha256, signature };
}

/**
 * Why `body` with `signature` is not a configuration signed for `node` by a key of `keys`; null when it is. The
 * time checks (not older than the configuration running now, not from the future) are the caller's.
 */
export function signatureProblem(
  keys: KeyRing,
  node: string,
  body: Uint8Array,
  signature: RemoteConfigSignature,
): string | null {
  if (signature.node !== node) return `signed for node ${JSON.stringify(signature.node)}, not for this node`;
  if (signature.sha256 !== sha256Hex(body)) return "the signature is over other bytes than the configuration's";
  const { signature: presented, ...signed } = signature;
  const refused = keys.check(signature.key_id, remoteConfigSigningText(signed), presented);
  if (refused === "unknown_key")
    return `signed with key ${JSON.stringify(signature.key_id)}, which this node does not hold`;
  if (refused === "bad_signature") return "the signature does not verify";
  return null;
}
