import type { ExtractionParam } from "../syntax/ast.js";
import { compileRe2, groupNames } from "../../regex.js";
import {
  arrayEach,
  findMember,
  type JsonValue,
  JsonType,
  jsonStringValue,
  MALFORMED_STRING_ESCAPE,
  objectEach,
  unescapeJson,
} from "./json-scan.js";
import { DUPLICATE_SUFFIX, ERROR_LABEL, type LabelsBuilder } from "./labels-builder.js";
import { LogfmtDecoder } from "../../logfmt-decoder.js";
import { compilePattern } from "./pattern.js";
import { KeyCache, sanitizeLabelKey } from "./sanitize.js";

/** One compiled stage: the (possibly rewritten) line, or null to drop the entry. */
export type StageFn = (tsNs: bigint, line: string, labels: LabelsBuilder) => string | null;

export class StageError extends Error {
  override name = "StageError";
}

const JSON_ERROR = "JSONParserErr";
/** Returned through objectEach when the parser hints drop the line. */
const DROP = "\u0000drop";
const LOGFMT_ERROR = "LogfmtParserErr";
/** Walks a JSON object that no needed label comes from, as deep as extracting would, only for its errors. */
const skip = (_key: string, value: JsonValue): string | undefined =>
  value.type === JsonType.Object ? objectEach(value.raw, 0, skip) : undefined;

/**
 * `| json`: every scalar of the object, nested keys joined with `_`; arrays and nulls are skipped. With `paths`,
 * each label extracted is recorded there with the object keys leading to it (Loki's captured JSON path).
 */
export function jsonStage(paths?: Map<string, string[]>): StageFn {
  const keys = new KeyCache();
  const objectKeys: string[] = [];
  let labels: LabelsBuilder;
  // Loki skips a top-level key that sanitizes to nothing, but not a nested one: `{" ": {"": 1}}` yields a label
  // with an empty name.
  const member = (nested: boolean, prefix: string, key: string, value: JsonValue): string | undefined => {
    if (value.type === JsonType.Array || value.type === JsonType.Null) return undefined;
    const name = nested ? nestedName(prefix, key) : keys.get(key, sanitizeLabelKey);
    if (value.type === JsonType.Object) {
      if (!labels.wantsPrefix(name)) return objectEach(value.raw, 0, skip);
      if (paths === undefined) return objectEach(value.raw, 0, (k, v) => member(true, name, k, v));
      objectKeys.push(key);
      const result = objectEach(value.raw, 0, (k, v) => member(true, name, k, v));
      objectKeys.pop();
      return result;
    }
    if (name === "" && !nested) return undefined;
    let label = name;
    if (labels.parsedName(name) !== name) {
      label = nested ? nestedName(prefix, key + DUPLICATE_SUFFIX) : name + DUPLICATE_SUFFIX;
    }
    if (labels.wasExtracted(label) || !labels.wants(label)) return undefined;
    paths?.set(label, [...objectKeys, key]);
    return labels.extract(label, value.type === JsonType.String ? jsonStringValue(value.raw) : value.raw)
      ? undefined
      : DROP;
  };
  const topLevel = (key: string, value: JsonValue): string | undefined => member(false, "", key, value);
  return (_ts, line, builder) => {
    labels = builder;
    objectKeys.length = 0;
    const error = objectEach(line, 0, topLevel);
    if (error === DROP) return null;
    if (error !== undefined) labels.setError(JSON_ERROR, error);
    return line;
  };
}

/**
 * A nested key joined to its parent's name; a leading digit needs no `_` once a prefix precedes it, and a
 * whitespace-only key (or parent) contributes nothing.
 */
function nestedName(prefix: string, key: string): string {
  const part = key.trim().replace(/[^A-Za-z0-9_]/gu, "_");
  if (part === "") return prefix;
  return prefix === "" ? sanitizeLabelKey(key) : `${prefix}_${part}`;
}

type JsonPathSegment = string | number;

