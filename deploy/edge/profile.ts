import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The unit file that says how an edge node runs the collector; the bench, the tests and the DaemonSet follow it. */
export const EDGE_UNIT = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "deploy",
  "systemd",
  "bifrost-collector.service",
);
/** Where the units expect Bifrost installed. */
export const INSTALL_ROOT = "/opt/bifrost";

export interface EdgeProfile {
  /** Node's own options before the script: V8's heap and compiler settings. */
  nodeArgs: string[];
  /** The script, relative to the install root (the edge bundle, dist/edge/cli.js). */
  script: string;
  /** The unit's environment for the process's own runtime (glibc's allocator, NODE_ENV); not Bifrost's settings. */
  env: Record<string, string>;
}

/** Reads ExecStart and the runtime's Environment= lines of the collector's systemd unit. */
export function edgeProfile(unitText = readFileSync(EDGE_UNIT, "utf8")): EdgeProfile {
  const exec = /^ExecStart=(\S+)\s+(.*)$/m.exec(unitText);
  if (!exec) throw new Error(`${EDGE_UNIT} has no ExecStart`);
  const words = exec[2]!.split(/\s+/);
  const scriptAt = words.findIndex((word) => !word.startsWith("--"));
  const script = words[scriptAt];
  if (script === undefined || !script.startsWith(`${INSTALL_ROOT}/`))
    throw new Error(`ExecStart runs no script under ${INSTALL_ROOT}: ${exec[0]}`);
  const env: Record<string, string> = {};
  for (const [, name, value] of unitText.matchAll(/^Environment="?([A-Z_][A-Z0-9_]*)=([^"\n]*)"?$/gm)) {
    if (!name!.startsWith("BIFROST_")) env[name!] = value!;
  }
  return { nodeArgs: words.slice(0, scriptAt), script: script.slice(INSTALL_ROOT.length + 1), env };
}
