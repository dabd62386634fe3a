import { hostname, release } from "node:os";
import { stringify } from "yaml";
import type { Config } from "../../config.js";
import { COLLECTOR_AGENT_TYPE, REMOTE_CONFIG_FILE, YAML_CONTENT_TYPE } from "../../common/remote-config.js";
import { VERSION } from "../../common/version.js";
import { type AgentConfigMap, type AgentDescription, uidText } from "../../proto/opamp.js";

// How the collector describes itself to the fleet server, following OpAMP's guidelines for the OpenTelemetry
// Collector (service.* identifying, os.* and host.* not), and its effective configuration as it reports it.

/** Node.js's names for processor architectures, as OpenTelemetry's host.arch values. */
const ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm32",
  ia32: "x86",
  ppc64: "ppc64",
  s390x: "s390x",
};

export function agentDescription(config: Config, instanceUid: Uint8Array): AgentDescription {
  const nonIdentifying: Record<string, string> = {
    "host.name": hostname(),
    "host.arch": ARCH[process.arch] ?? process.arch,
    "os.type": process.platform,
    "os.version": release(),
  };
  if (config.node.site !== "") nonIdentifying["bifrost.site"] = config.node.site;
  if (config.node.region !== "") nonIdentifying["bifrost.region"] = config.node.region;
  return {
    identifying: {
      "service.name": COLLECTOR_AGENT_TYPE,
      "service.version": VERSION,
      "service.instance.id": uidText(instanceUid),
      "bifrost.node.id": config.node.id,
    },
    nonIdentifying: { ...nonIdentifying, ...config.collector.fleet.labels },
  };
}

/** Keys whose values are secrets: never reported. */
const SECRET_KEYS = new Set(["password", "auth_token", "tokens", "hmac_secret", "key"]);

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      SECRET_KEYS.has(k) && (typeof v === "string" || Array.isArray(v)) ? "<redacted>" : redact(v),
    ]),
  );
}

/** The effective configuration as --check-config prints it, secrets left out, as the one file of the map. */
export function effectiveConfigMap(config: Config): AgentConfigMap {
  return {
    [REMOTE_CONFIG_FILE]: {
      body: Buffer.from(stringify(redact(config), { lineWidth: 0 })),
      contentType: YAML_CONTENT_TYPE,
    },
  };
}
