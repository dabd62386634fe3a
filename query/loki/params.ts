import type { Direction } from "../../storage/store.js";
import { parseDurationNs } from "../../common/logql/syntax/units.js";

// Request parameters as Loki reads them (pkg/loghttp/params.go): the same time formats, defaults and limits, so
// that Grafana, logcli and scripts written against Loki behave the same here.

/** A bad parameter; the API answers 400 with the message as Loki's plain-text body. */
export class ParamError extends Error {
  override readonly name = "ParamError";
}

/** The parameters of one request, from the query string and, for POST, a form-encoded body. */
export type RequestParams = Map<string, string[]>;

export function param(params: RequestParams, name: string): string | undefined {
  const values = params.get(name);
  return values === undefined || values.length === 0 ? undefined : values[0];
}

const DIGITS = /^-?\d+$/;
const FLOAT = /^-?\d+\.\d*$|^-?\d*\.\d+$/;

/**
 * A timestamp in nanoseconds: integer with at most 10 digits = Unix seconds, longer = nanoseconds; with a `.` =
 * float seconds; otherwise RFC3339 (with up to nanosecond fractions).
 */
export function parseTimestampNs(text: string, name: string): bigint {
  if (DIGITS.test(text)) {
    const digits = text.replace("-", "");
    return digits.length <= 10 ? BigInt(text) * 1_000_000_000n : BigInt(text);
  }
  if (FLOAT.test(text)) {
    // Loki rounds float seconds to milliseconds.
    return BigInt(Math.round(Number(text) * 1000)) * 1_000_000n;
  }
  const rfc = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(text);
  if (rfc !== null) {
    const wholeMs = Date.parse(`${rfc[1]}${rfc[3]!.toUpperCase()}`);
    if (!Number.isNaN(wholeMs)) {
      const fraction = BigInt((rfc[2] ?? "").padEnd(9, "0"));
      return BigInt(wholeMs) * 1_000_000n + fraction;
    }
  }
  throw new ParamError(`invalid ${name}: cannot parse "${text}" to a valid timestamp`);
}

/** A duration given as float seconds (`15`, `0.5`) or a Prometheus duration (`15000ms`, `5m`). */
export function parseDurationParamNs(text: string, name: string): bigint {
  if (DIGITS.test(text) || FLOAT.test(text)) {
    const seconds = Number(text);
    if (Number.isFinite(seconds)) return BigInt(Math.round(seconds * 1e9));
  }
  const ns = parseDurationNs(text);
  if (ns === undefined) throw new ParamError(`invalid ${name}: cannot parse "${text}" to a valid duration`);
  return ns;
}

const DEFAULT_SINCE_NS = 3_600_000_000_000n;

/** `start`/`end`/`since` as Loki resolves them: end defaults to now, start to end - since (1h). */
export function timeRange(params: RequestParams, nowNs: bigint): { startNs: bigint; endNs: bigint } {
  const endText = param(params, "end");
  const endNs = endText === undefined ? nowNs : parseTimestampNs(endText, "end");
  const sinceText = param(params, "since");
  const sinceNs = sinceText === undefined ? DEFAULT_SINCE_NS : parseDurationParamNs(sinceText, "since");
  const startText = param(params, "start");
  // A future end would otherwise push the default start into the future too.
  const startNs =
    startText === undefined ? (endNs > nowNs ? nowNs : endNs) - sinceNs : parseTimestampNs(startText, "start");
  if (endNs < startNs) throw new ParamError("end timestamp must not be before or equal to start time");
  return { startNs, endNs };
}

export function limitParam(params: RequestParams, fallback: number): number {
  const text = param(params, "limit");
  if (text === undefined || text === "") return fallback;
  if (!DIGITS.test(text)) throw new ParamError(`invalid limit: cannot parse "${text}" as an integer`);
  const limit = Number(text);
  if (limit <= 0) throw new ParamError("limit must be a positive value");
  return limit;
}

export function directionParam(params: RequestParams): Direction {
  const text = (param(params, "direction") ?? "backward").toLowerCase();
  if (text !== "forward" && text !== "backward") {
    throw new ParamError(`invalid direction "${text}": expected forward or backward`);
  }
  return text;
}

/** Loki caps a range query at this many steps. */
export const MAX_POINTS = 11_000n;

/** `step`, defaulting as Loki does to max(floor(range / 250), 1s); at most MAX_POINTS steps. */
export function stepParam(params: RequestParams, startNs: bigint, endNs: bigint): bigint {
  const text = param(params, "step");
  let stepNs: bigint;
  if (text === undefined || text === "") {
    const seconds = (endNs - startNs) / 1_000_000_000n / 250n;
    stepNs = (seconds > 1n ? seconds : 1n) * 1_000_000_000n;
  } else {
    stepNs = parseDurationParamNs(text, "step");
  }
  if (stepNs <= 0n) {
    throw new ParamError("zero or negative query resolution step widths are not accepted. Try a positive integer");
  }
  if ((endNs - startNs) / stepNs > MAX_POINTS) {
    throw new ParamError(
      "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
    );
  }
  return stepNs;
}

/** `interval` of a log query_range: at most one entry per interval per stream. */
export function intervalParam(params: RequestParams): bigint | undefined {
  const text = param(params, "interval");
  if (text === undefined || text === "") return undefined;
  const intervalNs = parseDurationParamNs(text, "interval");
  if (intervalNs < 0n) throw new ParamError("negative interval widths are not accepted");
  return intervalNs === 0n ? undefined : intervalNs;
}
