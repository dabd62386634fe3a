// RFC 3339 timestamps as log formats write them (syslog's RFC 5424, the CRI and Docker container logs), read to
// the nanosecond: Date.parse keeps milliseconds only.

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

/** Nanoseconds of an RFC 3339 timestamp (RFC 5424's TIMESTAMP), keeping its sub-millisecond digits. */
export function rfc3339Nanos(text: string): bigint | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms) || Number(mo) > 12 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return undefined;
  // Date.UTC rolls February 31 over into March; a day the month does not have is not a date.
  if (Number(mo) < 1 || new Date(ms).getUTCDate() !== Number(d)) return undefined;
  let offsetMinutes = 0;
  if (zone !== "Z" && zone !== "z") {
    const sign = zone!.startsWith("-") ? -1 : 1;
    offsetMinutes = sign * (Number(zone!.slice(1, 3)) * 60 + Number(zone!.slice(4, 6)));
  }
  const nanos = BigInt((frac ?? "").padEnd(9, "0"));
  return (BigInt(ms) - BigInt(offsetMinutes) * 60_000n) * 1_000_000n + nanos;
}