/** Loki's jsonexpr: `a.b[0]`, `a["b c"]`, `[1].x`. */
export function parseJsonPath(expression: string): JsonPathSegment[] {
  const fail = (reason: string): never => {
    throw new StageError(`cannot parse expression [${expression}]: ${reason}`);
  };
  const segments: JsonPathSegment[] = [];
  let i = 0;
  const skipSpace = (): void => {
    while (i < expression.length && " \t\n".includes(expression[i]!)) i++;
  };
  const field = (): string => {
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(expression.slice(i));
    if (match === null) return fail("syntax error: expected a field name");
    i += match[0].length;
    return match[0];
  };
  skipSpace();
  if (i < expression.length && expression[i] !== "[") segments.push(field());
  for (;;) {
    skipSpace();
    if (i >= expression.length) break;
    const char = expression[i]!;
    if (char === ".") {
      i++;
      skipSpace();
      segments.push(field());
    } else if (char === "[") {
      i++;
      skipSpace();
      if (expression[i] === '"') {
        const end = expression.slice(i + 1).search(/["\]]/);
        const stop = end === -1 ? expression.length : i + 1 + end;
        segments.push(expression.slice(i + 1, stop));
        i = stop + 1;
      } else {
        const match = /^\d+/.exec(expression.slice(i));
        if (match === null) fail("syntax error: expected an index or a quoted key");
        if (expression[i + match![0].length] === ".") fail("cannot use float as array index");
        segments.push(Number(match![0]));
        i += match![0].length;
      }
      skipSpace();
      if (expression[i] !== "]") fail("syntax error: expected ]");
      i++;
    } else fail(`unexpected char ${char}`);
  }
  if (segments.length === 0) fail("syntax error: empty expression");
  return segments;
}

/**
 * The first value at `path` (jsonparser.EachKey takes the first match): the object need not be well formed beyond
 * the match, and a malformed value at the path comes back as its error message.
 */
function lookup(text: string, path: JsonPathSegment[]): JsonValue | string | undefined {
  let container = text;
  let value: JsonValue | string | undefined;
  for (const segment of path) {
    if (value !== undefined) {
      if (typeof value === "string") return undefined;
      container = value.raw;
    }
    if (typeof segment === "string") {
      value = findMember(container, 0, segment);
      if (value === undefined) return undefined;
      continue;
    }
    const found: JsonValue[] = [];
    arrayEach(container, 0, (element, index) => {
      if (index !== segment) return true;
      found.push(element);
      return false;
    });
    value = found[0];
    if (value === undefined) return undefined;
  }
  return value;
}

/** `| json a="x.y", b="z[0]"`: only the named paths; a missing path yields an empty label. */
export function jsonParamsStage(params: ExtractionParam[]): StageFn {
  const paths = params.map((param) => parseJsonPath(param.expression));
  return (_ts, line, labels) => {
    if (line === "") return line;
    const first = line.charCodeAt(0);
    if (first !== 34 && first !== 123 && first !== 91) {
      labels.setError(JSON_ERROR);
      return line;
    }
    params.forEach((param, index) => {
      const value = lookup(line, paths[index]!);
      if (value === undefined) return;
      if (typeof value === "string") {
        labels.setError(JSON_ERROR, value);
        return;
      }
      const name = labels.parsedName(param.label);
      if (value.type === JsonType.Null) labels.set(name, "");
      else if (value.type === JsonType.Object) labels.set(name, value.raw);
      else labels.set(name, jsonStringValue(value.raw));
    });
    for (const param of params) if (labels.get(param.label) === undefined) labels.set(param.label, "");
    return line;
  };
}

/** `| unpack`: Promtail's packed entries; `_entry` replaces the line and the other string fields become labels. */
export function unpackStage(): StageFn {
  const pending: string[] = [];
  return (_ts, line, labels) => {
    if (line === "") return line;
    if (line.charCodeAt(0) !== 123) {
      labels.setError(JSON_ERROR, "expecting json object(6), but it is not");
      return line;
    }
    pending.length = 0;
    let entry: string | undefined;
    const error = objectEach(line, 0, (key, value) => {
      if (value.type !== JsonType.String) return undefined;
      if (key === "_entry") {
        entry = unescapeJson(value.raw);
        return entry === undefined ? MALFORMED_STRING_ESCAPE : undefined;
      }
      const name = labels.parsedName(key);
      if (labels.wasExtracted(name)) return undefined;
      pending.push(sanitizeLabelKey(name), jsonStringValue(value.raw));
      return undefined;
    });
    if (error !== undefined) {
      labels.setError(JSON_ERROR, error);
      return line;
    }
    if (entry === undefined) return line;
    for (let i = 0; i < pending.length; i += 2) if (!labels.extract(pending[i]!, pending[i + 1]!)) return null;
    return entry;
  };
}

/** A logfmt key as a label: its sanitized name, and whether the builder wants it under either name it may take. */
interface LogfmtKey {
  label: string;
  wanted: boolean;
}

/** `| logfmt [--strict] [--keep-empty]`. */
export function logfmtStage(strict: boolean, keepEmpty: boolean): StageFn {
  const decoder = new LogfmtDecoder();
  let keys = new KeyCache<LogfmtKey>();
  let keysOf: LabelsBuilder | undefined;
  let describe!: (raw: string) => LogfmtKey;
  return (_ts, line, labels) => {
    // Whether a key is wanted depends on the builder's required labels alone: known once per key, not per line.
    if (labels !== keysOf) {
      const builder = labels;
      keys = new KeyCache<LogfmtKey>();
      keysOf = builder;
      describe = (raw) => {
        const label = sanitizeLabelKey(raw);
        return { label, wanted: label !== "" && (builder.wants(label) || builder.wants(label + DUPLICATE_SUFFIX)) };
      };
    }
    decoder.reset(line);
    while (!decoder.eol()) {
      if (!decoder.scan()) {
        if (strict) break;
        continue;
      }
      const { label: key, wanted } = keys.get(decoder.key, describe);
      if (!wanted) continue;
      const name = labels.parsedName(key);
      if (labels.wasExtracted(name) || !labels.wants(name)) continue;
      let value = decoder.value;
      if (value.includes("\ufffd")) value = value.replaceAll("\ufffd", " ");
      if (!keepEmpty && value === "") continue;
      if (!labels.extract(name, value)) return null;
    }
    if (strict && decoder.err !== undefined) {
      labels.setError(LOGFMT_ERROR, decoder.err);
      if (!labels.continueParsing(ERROR_LABEL)) return null;
    }
    return line;
  };
}

/** Loki's logfmt expressions: a bare key or a quoted one. */
function parseLogfmtKey(expression: string): string {
  const text = expression.trim();
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(text)) return text;
  const quoted = /^"([^"]*)"$/.exec(text);
  if (quoted !== null) return quoted[1]!;
  throw new StageError(`cannot parse expression [${expression}]: syntax error`);
}

