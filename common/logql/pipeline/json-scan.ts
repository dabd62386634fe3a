// A lenient JSON scanner that reproduces github.com/grafana/jsonparser, the library behind Loki's `json` and
// `unpack` stages: it walks the text without building objects, hands out raw value text (numbers keep their
// spelling, `1.50` stays `1.50`), accepts trailing garbage after the closing brace and reports errors with
// jsonparser's messages, which Loki copies into `__error_details__`.

export const enum JsonType {
  String,
  Number,
  Object,
  Array,
  Boolean,
  Null,
}

export const MALFORMED_OBJECT = "Value looks like object, but can't find closing '}' symbol";
export const MALFORMED_JSON = "Malformed JSON error";
export const MALFORMED_STRING = "Value is string, but can't find closing '\"' symbol";
export const MALFORMED_ARRAY = "Value is array, but can't find closing ']' symbol";
export const MALFORMED_VALUE = "Value looks like Number/Boolean/None, but can't find its end: ',' or '}' symbol";
export const UNKNOWN_VALUE_TYPE = "Unknown value type";
export const MALFORMED_STRING_ESCAPE = "Encountered an invalid escape sequence in a string";

export interface JsonValue {
  type: JsonType;
  /** Raw text of the value; strings without their quotes and still escaped. */
  raw: string;
  /** Offset just past the value. */
  end: number;
}

function isSpace(code: number): boolean {
  return code === 32 || code === 10 || code === 13 || code === 9;
}

/** Offset of the first non-whitespace character at or after `from`, or -1. */
export function nextToken(text: string, from: number): number {
  for (let i = from; i < text.length; i++) if (!isSpace(text.charCodeAt(i))) return i;
  return -1;
}

/** Offset just past the closing quote of a string whose body starts at `from`, or -1. */
function stringEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 92) i++;
    else if (code === 34) return i + 1;
  }
  return -1;
}

function blockEnd(text: string, from: number, open: number, close: number): number {
  let level = 0;
  for (let i = from; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 34) {
      const end = stringEnd(text, i + 1);
      if (end === -1) return -1;
      i = end - 1;
    } else if (code === open) level++;
    else if (code === close && --level === 0) return i + 1;
  }
  return -1;
}

function tokenEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (isSpace(code) || code === 44 || code === 125 || code === 93) return i;
  }
  return text.length;
}

/** jsonparser.Get on the value starting at or after `from`. */
export function readValue(text: string, from: number): JsonValue | string {
  const start = nextToken(text, from);
  if (start === -1) return MALFORMED_JSON;
  const first = text.charCodeAt(start);
  if (first === 34) {
    const end = stringEnd(text, start + 1);
    if (end === -1) return MALFORMED_STRING;
    return { type: JsonType.String, raw: text.slice(start + 1, end - 1), end };
  }
  if (first === 91 || first === 123) {
    const end = blockEnd(text, start, first, first + 2);
    if (end === -1) return first === 91 ? MALFORMED_ARRAY : MALFORMED_OBJECT;
    return { type: first === 91 ? JsonType.Array : JsonType.Object, raw: text.slice(start, end), end };
  }
  const end = tokenEnd(text, start);
  const raw = text.slice(start, end);
  if (first === 116 || first === 102) {
    if (raw !== "true" && raw !== "false") return UNKNOWN_VALUE_TYPE;
    return { type: JsonType.Boolean, raw, end };
  }
  if (first === 110 || first === 117) {
    if (raw !== "null") return UNKNOWN_VALUE_TYPE;
    return { type: JsonType.Null, raw, end };
  }
  if (first === 45 || (first >= 48 && first <= 57)) return { type: JsonType.Number, raw, end };
  return UNKNOWN_VALUE_TYPE;
}

/** Stops objectEach without an error. */
export const STOP = Symbol("stop");

/**
 * jsonparser.ObjectEach: calls `visit` for every member of the object at `from`, in order. Returns an error
 * message, or undefined when the object was read to its closing brace (anything after it is ignored).
 */
export function objectEach(
  text: string,
  from: number,
  visit: (key: string, value: JsonValue) => string | typeof STOP | undefined,
): string | undefined {
  return members(
    text,
    from,
    undefined,
    visit as (key: string, value: JsonValue | string) => string | typeof STOP | undefined,
  );
}

/**
 * The value of the first member named `wanted` in the object at `from`, which need not be closed after it; a
 * string when that value is malformed; undefined when there is no such member before the object breaks off.
 */
export function findMember(text: string, from: number, wanted: string): JsonValue | string | undefined {
  let found: JsonValue | string | undefined;
  members(text, from, wanted, (_key, value) => {
    found = value;
    return STOP;
  });
  return found;
}

