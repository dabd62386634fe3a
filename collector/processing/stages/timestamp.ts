import { z } from "zod";
import { duration, list } from "../../../common/config.js";
import { parseGoTime } from "../../../common/go/time-layout.js";
import { persistedLabelsText } from "../../../proto/labels.js";
import { defineStage, failed, sourceText } from "../pipeline/stage.js";

// Promtail's `timestamp` stage: the entry takes the time an extracted value holds, read with a Go reference
// layout or one of Go's named layouts (Promtail's list), or as Unix seconds, milliseconds, microseconds or
// nanoseconds. Layouts without a zone read in `location`; layouts without a year take the current year (the
// previous one if that lies ahead), as Promtail does. When no format reads the value, `fudge` gives the entry
// the stream's last time plus 1ns (keeping its order) and `skip` keeps the time it was read.
//
// Beyond Promtail: a time further back than `max_age` or ahead of `max_future` is not taken (it fails as an
// unreadable one, counted as too_old or in_future): such entries would be refused downstream by Loki's window.

export const NAMED_LAYOUTS: Readonly<Record<string, string>> = {
  ANSIC: "Mon Jan _2 15:04:05 2006",
  UnixDate: "Mon Jan _2 15:04:05 MST 2006",
  RubyDate: "Mon Jan 02 15:04:05 -0700 2006",
  RFC822: "02 Jan 06 15:04 MST",
  RFC822Z: "02 Jan 06 15:04 -0700",
  RFC850: "Monday, 02-Jan-06 15:04:05 MST",
  RFC1123: "Mon, 02 Jan 2006 15:04:05 MST",
  RFC1123Z: "Mon, 02 Jan 2006 15:04:05 -0700",
  RFC3339: "2006-01-02T15:04:05Z07:00",
  RFC3339Nano: "2006-01-02T15:04:05.999999999Z07:00",
};

const UNIX_SCALE: Readonly<Record<string, bigint>> = {
  UnixMs: 1_000_000n,
  UnixUs: 1_000n,
  UnixNs: 1n,
};

type Reader = (text: string, nowMs: number) => bigint | undefined;

function unixSeconds(text: string): bigint | undefined {
  const match = /^(-?\d+)(?:\.(\d{1,9})\d*)?$/.exec(text.trim());
  if (match === null) return undefined;
  return BigInt(match[1]!) * 1_000_000_000n + BigInt((match[2] ?? "").padEnd(9, "0"));
}

function hasZone(layout: string): boolean {
  return /MST|Z07|-07|Z0700|-0700/.test(layout);
}

/** A reader for one format; `location` applies to layouts without a zone. */
export function formatReader(format: string, location: string): Reader {
  if (format === "Unix") return (text) => unixSeconds(text);
  const scale = UNIX_SCALE[format];
  if (scale !== undefined) return (text) => (/^-?\d+$/.test(text.trim()) ? BigInt(text.trim()) * scale : undefined);
  const layout = NAMED_LAYOUTS[format] ?? format;
  const zone = hasZone(layout) ? "UTC" : location || "UTC";
  if (/2006|06/.test(layout.replace(/15:04:05|\.0+|\.9+/g, ""))) return (text) => parseGoTime(layout, text, zone);
  return (text, nowMs) => {
    const year = new Date(nowMs).getUTCFullYear();
    const ns = parseGoTime(`2006 ${layout}`, `${year} ${text}`, zone);
    if (ns === undefined || ns <= BigInt(nowMs + 86_400_000) * 1_000_000n) return ns;
    return parseGoTime(`2006 ${layout}`, `${year - 1} ${text}`, zone);
  };
}

const FUDGE_STREAMS = 10_000;

export const timestampStage = defineStage({
  schema: z
    .strictObject({
      source: z.string().min(1).describe("extracted value holding the time"),
      format: z
        .string()
        .min(1)
        .describe(
          "Go reference layout (2006-01-02 15:04:05), a Go named layout (RFC3339, RFC3339Nano, ANSIC, RFC1123...), or Unix, UnixMs, UnixUs, UnixNs",
        ),
      fallback_formats: list(z.string().min(1)).default([]).describe("formats tried in order when `format` fails"),
      location: z
        .string()
        .default("")
        .refine((zone) => zone === "" || validZone(zone), "expected an IANA time zone such as Europe/Berlin")
        .describe("IANA time zone of layouts without one; empty: UTC"),
      action_on_failure: z
        .enum(["fudge", "skip"])
        .default("fudge")
        .describe("fudge: the stream's last time plus 1ns; skip: keep the time the entry was read"),
      max_age: duration(z.number().int().min(0))
        .default(7 * 86_400_000)
        .describe("a time older than this (from when the entry was read) is not taken; 0: no limit"),
      max_future: duration(z.number().int().min(0))
        .default(600_000)
        .describe("a time further ahead than this is not taken; 0: no limit"),
    })
    .describe("take the entry's time from an extracted value"),
  compile(config, context) {
    const readers = [config.format, ...config.fallback_formats].map((f) => formatReader(f, config.location));
    const last = new Map<string, bigint>();
    const fudge = config.action_on_failure === "fudge";
    const [missing, unreadable, tooOld, inFuture] = ["missing_source", "unreadable", "too_old", "in_future"].map(
      failed,
    );
    const maxAgeNs = BigInt(config.max_age) * 1_000_000n;
    const maxFutureNs = BigInt(config.max_future) * 1_000_000n;
    return (entry) => {
      const text = sourceText(entry, config.source);
      let ns: bigint | undefined;
      if (text !== undefined) {
        const nowMs = context.now();
        for (const read of readers) if ((ns = read(text, nowMs)) !== undefined) break;
      }
      let outcome = text === undefined ? missing : ns === undefined ? unreadable : undefined;
      if (ns !== undefined && maxAgeNs > 0n && ns < entry.readUnixNano - maxAgeNs) outcome = tooOld;
      if (ns !== undefined && maxFutureNs > 0n && ns > entry.readUnixNano + maxFutureNs) outcome = inFuture;
      const key = fudge ? persistedLabelsText(entry.labels) : "";
      if (outcome === undefined) {
        entry.timeUnixNano = ns!;
        if (fudge) {
          if (last.size >= FUDGE_STREAMS && !last.has(key)) last.clear();
          last.set(key, ns!);
        }
        return undefined;
      }
      const previous = fudge ? last.get(key) : undefined;
      if (previous !== undefined) {
        entry.timeUnixNano = previous + 1n;
        last.set(key, previous + 1n);
      }
      return outcome;
    };
  },
});

function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
