// Go reference-time layouts (`2006-01-02T15:04:05Z07:00`) for the template functions date, toDate and
// toDateInZone. Times are nanoseconds since the epoch; formatting is in UTC, parsing honours an offset in the text
// or else the given IANA zone.

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Layout elements, longest first where one is a prefix of another. */
const ELEMENTS = [
  "January",
  "Monday",
  "2006",
  "Z07:00:00",
  "-07:00:00",
  "Z07:00",
  "-07:00",
  "Z0700",
  "-0700",
  "Z07",
  "-07",
  "Jan",
  "Mon",
  "MST",
  "002",
  "__2",
  "_2",
  "01",
  "02",
  "03",
  "04",
  "05",
  "06",
  "15",
  "PM",
  "pm",
  "1",
  "2",
  "3",
  "4",
  "5",
];

type Element = { literal: string } | { element: string } | { fraction: string };

const layoutCache = new Map<string, Element[]>();

function tokenize(layout: string): Element[] {
  const cached = layoutCache.get(layout);
  if (cached !== undefined) return cached;
  const out: Element[] = [];
  let literal = "";
  for (let i = 0; i < layout.length;) {
    const fraction = /^[.,](0+|9+)/.exec(layout.slice(i));
    if (fraction !== null && !/\d/.test(layout[i + fraction[0].length] ?? "")) {
      if (literal !== "") out.push({ literal });
      literal = "";
      out.push({ fraction: fraction[0] });
      i += fraction[0].length;
      continue;
    }
    const element = ELEMENTS.find((candidate) => layout.startsWith(candidate, i));
    if (element === undefined) {
      literal += layout[i];
      i++;
      continue;
    }
    if (literal !== "") out.push({ literal });
    literal = "";
    out.push({ element });
    i += element.length;
  }
  if (literal !== "") out.push({ literal });
  if (layoutCache.size < 256) layoutCache.set(layout, out);
  return out;
}

const pad = (value: number, width: number): string => String(value).padStart(width, "0");

export function formatGoTime(ns: bigint, layout: string): string {
  const ms = Number(ns / 1_000_000n - (ns % 1_000_000n < 0n ? 1n : 0n));
  const date = new Date(ms);
  const nanos = Number(((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n);
  const hour = date.getUTCHours();
  const dayOfYear =
    Math.floor(
      (Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()) - Date.UTC(date.getUTCFullYear(), 0, 1)) /
        86400000,
    ) + 1;
  let out = "";
  for (const part of tokenize(layout)) {
    if ("literal" in part) {
      out += part.literal;
      continue;
    }
    if ("fraction" in part) {
      const digits = part.fraction.length - 1;
      const text = pad(nanos, 9).slice(0, digits);
      out +=
        part.fraction[1] === "9"
          ? text.replace(/0+$/, "") === ""
            ? ""
            : part.fraction[0] + text.replace(/0+$/, "")
          : part.fraction[0] + text;
      continue;
    }
    switch (part.element) {
      case "2006":
        out += pad(date.getUTCFullYear(), 4);
        break;
      case "06":
        out += pad(date.getUTCFullYear() % 100, 2);
        break;
      case "January":
        out += MONTHS[date.getUTCMonth()];
        break;
      case "Jan":
        out += MONTHS[date.getUTCMonth()]!.slice(0, 3);
        break;
      case "01":
        out += pad(date.getUTCMonth() + 1, 2);
        break;
      case "1":
        out += String(date.getUTCMonth() + 1);
        break;
      case "Monday":
        out += DAYS[date.getUTCDay()];
        break;
      case "Mon":
        out += DAYS[date.getUTCDay()]!.slice(0, 3);
        break;
      case "02":
        out += pad(date.getUTCDate(), 2);
        break;
      case "_2":
        out += String(date.getUTCDate()).padStart(2, " ");
        break;
      case "2":
        out += String(date.getUTCDate());
        break;
      case "002":
        out += pad(dayOfYear, 3);
        break;
      case "__2":
        out += String(dayOfYear).padStart(3, " ");
        break;
      case "15":
        out += pad(hour, 2);
        break;
      case "03":
        out += pad(hour % 12 === 0 ? 12 : hour % 12, 2);
        break;
      case "3":
        out += String(hour % 12 === 0 ? 12 : hour % 12);
        break;
      case "04":
        out += pad(date.getUTCMinutes(), 2);
        break;
      case "4":
        out += String(date.getUTCMinutes());
        break;
      case "05":
        out += pad(date.getUTCSeconds(), 2);
        break;
      case "5":
        out += String(date.getUTCSeconds());
        break;
      case "PM":
        out += hour >= 12 ? "PM" : "AM";
        break;
      case "pm":
        out += hour >= 12 ? "pm" : "am";
        break;
      case "MST":
        out += "UTC";
        break;
      case "Z07:00:00":
      case "Z07:00":
      case "Z0700":
      case "Z07":
        out += "Z";
        break;
      case "-07:00:00":
        out += "+00:00:00";
        break;
      case "-07:00":
        out += "+00:00";
        break;
      case "-0700":
        out += "+0000";
        break;
      case "-07":
        out += "+00";
        break;
    }
  }
  return out;
}

const zoneFormatters = new Map<string, Intl.DateTimeFormat | null>();

/** Offset of an IANA zone from UTC at an instant, in milliseconds; undefined for an unknown zone. */
function zoneOffsetMs(zone: string, utcMs: number): number | undefined {
  let formatter = zoneFormatters.get(zone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat("en-US", {
        timeZone: zone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      });
    } catch {
      formatter = null;
    }
    zoneFormatters.set(zone, formatter);
  }
  if (formatter === null) return undefined;
  const parts: Record<string, number> = {};
  for (const part of formatter.formatToParts(new Date(utcMs))) parts[part.type] = Number(part.value);
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return wall - Math.floor(utcMs / 1000) * 1000;
}

