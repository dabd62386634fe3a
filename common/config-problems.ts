import { distance } from "fastest-levenshtein";
import type { Document, LineCounter } from "yaml";
import type { z } from "zod";
import { locate } from "./yaml-locate.js";

// Where a configuration problem sits in the YAML file (its line), and for an unknown key the key that was meant,
// so that `max_age: 5s` under collector.batch answers "did you mean `collector.batch.max_age_ms`?".

/** The parsed file with the line of each offset; absent when the value did not come from the file. */
export interface ConfigSource {
  doc: Document;
  lines: LineCounter;
}

type Path = PropertyKey[];

/** The file's `line:column` of the problem's key (or of its nearest enclosing key in the file), and a suggestion. */
export function locateProblem(
  schema: z.ZodType,
  issue: z.core.$ZodIssue,
  source: ConfigSource | undefined,
): { line: string | undefined; suggestion: string } {
  const unknown = issue.code === "unrecognized_keys" ? issue.keys : [];
  const suggestions = unknown
    .map((key) => suggestKey(schema, issue.path, key))
    .filter((s): s is string => s !== undefined);
  const suggestion =
    suggestions.length === 0 ? "" : ` (did you mean ${suggestions.map((s) => `\`${s}\``).join(", ")}?)`;
  return {
    line: source === undefined ? undefined : locate(source.doc, source.lines, issue.path, unknown[0]),
    suggestion,
  };
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
}

const defOf = (schema: z.ZodType) => schema._zod.def as unknown as Def;

/** The schema under defaults, optionals and coercions. */
function unwrap(schema: z.ZodType): z.ZodType {
  for (;;) {
    const def = defOf(schema);
    if (def.innerType !== undefined) schema = def.innerType;
    else if (def.type === "pipe" && def.in !== undefined && def.out !== undefined)
      schema = defOf(def.in).type === "transform" ? def.out : def.in;
    else return schema;
  }
}

/** The object schema at `path`, through lists and maps. */
function objectAt(schema: z.ZodType, path: Path): Record<string, z.ZodType> | undefined {
  let node = unwrap(schema);
  for (const key of path) {
    const def = defOf(node);
    const next =
      def.type === "object"
        ? def.shape?.[String(key)]
        : def.type === "array"
          ? def.element
          : def.type === "record"
            ? def.valueType
            : undefined;
    if (next === undefined) return undefined;
    node = unwrap(next);
  }
  return defOf(node).shape;
}

/** Every key path of the schema's sections, through objects only (not lists or maps, whose keys are the user's). */
function keyPaths(schema: z.ZodType, prefix: string[] = [], out: string[][] = []): string[][] {
  const shape = defOf(unwrap(schema)).shape;
  for (const [key, child] of Object.entries(shape ?? {})) {
    out.push([...prefix, key]);
    keyPaths(child, [...prefix, key], out);
  }
  return out;
}

const close = (a: string, b: string) => distance(a, b) <= Math.max(2, Math.floor(Math.max(a.length, b.length) / 3));

/** The key meant: the nearest sibling, else a key of that name (or nearly) elsewhere, as a dotted path. */
function suggestKey(schema: z.ZodType, path: Path, key: string): string | undefined {
  const at = path.map((k) => (typeof k === "number" ? `[${k}]` : String(k)));
  const join = (parts: string[]) => parts.join(".").replace(/\.\[/g, "[");
  const siblings = Object.keys(objectAt(schema, path) ?? {});
  const sibling = best(key, siblings);
  if (sibling !== undefined) return join([...at, sibling]);
  const elsewhere = keyPaths(schema);
  const leaf = best(
    key,
    elsewhere.map((p) => p.at(-1)!),
  );
  if (leaf === undefined) return undefined;
  const candidates = elsewhere.filter((p) => p.at(-1) === leaf);
  return candidates.length === 1 ? join(candidates[0]!) : undefined;
}

function best(key: string, names: string[]): string | undefined {
  let found: string | undefined;
  let bestDistance = Infinity;
  for (const name of names) {
    if (!name.startsWith(`${key}_`) && !close(key, name)) continue;
    // A key written without its unit (`max_age` for `max_age_ms`) is the likeliest slip.
    const d = name.startsWith(`${key}_`) ? 0 : distance(key, name);
    if (d < bestDistance) [found, bestDistance] = [name, d];
  }
  return found;
}
