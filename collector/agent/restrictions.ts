import { isDeepStrictEqual } from "node:util";
import { posix } from "node:path";
import type { Config } from "../../config.js";

// What a remote configuration may not do to a node, whoever signed it (OpAMP's "Configuration Restrictions"):
// decided by the node's own file, never by the remote document. A fleet server that is taken over must not turn
// collectors into command runners or file readers.

type Actions = Config["collector"]["actions"];
type AllowedAction = Actions["allowed"][number];

/** Whether `remote` lets the action do nothing more than `local` does: same command and parameters, no shorter cooldown, no longer timeout. */
function noWider(remote: AllowedAction, local: AllowedAction): boolean {
  return (
    isDeepStrictEqual(remote.command, local.command) &&
    isDeepStrictEqual(remote.params, local.params) &&
    remote.timeout_ms <= local.timeout_ms &&
    remote.cooldown_ms >= local.cooldown_ms
  );
}

/**
 * Why the effective configuration `next` (local file with a remote document) widens the local file's action
 * allow-list, unless collector.fleet.allow_remote_actions says a remote configuration may: actions turned on
 * when the file has them off, an action the file does not allow, or one allowed more broadly.
 */
export function actionProblems(local: Config, next: Config): string[] {
  if (local.collector.fleet.allow_remote_actions) return [];
  const problems: string[] = [];
  const before = local.collector.actions;
  const after = next.collector.actions;
  if (after.enabled && !before.enabled)
    problems.push(
      "collector.actions.enabled: a remote configuration may not turn on actions the node's file turns off",
    );
  const allowed = new Map(before.allowed.map((a) => [a.name, a]));
  for (const action of after.enabled ? after.allowed : []) {
    const mine = allowed.get(action.name);
    if (mine === undefined)
      problems.push(`collector.actions.allowed: ${action.name} is not on the node's own allow-list`);
    else if (!noWider(action, mine))
      problems.push(
        `collector.actions.allowed: ${action.name} would be allowed more broadly than the node's own allow-list allows`,
      );
  }
  return problems;
}

/** A glob's directory part, before its first wildcard. */
function fixedPrefix(glob: string): string {
  const wildcard = glob.search(/[*?[{]/);
  return wildcard < 0 ? glob : glob.slice(0, wildcard);
}

/**
 * Why the remote configuration's tailed files reach outside collector.fleet.remote_file_paths. Globs the node's
 * own file already tails are always allowed; others must be absolute, free of `..`, and lie under one of the
 * allowed directories.
 */
export function filePathProblems(local: Config, next: Config): string[] {
  const roots = local.collector.fleet.remote_file_paths.map((r) => posix.normalize(r).replace(/\/?$/, "/"));
  const own = new Set(local.collector.files.flatMap((f) => f.paths));
  const problems: string[] = [];
  for (const source of next.collector.files) {
    for (const glob of source.paths) {
      if (own.has(glob)) continue;
      const prefix = fixedPrefix(glob);
      const inside =
        glob.startsWith("/") &&
        !glob.split("/").includes("..") &&
        roots.some((root) => posix.normalize(prefix).startsWith(root));
      if (!inside)
        problems.push(
          `collector.files: ${glob} lies outside the directories remote configurations may read (collector.fleet.remote_file_paths: ${roots.join(", ") || "none"})`,
        );
    }
  }
  return problems;
}
