import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { LineCounter, parseDocument, type Document } from "yaml";
import { z } from "zod";
import { configSchema } from "../config.js";
import { type Document as ConfigDocument, isMapping, mergeDocuments } from "../common/merge.js";
import { COLLECTOR_AGENT_TYPE, remoteDocumentProblems } from "../common/remote-config.js";
import type { GateThresholds, RevisionRecord, Selector, WaveSpec } from "../proto/fleet.js";
import { locate } from "../common/yaml-locate.js";
import { duration } from "../common/config.js";

// The GitOps source: a directory (a git checkout) of YAML files that says what every agent of the fleet runs.
//
//   base.yaml      the base configuration of Bifrost collectors: a Bifrost configuration file (collector:, kafka:)
//   rollout.yaml   how a change rolls out: waves, soak times, health gate thresholds (optional: all at once)
//   **/*.yaml      fragments: {selector, priority, agent_type, config}, laid over the base for matching agents
//
// A revision is the whole set of files; its id is the hash of their paths and contents, so it changes exactly
// when a file does. Every problem is reported as file:line:column; a revision with any problem is refused whole.

export interface Fragment {
  /** The file, relative to the directory: the fragment's name. */
  id: string;
  selector: Selector;
  priority: number;
  /** service.name of the agents it is for; Bifrost's collector by default. */
  agentType: string;
  config: ConfigDocument;
}

export interface RolloutSpec {
  waves: WaveSpec[];
  soakMs: number;
  applyTimeoutMs: number;
  gates: GateThresholds;
}

export interface Revision {
  id: string;
  commit: string;
  createdMs: number;
  files: Record<string, string>;
  base: ConfigDocument;
  fragments: Fragment[];
  rollout: RolloutSpec;
}

export class SourceError extends Error {
  override readonly name = "SourceError";
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

const YAML_FILE = /\.ya?ml$/;
const BASE_FILES = new Set(["base.yaml", "base.yml"]);
const ROLLOUT_FILES = new Set(["rollout.yaml", "rollout.yml"]);

/** Every YAML file under `dir` (names starting with a dot, such as .git, skipped), relative path -> text. */
export function readSourceFiles(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (at: string) => {
    for (const entry of readdirSync(at).sort()) {
      if (entry.startsWith(".")) continue;
      const path = join(at, entry);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (stat?.isDirectory()) walk(path);
      else if (stat?.isFile() && YAML_FILE.test(entry))
        files[relative(dir, path).split(sep).join("/")] = readFileSync(path, "utf8");
    }
  };
  walk(dir);
  return files;
}

/** The commit the checkout is at (.git/HEAD, through its ref), or "" when it is not a git checkout. */
export function gitCommit(dir: string): string {
  const read = (path: string) => readFileSync(join(dir, ".git", path), "utf8").trim();
  try {
    const head = read("HEAD");
    if (!head.startsWith("ref: ")) return head;
    const ref = head.slice(5);
    try {
      return read(ref);
    } catch {
      const packed = read("packed-refs")
        .split("\n")
        .find((line) => line.endsWith(` ${ref}`));
      return packed?.split(" ")[0] ?? "";
    }
  } catch {
    return "";
  }
}

export function revisionId(files: Record<string, string>): string {
  const hash = createHash("sha256");
  for (const path of Object.keys(files).sort()) hash.update(`${path}\u0000${files[path]}\u0000`);
  return hash.digest("hex");
}

const selectorSchema = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, "expected a label name"),
  z.union([z.string(), z.array(z.string()).min(1)]),
);

const fragmentSchema = z.strictObject({
  description: z.string().optional(),
  selector: selectorSchema.default({}),
  priority: z.number().int().default(0),
  agent_type: z.string().min(1).default(COLLECTOR_AGENT_TYPE),
  config: z.record(z.string(), z.unknown()),
});

const gatesSchema = z.strictObject({
  failed_applies: z.number().int().min(0).default(0),
  silent_nodes: z.number().int().min(0).default(0),
  requests_rejected: z.number().min(0).default(10),
  batches_dropped: z.number().min(0).default(0),
  ship_retries: z.number().min(0).default(20),
  restarts: z.number().min(0).default(0),
});

const rolloutSchema = z.strictObject({
  description: z.string().optional(),
  waves: z
    .array(
      z
        .strictObject({
          percent: z.number().gt(0).max(100).optional(),
          selector: selectorSchema.optional(),
          soak_ms: duration(z.number().int().min(0)).optional(),
        })
        .refine((w) => (w.percent === undefined) !== (w.selector === undefined), "a wave has percent or selector"),
    )
    .min(1)
    .refine((waves) => {
      const percents = waves.flatMap((w) => (w.percent === undefined ? [] : [w.percent]));
      return percents.every((p, i) => i === 0 || p >= percents[i - 1]!);
    }, "wave percentages are cumulative: each at least the one before"),
  soak_ms: duration(z.number().int().min(0)).default(300_000),
  apply_timeout_ms: duration(z.number().int().min(1)).default(600_000),
  gates: gatesSchema.prefault({}),
});

/** A change with no rollout.yaml: one wave of every target, gated on failed applies only. */
export const ALL_AT_ONCE: RolloutSpec = {
  waves: [{ percent: 100 }],
  soakMs: 0,
  applyTimeoutMs: 600_000,
  gates: gatesSchema.parse({}),
};

interface Parsed {
  doc: Document;
  lines: LineCounter;
  value: unknown;
}