function members(
  text: string,
  from: number,
  wanted: string | undefined,
  visit: (key: string, value: JsonValue | string) => string | typeof STOP | undefined,
): string | undefined {
  let offset = nextToken(text, from);
  if (offset === -1 || text.charCodeAt(offset) !== 123) return MALFORMED_OBJECT;
  offset = nextToken(text, offset + 1);
  if (offset === -1) return MALFORMED_JSON;
  while (offset < text.length) {
    const code = text.charCodeAt(offset);
    if (code === 125) return undefined;
    if (code !== 34) return MALFORMED_OBJECT;
    const keyEnd = stringEnd(text, offset + 1);
    if (keyEnd === -1) return MALFORMED_JSON;
    let key = text.slice(offset + 1, keyEnd - 1);
    if (key.includes("\\")) {
      const unescaped = unescapeJson(key);
      if (unescaped === undefined) return MALFORMED_STRING_ESCAPE;
      key = unescaped;
    }
    offset = nextToken(text, keyEnd);
    if (offset === -1 || text.charCodeAt(offset) !== 58) return MALFORMED_JSON;
    if (wanted !== undefined && key !== wanted) {
      const skipped = readValue(text, offset + 1);
      if (typeof skipped === "string") return skipped;
      offset = nextToken(text, skipped.end);
      if (offset === -1) return MALFORMED_ARRAY;
      const separator = text.charCodeAt(offset);
      if (separator !== 44) return separator === 125 ? undefined : MALFORMED_OBJECT;
      offset = nextToken(text, offset + 1);
      if (offset === -1) return MALFORMED_ARRAY;
      continue;
    }
    const value = readValue(text, offset + 1);
    if (typeof value === "string" && wanted === undefined) return value;
    const outcome = visit(key, value);
    if (outcome === STOP) return undefined;
    if (outcome !== undefined) return outcome;
    if (typeof value === "string") return value;
    offset = nextToken(text, value.end);
    if (offset === -1) return MALFORMED_ARRAY;
    const separator = text.charCodeAt(offset);
    if (separator === 125) return undefined;
    if (separator !== 44) return MALFORMED_OBJECT;
    offset = nextToken(text, offset + 1);
    if (offset === -1) return MALFORMED_ARRAY;
  }
  return MALFORMED_OBJECT;
}

/** Calls `visit` for every element of the array at `from`; stops quietly at the first malformed element. */
export function arrayEach(text: string, from: number, visit: (value: JsonValue, index: number) => boolean): void {
  let offset = nextToken(text, from);
  if (offset === -1 || text.charCodeAt(offset) !== 91) return;
  offset = nextToken(text, offset + 1);
  for (let index = 0; offset !== -1 && text.charCodeAt(offset) !== 93; index++) {
    const value = readValue(text, offset);
    if (typeof value === "string" || !visit(value, index)) return;
    offset = nextToken(text, value.end);
    if (offset === -1 || text.charCodeAt(offset) !== 44) return;
    offset = nextToken(text, offset + 1);
  }
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** jsonparser.Unescape: undefined for an invalid escape sequence. */
export function unescapeJson(raw: string): string | undefined {
  let index = raw.indexOf("\\");
  if (index === -1) return raw;
  let out = raw.slice(0, index);
  while (index < raw.length) {
    const escape = raw[index + 1];
    if (escape === undefined) return undefined;
    if (escape === "u") {
      const high = hex4(raw, index + 2);
      if (high === -1) return undefined;
      index += 6;
      if (high >= 0xd800 && high < 0xe000) {
        // jsonparser refuses a surrogate that is not the high half of a valid pair
        const low = raw[index] === "\\" && raw[index + 1] === "u" ? hex4(raw, index + 2) : -1;
        if (high >= 0xdc00 || low < 0xdc00 || low >= 0xe000) return undefined;
        out += String.fromCharCode(high, low);
        index += 6;
      } else out += String.fromCharCode(high);
    } else {
      const simple = SIMPLE_ESCAPES[escape];
      if (simple === undefined) return undefined;
      out += simple;
      index += 2;
    }
    const next = raw.indexOf("\\", index);
    const stop = next === -1 ? raw.length : next;
    out += raw.slice(index, stop);
    index = stop;
  }
  return out;
}

function hex4(text: string, from: number): number {
  const digits = text.slice(from, from + 4);
  return /^[0-9a-fA-F]{4}$/.test(digits) ? parseInt(digits, 16) : -1;
}

/**
 * Loki's unescapeJSONString: an undecodable string becomes empty, and replacement characters (invalid UTF-8 in
 * Go) become spaces because Prometheus rejects them in label values.
 */
export function jsonStringValue(raw: string): string {
  const value = unescapeJson(raw);
  if (value === undefined) return "";
  return value.includes("\ufffd") ? value.replaceAll("\ufffd", " ") : value;
}
