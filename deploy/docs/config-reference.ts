import { stringify } from "yaml";
import { z } from "zod";
import { configSchema } from "../../config.js";

// Renders docs/configuration.md from the configuration schema itself, so that the reference cannot drift from
// what loadConfig accepts: every key with its type, default, environment variable and the schema's description.
// test/docs.unit.test.ts fails when the checked-in page differs from this rendering.

/** The subset of JSON Schema that z.toJSONSchema emits for Bifrost's configuration. */
interface JsonSchema {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minLength?: number;
  minItems?: number;
  examples?: unknown[];
  /** common/config.ts's duration() and bytes(): milliseconds or bytes, also written with a unit. */
  unit?: "duration" | "size";
}

/** One documented key. */
export interface ReferenceRow {
  /** Dotted path; `[]` marks an item of a list, `<name>` a key of a map. */
  key: string;
  type: string;
  /** Markdown of the default, or "required" / "none" when there is none. */
  default: string;
  /** The default as loadConfig returns it, when the key has one. */
  defaultValue?: unknown;
  /** The environment variable that sets the key ("its keys" for an optional section), or undefined where only the file can. */
  env: string | undefined;
  description: string;
}

export interface ReferenceSection {
  name: string;
  description: string;
  rows: ReferenceRow[];
  /** Copy-paste examples of keys whose schema has one (`.meta({ examples })`), printed after the table. */
  examples: { key: string; description: string; value: unknown }[];
}

const ENV_PREFIX = "BIFROST_";
const SIZE_UNITS: [number, string][] = [
  [1 << 30, "GiB"],
  [1 << 20, "MiB"],
  [1 << 10, "KiB"],
];

/** The configuration schema as JSON Schema of the loaded (output) values, with descriptions and defaults. */
export function configJsonSchema(): JsonSchema {
  return z.toJSONSchema(configSchema(), { io: "output", unrepresentable: "any" }) as JsonSchema;
}

/** Every key of the schema, section by section; throws naming the keys that lack a description. */
export function referenceSections(): ReferenceSection[] {
  const root = configJsonSchema();
  const missing: string[] = [];
  const sections = Object.entries(root.properties ?? {}).map(([name, schema]) => {
    if (schema.description === undefined) missing.push(name);
    const rows: ReferenceRow[] = [];
    const examples: ReferenceSection["examples"] = [];
    collectRows(schema, [name], true, rows, missing, examples);
    return { name, description: schema.description ?? "", rows, examples };
  });
  if (missing.length > 0)
    throw new Error(
      `configuration keys without a description (add .describe() where the section is defined; config.ts composes them): ${missing.join(", ")}`,
    );
  return sections;
}

function collectRows(
  object: JsonSchema,
  path: string[],
  envReachable: boolean,
  rows: ReferenceRow[],
  missing: string[],
  examples: ReferenceSection["examples"] = [],
): void {
  const required = new Set(object.required ?? []);
  for (const [name, schema] of Object.entries(object.properties ?? {})) {
    const keyPath = [...path, name];
    const key = keyPath.join(".").replaceAll(".[]", "[]");
    if (schema.examples?.[0] !== undefined)
      examples.push({ key, description: schema.description ?? "", value: schema.examples[0] });
    const hasDefault = "default" in schema;
    const values = mapValues(schema);
    // A list of objects or a map of objects cannot be written as one string; a map of scalars takes one variable per key.
    const env =
      !envReachable || isListOfObjects(schema) || values?.properties !== undefined
        ? undefined
        : envName(values === undefined ? keyPath : [...keyPath, "<name>"]);
    if (isObject(schema) && schema.properties !== undefined && !hasDefault) {
      // A section: its keys are the rows; an optional one is documented by a row of its own as well.
      if (!required.has(name)) {
        if (schema.description === undefined) missing.push(key);
        rows.push({
          key,
          type: "object",
          default: "none",
          env: envReachable ? "its keys" : undefined,
          description: schema.description ?? "",
        });
      }
      collectRows(schema, keyPath, envReachable, rows, missing, examples);
      continue;
    }
    if (schema.description === undefined) missing.push(key);
    rows.push({
      key,
      type: describeType(schema),
      default: hasDefault ? formatDefault(name, schema.default) : required.has(name) ? "required" : "none",
      ...(hasDefault ? { defaultValue: schema.default } : {}),
      env,
      description: schema.description ?? "",
    });
    if (isListOfObjects(schema)) collectRows(schema.items!, [...keyPath, "[]"], false, rows, missing);
    if (values?.properties !== undefined) collectRows(values, [...keyPath, "<name>"], envReachable, rows, missing);
  }
}

function isObject(schema: JsonSchema): boolean {
  return schema.type === "object";
}

function isListOfObjects(schema: JsonSchema): boolean {
  return (
    schema.type === "array" &&
    schema.items !== undefined &&
    isObject(schema.items) &&
    schema.items.properties !== undefined
  );
}

function mapValues(schema: JsonSchema): JsonSchema | undefined {
  return isObject(schema) && typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined;
}

function envName(path: string[]): string {
  return ENV_PREFIX + path.map((key) => key.toUpperCase()).join("__");
}