function parseFile(path: string, text: string, problems: string[]): Parsed | undefined {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const { line, col } = lines.linePos(error.pos[0]);
      problems.push(`${path}:${line}:${col}: ${error.message.split("\n")[0]}`);
    }
    return undefined;
  }
  return { doc, lines, value: doc.toJS() ?? {} };
}

function issueProblems(path: string, parsed: Parsed, issues: z.core.$ZodIssue[], prefix: PropertyKey[] = []): string[] {
  return issues.map((issue) => {
    const where = [...prefix, ...issue.path];
    const key = issue.code === "unrecognized_keys" ? issue.keys[0] : undefined;
    const named = [...issue.path, ...(key === undefined ? [] : [key])].join(".");
    const message = issue.code === "unrecognized_keys" ? `unknown key ${issue.keys.join(", ")}` : issue.message;
    return `${path}:${locate(parsed.doc, parsed.lines, where, key)}: ${named === "" ? "" : `${named}: `}${message}`;
  });
}

/**
 * Problems of a collector configuration document (the base, or the base with a fragment laid over it) as the
 * collector would find them: the sections and keys a remote configuration may not set, and the schema of
 * `--check-config`. Reported at `prefix` + the key's path in `parsed`, the file that is checked.
 */
function collectorProblems(
  schema: ReturnType<typeof configSchema>,
  path: string,
  parsed: Parsed,
  document: unknown,
  prefix: PropertyKey[],
): string[] {
  const problems = remoteDocumentProblems(document).map((p) => {
    const keyPath = p.split(":")[0]!.split(".");
    return `${path}:${locate(parsed.doc, parsed.lines, [...prefix, ...keyPath.slice(0, -1)], keyPath.at(-1))}: ${p}`;
  });
  const result = schema.safeParse(mergeDocuments({}, document));
  if (!result.success) problems.push(...issueProblems(path, parsed, result.error.issues, prefix));
  return problems;
}

/** The revision these files make, or a SourceError with every problem. */
export function parseRevision(files: Record<string, string>, commit = "", nowMs = Date.now()): Revision {
  const problems: string[] = [];
  const schema = configSchema();
  let base: ConfigDocument = {};
  let rollout = ALL_AT_ONCE;
  const fragments: Fragment[] = [];
  const baseFile = Object.keys(files).find((f) => BASE_FILES.has(f));
  const baseParsed = baseFile === undefined ? undefined : parseFile(baseFile, files[baseFile]!, problems);
  // Fragments are checked laid over the base, unless the base has problems of its own (reported once, at the base).
  let baseValid = true;
  if (baseFile !== undefined && baseParsed !== undefined) {
    if (!isMapping(baseParsed.value)) problems.push(`${baseFile}:1:1: the base configuration must be a mapping`);
    else {
      base = baseParsed.value;
      const found = collectorProblems(schema, baseFile, baseParsed, base, []);
      baseValid = found.length === 0;
      problems.push(...found);
    }
  }
  for (const [path, text] of Object.entries(files)) {
    if (path === baseFile) continue;
    const parsed = parseFile(path, text, problems);
    if (parsed === undefined) continue;
    if (ROLLOUT_FILES.has(path)) {
      const result = rolloutSchema.safeParse(parsed.value);
      if (!result.success) problems.push(...issueProblems(path, parsed, result.error.issues));
      else {
        const r = result.data;
        const waves: WaveSpec[] = r.waves.map((w) => ({
          ...(w.percent !== undefined ? { percent: w.percent } : {}),
          ...(w.selector !== undefined ? { selector: w.selector } : {}),
          ...(w.soak_ms !== undefined ? { soak_ms: w.soak_ms } : {}),
        }));
        // Every target is updated by the end: a last wave of 100% unless the declared ones end there.
        if (waves[waves.length - 1]!.percent !== 100) waves.push({ percent: 100 });
        rollout = { waves, soakMs: r.soak_ms, applyTimeoutMs: r.apply_timeout_ms, gates: r.gates };
      }
      continue;
    }
    const result = fragmentSchema.safeParse(parsed.value);
    if (!result.success) {
      problems.push(...issueProblems(path, parsed, result.error.issues));
      continue;
    }
    const f = result.data;
    fragments.push({ id: path, selector: f.selector, priority: f.priority, agentType: f.agent_type, config: f.config });
    if (f.agent_type === COLLECTOR_AGENT_TYPE)
      problems.push(
        ...collectorProblems(schema, path, parsed, mergeDocuments(baseValid ? base : {}, f.config), ["config"]),
      );
  }
  if (problems.length > 0) throw new SourceError([...new Set(problems)]);
  // Lower priority first, so that higher priorities are laid over it; the name breaks ties, deterministically.
  fragments.sort((a, b) => a.priority - b.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { id: revisionId(files), commit, createdMs: nowMs, files, base, fragments, rollout };
}

/** A revision as stored, parsed again (it was valid when stored). */
export function revisionOf(record: RevisionRecord): Revision {
  return { ...parseRevision(record.files, record.commit, record.created_ms), id: record.id };
}

export function revisionRecord(revision: Revision): RevisionRecord {
  return { id: revision.id, commit: revision.commit, created_ms: revision.createdMs, files: revision.files };
}

/** The revision of an unmanaged fleet: nothing offered to anyone. */
export const EMPTY_REVISION: Revision = {
  id: "",
  commit: "",
  createdMs: 0,
  files: {},
  base: {},
  fragments: [],
  rollout: ALL_AT_ONCE,
};
