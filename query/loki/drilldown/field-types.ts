import { goParseBytes, goParseDurationSeconds, goParseFloat } from "../../../common/go/parse.js";

// The type Loki gives a detected field from one of its values (pkg/querier/queryrange/detected_fields.go): the
// first of Go's strconv.ParseInt, ParseFloat, ParseBool, time.ParseDuration and go-humanize's ParseBytes that
// accepts it, else string. Grafana offers the field's filters by this type.

export type FieldType = "int" | "float" | "boolean" | "duration" | "bytes" | "string";

const INT64_MAX = 9223372036854775807n;
const GO_BOOLEANS = new Set(["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"]);

function isGoInt64(value: string): boolean {
  if (!/^[+-]?\d+$/.test(value)) return false;
  const n = BigInt(value);
  return n <= INT64_MAX && n >= -INT64_MAX - 1n;
}

export function fieldType(value: string): FieldType {
  if (isGoInt64(value)) return "int";
  if (goParseFloat(value).error === undefined) return "float";
  if (GO_BOOLEANS.has(value)) return "boolean";
  if (goParseDurationSeconds(value).error === undefined) return "duration";
  if (goParseBytes(value).error === undefined) return "bytes";
  return "string";
}

/** Unit endings after which Loki rewrites a value that reads as bytes (its allowedBytesUnits). */
const BYTES_UNIT_ENDINGS = ["b", "k", "m", "g", "t", "p", "e", "i"];

/**
 * A parsed value as /detected_field/<name>/values lists it: one that reads as bytes with a unit is rewritten the
 * way go-humanize prints bytes, without the space ("12KB" -> "12kB", "4096" stays), so that it can go straight into
 * a LogQL bytes filter.
 */
export function valueForQuery(value: string): string {
  const lower = value.toLowerCase();
  // Every allowed unit ends in one of these letters (b, kib, ki, k, ...).
  if (!BYTES_UNIT_ENDINGS.some((ending) => lower.endsWith(ending))) return value;
  const bytes = goParseBytes(value);
  return bytes.error === undefined ? humanizeBytes(bytes.value).replace(" ", "") : value;
}

const SI_SIZES = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/** go-humanize's Bytes: SI units, one decimal below 10, Go's %.0f (half to even) above. */
export function humanizeBytes(bytes: number): string {
  if (bytes < 10) return `${bytes} B`;
  const exponent = Math.floor(Math.log(bytes) / Math.log(1000));
  const value = Math.floor((bytes / 1000 ** exponent) * 10 + 0.5) / 10;
  const text = value < 10 ? value.toFixed(1) : roundHalfEven(value).toFixed(0);
  return `${text} ${SI_SIZES[exponent]}`;
}

function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}