function describeType(schema: JsonSchema): string {
  if (schema.anyOf !== undefined) return schema.anyOf.map(describeType).join(" or ");
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (schema.enum !== undefined) return schema.enum.map((v) => `\`${String(v)}\``).join(", ");
  switch (schema.type) {
    case "string":
      return schema.format === "uri"
        ? "URL"
        : schema.pattern === "^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9_.-]+):\\d{1,5}$"
          ? "host:port"
          : "string";
    case "integer":
    case "number":
      if (schema.unit === "duration") return `duration, or ${schema.type} ms${describeRange(schema)}`;
      if (schema.unit === "size") return `size, or ${schema.type} bytes${describeRange(schema)}`;
      return `${schema.type}${describeRange(schema)}`;
    case "boolean":
      return "boolean";
    case "array":
      return `list of ${isListOfObjects(schema) ? "objects" : plural(describeType(schema.items ?? {}))}`;
    case "object": {
      const values = mapValues(schema);
      if (values === undefined) return "object";
      return `map of ${describeType(schema.propertyNames ?? { type: "string" })} to ${values.properties !== undefined ? "object" : describeType(values)}`;
    }
    default:
      return "any";
  }
}

function plural(type: string): string {
  return /^(string|integer|number|boolean|URL|host:port)$/.test(type) ? `${type}s` : type;
}

function describeRange(schema: JsonSchema): string {
  const low =
    schema.minimum !== undefined
      ? `≥ ${schema.minimum}`
      : schema.exclusiveMinimum !== undefined
        ? `> ${schema.exclusiveMinimum}`
        : undefined;
  const high =
    schema.maximum !== undefined && schema.maximum < Number.MAX_SAFE_INTEGER ? `≤ ${schema.maximum}` : undefined;
  const parts = [low, high].filter((p) => p !== undefined);
  return parts.length === 0 ? "" : ` ${parts.join(", ")}`;
}

function formatDefault(key: string, value: unknown): string {
  if (value === "") return "empty";
  if (typeof value === "string") return `\`${value}\``;
  if (typeof value === "number") return `\`${value}\`${unitHint(key, value)}`;
  if (Array.isArray(value)) return `\`[${value.join(", ")}]\``;
  return `\`${JSON.stringify(value)}\``;
}

/** A reading aid for byte sizes and durations, so that 16777216 is seen to be 16 MiB. */
function unitHint(key: string, value: number): string {
  if (key.endsWith("_bytes") || key === "max_bytes") {
    const unit = SIZE_UNITS.find(([size]) => value >= size && value % size === 0);
    return unit === undefined ? "" : ` (${value / unit[0]} ${unit[1]})`;
  }
  if (key.endsWith("_ms") && value >= 1000 && value % 1000 === 0) {
    const seconds = value / 1000;
    if (seconds % 3600 === 0) return ` (${seconds / 3600} h)`;
    if (seconds % 60 === 0) return ` (${seconds / 60} min)`;
    return ` (${seconds} s)`;
  }
  return "";
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/** The Markdown of docs/configuration.md. */
export function renderConfigReference(): string {
  const sections = referenceSections();
  const out: string[] = [
    "# Configuration reference",
    "",
    "<!-- Generated from the schema in common/config.ts by `npm run -s docs:config > docs/configuration.md`; do not edit by hand. -->",
    "",
    "Bifrost reads one YAML file (`--config file.yaml`) with snake_case keys, as Loki and Prometheus do. Every key",
    "has a default unless it says *required*, so no file at all is a working single-machine setup. Precedence:",
    "defaults, then the file, then the environment. `bifrost <role> --check-config` prints the effective",
    "configuration as JSON and exits with status 2, naming each bad key, when it is invalid. Unknown keys are errors.",
    "",
    "- **Environment**: `BIFROST_<SECTION>__<KEY>`, `__` between levels. Lists are comma-separated; numbers and",
    "  booleans are read from the string (an empty variable is a list of one empty string, not an empty list).",
    "  Keys inside a list of objects (marked `[]`) can only be set in the file.",
    "  A map key (marked `<name>`) is lower-cased when it comes from the environment.",
    "- **Inside the file**, `${VAR}` and `${VAR:-default}` expand from the environment, for secrets.",
    "- **Durations** (type *duration*, the `*_ms` keys) are written as in Prometheus and Loki: `15s`, `5m`, `1h30m`,",
    "  `1d`, `250ms`, `1.5h`; a plain number is milliseconds. **Sizes** (type *size*, the `*_bytes` keys): `512MB`,",
    "  `1GiB`, `10KiB`, `64k`; a plain number is bytes. Both in the file and in `BIFROST_` variables.",
    "- **Problems** name the key and, for a value from the file, its line and column (`collector.batch.max_age_ms: ...",
    "  (bifrost.yaml:12:17)`); an unknown key gets the nearest known one (did you mean `collector.batch.max_age_ms`?).",
    "",
    "Sections: " + sections.map((s) => `[${s.name}](#${s.name})`).join(", ") + ".",
  ];
  for (const section of sections) {
    out.push(
      "",
      `## ${section.name}`,
      "",
      section.description,
      "",
      "| key | type | default | environment | description |",
      "|---|---|---|---|---|",
    );
    for (const row of section.rows) {
      out.push(
        `| \`${row.key}\` | ${cell(row.type)} | ${cell(row.default)} | ${row.env === undefined ? "file only" : row.env.startsWith(ENV_PREFIX) ? `\`${row.env}\`` : row.env} | ${cell(row.description)} |`,
      );
    }
    for (const { key, description, value } of section.examples) {
      // The example nested under its key's path, ready to paste into a configuration file.
      const nested = key
        .split(".")
        .reverse()
        .reduce<unknown>((inner, part) => ({ [part]: inner }), value);
      out.push("", `Example of \`${key}\` (${description}):`, "", "```yaml", stringify(nested).trimEnd(), "```");
    }
  }
  return out.join("\n") + "\n";
}