/**
 * `| logfmt a="key"`: Loki first creates every requested label empty, then fills it from the line. A key that
 * equals a requested label name also fills that label, as Loki's renaming loop does.
 */
export function logfmtParamsStage(params: ExtractionParam[], strict: boolean): StageFn {
  const sources = new Map<string, string>();
  for (const param of params) sources.set(param.label, parseLogfmtKey(param.expression));
  const decoder = new LogfmtDecoder();
  const keys = new KeyCache();
  return (_ts, line, labels) => {
    for (const label of sources.keys()) if (labels.parsedName(label) === label) labels.set(label, "");
    decoder.reset(line);
    while (!decoder.eol()) {
      if (!decoder.scan()) {
        if (strict) break;
        continue;
      }
      let key = keys.get(decoder.key, sanitizeLabelKey);
      if (key === "") continue;
      for (const [label, source] of sources) {
        if (key === source) {
          key = label;
          break;
        }
      }
      if (!sources.has(key)) continue;
      const value = decoder.value.includes("\ufffd") ? "" : decoder.value;
      const name = labels.parsedName(key);
      if (name !== key && labels.wasExtracted(name)) break;
      labels.set(name, value);
    }
    if (strict && decoder.err !== undefined) labels.setError(LOGFMT_ERROR, decoder.err);
    return line;
  };
}

/** `| regexp "(?P<name>...)"`: each named group becomes a label; a line that does not match is kept as is. */
export function regexpStage(pattern: string): StageFn {
  const regex = compileRe2(pattern);
  const names = groupNames(regex);
  if (names.length === 0) throw new StageError("at least one named capture must be supplied");
  const keys = names.map(sanitizeLabelKey);
  return (_ts, line, labels) => {
    const match = regex.exec(line);
    if (match === null) return line;
    const groups = match.groups!;
    for (let index = 0; index < names.length; index++) {
      const key = keys[index]!;
      if (key === "") continue;
      const name = labels.parsedName(key);
      if (labels.wasExtracted(name)) continue;
      if (!labels.extract(name, groups[names[index]!] ?? "")) return null;
    }
    return line;
  };
}

/** `| pattern "<ip> - <_> <status>"`. */
export function patternStage(pattern: string): StageFn {
  const matcher = compilePattern(pattern);
  return (_ts, line, labels) => {
    const captures = matcher.matches(line);
    for (let index = 0; index < captures.length; index++) {
      const name = labels.parsedName(matcher.names[index]!);
      if (labels.wasExtracted(name)) continue;
      if (!labels.extract(name, captures[index]!)) return null;
    }
    return line;
  };
}
