import { readFileSync } from "node:fs";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { type ConfigSource, locateProblem } from "./config-problems.js";
import { goParseBytes, goParseDurationSeconds, parsePrometheusDuration } from "./go/parse.js";
import { mergeDocuments } from "./merge.js";

// The configuration file is YAML with snake_case keys, as Loki's and Prometheus's are. Every key has a default,
// so an empty file (or none) is a working single-machine setup. Precedence: defaults < file < environment.
//
// Environment overrides: BIFROST_<SECTION>__<KEY>=value, `__` between levels. Values arrive as strings; the
// schema reads numbers, booleans and comma-separated lists out of them (BIFROST_KAFKA__BROKERS=k1:9092,k2:9092),
// so that a password of digits stays a string.
// Inside the file, ${VAR} and ${VAR:-default} expand from the environment (Loki's -config.expand-env); $${ is a
// literal ${.
//
// This module loads and validates; the schema is composed in config.ts from the shared sections
// (common/config-sections.ts) and each role's own (collector/config.ts, aggregator/config.ts, query/config.ts).

/** A list, also written as one comma-separated string, as environment variables carry it. */
export function list<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (v) => (typeof v === "string" ? (v.trim() === "" ? [] : v.split(",").map((s) => s.trim())) : v),
    z.array(item),
  );
}

/** A number matching `schema`, also written as a numeric string. */
export function number(schema: z.ZodNumber = z.number()) {
  return z.preprocess((v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v), schema);
}

const PLAIN_NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Milliseconds (the `*_ms` keys), also written as Prometheus and Loki configurations write durations: `15s`,
 * `5m`, `1h30m`, `1d` (Prometheus's units, y to ms), or Go's `1.5h`, `250ms`. A plain number is milliseconds.
 */
export function duration(schema: z.ZodNumber = z.number()) {
  return z
    .preprocess((v, ctx) => {
      if (typeof v !== "string" || v.trim() === "") return v;
      const text = v.trim();
      if (PLAIN_NUMBER.test(text)) return Number(text);
      const prometheus = parsePrometheusDuration(text);
      if (typeof prometheus === "bigint") return Number(prometheus) / 1e6;
      const go = goParseDurationSeconds(text);
      if (go.error === undefined) return go.value * 1000;
      ctx.addIssue({
        code: "custom",
        message: `expected a duration such as 15s, 5m or 1h30m, or milliseconds (${prometheus})`,
      });
      return z.NEVER;
    }, schema)
    .meta({ unit: "duration" });
}

/** Bytes (the `*_bytes` keys), also written with a unit as Loki's configuration does: `512MB`, `1GiB`, `10KiB`. */
export function bytes(schema: z.ZodNumber = z.number()) {
  return z
    .preprocess((v, ctx) => {
      if (typeof v !== "string" || v.trim() === "") return v;
      const text = v.trim();
      if (PLAIN_NUMBER.test(text)) return Number(text);
      const size = goParseBytes(text);
      if (size.error === undefined) return size.value;
      ctx.addIssue({
        code: "custom",
        message: `expected a size such as 512MB, 1GiB or 10KiB, or bytes (${size.error})`,
      });
      return z.NEVER;
    }, schema)
    .meta({ unit: "size" });
}

/** A boolean, also written as "true" or "false". */
export function boolean() {
  return z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean());
}
/** Tenant ids as Loki accepts them in X-Scope-OrgID. */
export const TENANT_ID = /^[A-Za-z0-9!_.*'()-]{1,150}$/;

/** A configuration that failed to load; `problems` name each bad key (as a dotted path) and why. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration (${source}):\n  - ${problems.join("\n  - ")}`);
  }
}

const ENV_PREFIX = "BIFROST_";

export interface LoadOptions {
  /** YAML file; omitted means defaults plus environment. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** A document laid over the file, under the environment: a collector's remote configuration. */
  overlay?: unknown;
}

/**
 * Reads the configuration: defaults < the YAML file (with ${VAR} expanded) < BIFROST_ environment overrides,
 * validated by `schema` (config.ts composes Bifrost's). Throws ConfigError naming each bad key.
 */
export function loadConfigWith<T>(schema: z.ZodType<T>, options: LoadOptions = {}): T {
  const env = options.env ?? process.env;
  const source = options.file ?? (options.overlay === undefined ? "defaults" : "remote configuration");
  let raw: unknown = {};
  let parsed: ConfigSource | undefined;
  if (options.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.file, "utf8");
    } catch (err) {
      throw new ConfigError(source, [`cannot read the file: ${(err as Error).message}`]);
    }
    parsed = parseConfigText(expandEnv(text, env, source), source);
    raw = parsed.doc.toJS() ?? {};
  }
  const merged = applyEnvOverrides(options.overlay === undefined ? raw : mergeDocuments(raw, options.overlay), env);
  const result = schema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(
      source,
      result.error.issues.map((issue) => {
        const hint = envHint(issue.path, env);
        // Lines name where a value came from, which is the file only without a remote configuration over it.
        const { line, suggestion } = locateProblem(schema, issue, options.overlay === undefined ? parsed : undefined);
        const where = hint === "" && line !== undefined ? ` (${source}:${line})` : hint;
        return `${describePath(issue.path)}: ${describeIssue(issue)}${suggestion}${where}`;
      }),
    );
  }
  return result.data;
}

function parseConfigText(text: string, source: string): ConfigSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0)
    throw new ConfigError(
      source,
      doc.errors.map((e) => e.message),
    );
  const value: unknown = doc.toJS() ?? {};
  if (typeof value !== "object" || Array.isArray(value))
    throw new ConfigError(source, ["the top level must be a mapping"]);
  return { doc, lines };
}

function expandEnv(text: string, env: NodeJS.ProcessEnv, source: string): string {
  const missing: string[] = [];
  // `$${` is a literal `${`, for the ${name} templates of Prometheus relabel rules in collector.scrape.
  const out = text.replace(
    /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}/g,
    (_match, name?: string, fallback?: string) => {
      if (name === undefined) return "${";
      const value = env[name];
      if (value !== undefined && value !== "") return value;
      if (fallback !== undefined) return fallback;
      missing.push(`\${${name}} is not set and has no default (write \${${name}:-default})`);
      return "";
    },
  );
  if (missing.length > 0) throw new ConfigError(source, missing);
  return out;
}

function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  const root = structuredClone(raw) as Record<string, unknown>;
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).toLowerCase().split("__");
    // Every key sits in a section, so an override names at least two levels; BIFROST_CACHE and the like
    // (used by deploy/local/services.sh) are not configuration.
    if (path.length < 2) continue;
    if (path.some((key) => key === "" || key === "__proto__" || key === "constructor" || key === "prototype")) continue;
    let node = root;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return root;
}

/** A dotted path as problems name keys: `query.notifier.receivers[0].url`. */
export function describePath(path: PropertyKey[]): string {
  if (path.length === 0) return "(top level)";
  return path.map((key, i) => (typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`)).join("");
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys")
    return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.join(", ")}`;
  return issue.message;
}

function envHint(path: PropertyKey[], env: NodeJS.ProcessEnv): string {
  for (let depth = path.length; depth > 0; depth--) {
    const name =
      ENV_PREFIX +
      path
        .slice(0, depth)
        .filter((k) => typeof k === "string")
        .join("__")
        .toUpperCase();
    if (env[name] !== undefined) return ` (set by ${name})`;
  }
  return "";
}