/** time.ParseInLocation; undefined when the text does not fit the layout. `zone` "" or "UTC" means UTC. */
export function parseGoTime(layout: string, text: string, zone = "UTC"): bigint | undefined {
  let year = 1;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let nanos = 0;
  let pm: boolean | undefined;
  let offsetSeconds: number | undefined;
  let rest = text;
  const take = (pattern: RegExp): string | undefined => {
    const match = pattern.exec(rest);
    if (match === null) return undefined;
    rest = rest.slice(match[0].length);
    return match[0];
  };
  const parts = tokenize(layout);
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index]!;
    if ("literal" in part) {
      if (!rest.startsWith(part.literal)) return undefined;
      rest = rest.slice(part.literal.length);
      continue;
    }
    if ("fraction" in part) {
      const digits = take(
        part.fraction[1] === "9" ? /^(?:[.,]\d+)?/ : new RegExp(`^[.,]\\d{${part.fraction.length - 1}}`),
      );
      if (digits === undefined) return undefined;
      if (digits !== "") nanos = Number(digits.slice(1, 10).padEnd(9, "0"));
      continue;
    }
    let value: string | undefined;
    switch (part.element) {
      case "2006":
        value = take(/^\d{4}/);
        if (value !== undefined) year = Number(value);
        break;
      case "06":
        value = take(/^\d{2}/);
        if (value !== undefined) year = Number(value) + (Number(value) >= 69 ? 1900 : 2000);
        break;
      case "January":
      case "Jan": {
        const names = part.element === "Jan" ? MONTHS.map((m) => m.slice(0, 3)) : MONTHS;
        const found = names.findIndex((name) => rest.toLowerCase().startsWith(name.toLowerCase()));
        if (found !== -1) {
          value = rest.slice(0, names[found]!.length);
          rest = rest.slice(value.length);
          month = found + 1;
        }
        break;
      }
      case "Monday":
      case "Mon": {
        const names = part.element === "Mon" ? DAYS.map((d) => d.slice(0, 3)) : DAYS;
        const found = names.find((name) => rest.toLowerCase().startsWith(name.toLowerCase()));
        if (found !== undefined) {
          value = found;
          rest = rest.slice(found.length);
        }
        break;
      }
      case "01":
        value = take(/^\d{2}/);
        if (value !== undefined) month = Number(value);
        break;
      case "1":
        value = take(/^\d{1,2}/);
        if (value !== undefined) month = Number(value);
        break;
      case "02":
        value = take(/^\d{2}/);
        if (value !== undefined) day = Number(value);
        break;
      case "_2":
        value = take(/^[ \d]\d/);
        if (value !== undefined) day = Number(value.trim());
        break;
      case "2":
        value = take(/^\d{1,2}/);
        if (value !== undefined) day = Number(value);
        break;
      case "002":
      case "__2":
        value = take(/^[ \d]{2}\d/);
        break;
      case "15":
        value = take(/^\d{1,2}/);
        if (value !== undefined) hour = Number(value);
        break;
      case "03":
        value = take(/^\d{2}/);
        if (value !== undefined) hour = Number(value);
        break;
      case "3":
        value = take(/^\d{1,2}/);
        if (value !== undefined) hour = Number(value);
        break;
      case "04":
        value = take(/^\d{2}/);
        if (value !== undefined) minute = Number(value);
        break;
      case "4":
        value = take(/^\d{1,2}/);
        if (value !== undefined) minute = Number(value);
        break;
      case "05":
      case "5": {
        value = take(part.element === "05" ? /^\d{2}/ : /^\d{1,2}/);
        if (value !== undefined) second = Number(value);
        // Go accepts a fraction after the seconds even when the layout has none.
        const next = parts[index + 1];
        if (value !== undefined && !(next !== undefined && "fraction" in next)) {
          const fraction = take(/^[.,]\d+/);
          if (fraction !== undefined) nanos = Number(fraction.slice(1, 10).padEnd(9, "0"));
        }
        break;
      }
      case "PM":
      case "pm":
        value = take(/^[AaPp][Mm]/);
        if (value !== undefined) pm = value.toLowerCase() === "pm";
        break;
      case "MST":
        value = take(/^[A-Z]{3,5}|^[+-]\d+/);
        break;
      default: {
        const z = part.element.startsWith("Z") ? take(/^Z/) : undefined;
        if (z !== undefined) {
          value = z;
          offsetSeconds = 0;
          break;
        }
        value = take(/^[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?/);
        if (value !== undefined) {
          const digits = value.slice(1).replaceAll(":", "");
          const seconds =
            Number(digits.slice(0, 2)) * 3600 +
            Number(digits.slice(2, 4) || "0") * 60 +
            Number(digits.slice(4, 6) || "0");
          offsetSeconds = value[0] === "-" ? -seconds : seconds;
        }
      }
    }
    if (value === undefined) return undefined;
  }
  if (rest !== "") return undefined;
  if (pm !== undefined) {
    if (hour > 12) return undefined;
    if (pm && hour < 12) hour += 12;
    if (!pm && hour === 12) hour = 0;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
  date.setUTCFullYear(year);
  if (date.getUTCDate() !== day) return undefined;
  let utcMs = date.getTime();
  if (offsetSeconds !== undefined) utcMs -= offsetSeconds * 1000;
  else if (zone !== "" && zone !== "UTC") {
    const guess = zoneOffsetMs(zone, utcMs);
    if (guess !== undefined) utcMs -= zoneOffsetMs(zone, utcMs - guess) ?? guess;
  }
  return BigInt(utcMs) * 1_000_000n + BigInt(nanos);
}

/** time.Time.String() in UTC: `2022-06-27 12:00:00.12 +0000 UTC`, trailing zeros of the fraction dropped. */
export function formatGoTimeString(ns: bigint): string {
  return formatGoTime(ns, "2006-01-02 15:04:05.999999999 -0700 MST");
}

/** Go's zero time.Time as JSON writes it. */
export const GO_ZERO_TIME = "0001-01-01T00:00:00Z";

/** Go's time.Time JSON form (RFC 3339 with trailing zeros of the fraction trimmed); 0 is Go's zero time. */
export function formatGoTimeJson(ms: number): string {
  if (ms === 0) return GO_ZERO_TIME;
  return new Date(ms).toISOString().replace(/\.?0*Z$/, "Z");
}
