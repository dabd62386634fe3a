import { parsePromDuration } from "./syntax/selector-parser.js";

// Request parameters as Prometheus' HTTP API reads them (web/api/v1/api.go parseTime and parseDuration).

export class BadParameter extends Error {
  override readonly name = "BadParameter";
}

/** Prometheus' own minimum and maximum times as it prints them, accepted back as parameters. */
const MIN_TIME_TEXT = "-292273086-05-16T16:47:06Z";
const MAX_TIME_TEXT = "292277025-08-18T07:12:54.999999999Z";
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Unix seconds (a float, kept to the millisecond) or RFC 3339, as milliseconds. */
export function parseTimeParam(text: string, minMs: number, maxMs: number): number {
  if (text === MIN_TIME_TEXT) return minMs;
  if (text === MAX_TIME_TEXT) return maxMs;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text.trim())) {
    const seconds = Number(text);
    const whole = Math.trunc(seconds);
    return whole * 1000 + Math.round((seconds - whole) * 1000);
  }
  const match = RFC3339.exec(text);
  if (match !== null) {
    const ms = Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
    if (!Number.isNaN(ms)) return ms;
  }
  throw new BadParameter(`cannot parse ${JSON.stringify(text)} to a valid timestamp`);
}

/** Float seconds or a Prometheus duration (`15s`, `1m30s`), as milliseconds. */
export function parseDurationParam(text: string): number {
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text.trim())) {
    const ms = Number(text) * 1000;
    // Go's int64 nanosecond limit as Prometheus compares it, rounded to a double as it rounds it.
    // eslint-disable-next-line no-loss-of-precision
    if (!Number.isFinite(ms) || Math.abs(ms) > 9.223372036854775e15) {
      throw new BadParameter(`cannot parse ${JSON.stringify(text)} to a valid duration. It overflows int64`);
    }
    return Math.trunc(ms);
  }
  const ms = parsePromDuration(text);
  if (ms === undefined) throw new BadParameter(`cannot parse ${JSON.stringify(text)} to a valid duration`);
  return ms;
}
