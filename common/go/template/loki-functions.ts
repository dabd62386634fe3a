import { goParseBytes, goParseDurationSeconds } from "../parse.js";
import { compileRe2, expandReplacement, replaceAllMatches, type Re2 } from "../../regex.js";
import { parseGoTime } from "../time-layout.js";
import { fn, int, str, stringFn, time, type TemplateFunction } from "./signature.js";
import { floorDiv, trimSet, trimSpace, ZERO_TIME } from "./sprig.js";
import { GoInt, GoTime } from "./values.js";

// Loki's own template functions (pkg/logql/log/fmt.go) and the values of the entry being formatted.

/** url.QueryEscape: everything but unreserved characters is escaped, spaces become `+`. */
function queryEscape(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (char) => "%" + char.charCodeAt(0).toString(16).toUpperCase())
    .replaceAll("%20", "+");
}

function queryUnescape(text: string): string {
  const bad = /%(?![0-9a-fA-F]{2})(.{0,2})/.exec(text);
  if (bad !== null) throw new Error(`invalid URL escape ${JSON.stringify("%" + bad[1])}`);
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === "%") {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (char === "+") bytes.push(32);
    else bytes.push(...Buffer.from(char));
  }
  return Buffer.from(bytes).toString("utf8");
}

const regexCache = new Map<string, Re2>();

/** Template regexes arrive as strings at run time; each distinct one is compiled once. */
function replaceAll(pattern: string, text: string, replacement: (match: RegExpExecArray) => string): string {
  let regex = regexCache.get(pattern);
  if (regex === undefined) {
    regex = compileRe2(pattern);
    if (regexCache.size < 1024) regexCache.set(pattern, regex);
  }
  return replaceAllMatches(regex, text, replacement);
}

function align2(count: number, text: string, left: boolean): string {
  const points = [...text];
  if (count < 0 || count === points.length) return text;
  const pad = count - points.length;
  if (pad > 0) return left ? text + " ".repeat(pad) : " ".repeat(pad) + text;
  return left ? points.slice(0, count).join("") : points.slice(points.length - count).join("");
}

/** Loki's b64dec: restores missing padding; a decoding error becomes the output. */
function base64Decode(text: string): string {
  let padded = text;
  const remainder = padded.length % 4;
  if (remainder !== 0 && remainder !== 1) padded += "=".repeat(4 - remainder);
  const invalid =
    /[^A-Za-z0-9+/=]/.exec(padded) ?? (padded.length % 4 !== 0 ? { index: padded.length - (padded.length % 4) } : null);
  if (invalid !== null) return `illegal base64 data at input byte ${invalid.index}`;
  const padding = padded.indexOf("=");
  if (padding !== -1 && !/^={1,2}$/.test(padded.slice(padding))) return `illegal base64 data at input byte ${padding}`;
  return Buffer.from(padded, "base64").toString("utf8");
}

function unixToTime(epoch: string): GoTime {
  const fail = (detail: string): never => {
    throw new Error(`unable to parse time '${epoch}': ${detail}`);
  };
  if (!/^[+-]?\d+$/.test(epoch)) fail(`strconv.ParseInt: parsing ${JSON.stringify(epoch)}: invalid syntax`);
  const value = BigInt(epoch);
  switch (epoch.length) {
    case 5:
      return new GoTime(value * 86_400_000_000_000n);
    case 10:
      return new GoTime(value * 1_000_000_000n);
    case 13:
      return new GoTime(value * 1_000_000n);
    case 16:
      return new GoTime(value * 1_000n);
    case 19:
      return new GoTime(value);
    default:
      return fail("%!w(<nil>)");
  }
}

export const LOKI_FUNCTIONS = new Map<string, TemplateFunction>([
  ["ToLower", stringFn((s) => s.toLowerCase())],
  ["ToUpper", stringFn((s) => s.toUpperCase())],
  [
    "Replace",
    fn(["string", "string", "string", "int"], ([s, old, replacement, n]) => {
      const text = str(s!);
      const count = int(n!);
      if (count < 0) return text.split(str(old!)).join(str(replacement!));
      let out = text;
      let from = 0;
      for (let i = 0; i < count; i++) {
        const at = out.indexOf(str(old!), from);
        if (at === -1) break;
        out = out.slice(0, at) + str(replacement!) + out.slice(at + str(old!).length);
        from = at + str(replacement!).length + (str(old!) === "" ? 1 : 0);
      }
      return out;
    }),
  ],
  ["Trim", fn(["string", "string"], ([s, cutset]) => trimSet(str(s!), str(cutset!), true, true))],
  ["TrimLeft", fn(["string", "string"], ([s, cutset]) => trimSet(str(s!), str(cutset!), true, false))],
  ["TrimRight", fn(["string", "string"], ([s, cutset]) => trimSet(str(s!), str(cutset!), false, true))],
  [
    "TrimPrefix",
    fn(["string", "string"], ([s, prefix]) =>
      str(s!).startsWith(str(prefix!)) ? str(s!).slice(str(prefix!).length) : str(s!),
    ),
  ],
  [
    "TrimSuffix",
    fn(["string", "string"], ([s, suffix]) =>
      str(suffix!) !== "" && str(s!).endsWith(str(suffix!)) ? str(s!).slice(0, -str(suffix!).length) : str(s!),
    ),
  ],
  ["TrimSpace", stringFn(trimSpace)],
  [
    "regexReplaceAll",
    fn(["string", "string", "string"], ([re, s, repl]) =>
      replaceAll(str(re!), str(s!), (match) => expandReplacement(str(repl!), match)),
    ),
  ],
  [
    "regexReplaceAllLiteral",
    fn(["string", "string", "string"], ([re, s, repl]) => replaceAll(str(re!), str(s!), () => str(repl!))),
  ],
  [
    "count",
    fn(["string", "string"], ([re, s]) => {
      let count = 0;
      replaceAll(str(re!), str(s!), () => {
        count++;
        return "";
      });
      return new GoInt(count);
    }),
  ],
  ["urldecode", stringFn(queryUnescape)],
  ["urlencode", stringFn(queryEscape)],
  [
    "bytes",
    fn(["string"], ([s]) => {
      const parsed = goParseBytes(str(s!));
      if (parsed.error !== undefined) throw new Error(parsed.error);
      return parsed.value;
    }),
  ],
  ...(["duration", "duration_seconds"] as const).map((name): [string, TemplateFunction] => [
    name,
    fn(["string"], ([s]) => {
      const parsed = goParseDurationSeconds(str(s!));
      if (parsed.error !== undefined) throw new Error(parsed.error);
      return parsed.value;
    }),
  ]),
  ["unixEpochMillis", fn(["time"], ([t]) => String(floorDiv(time(t!), 1_000_000n)))],
  ["unixEpochNanos", fn(["time"], ([t]) => String(time(t!)))],
  [
    "toDateInZone",
    fn(["string", "string", "string"], ([layout, zone, s]) => {
      const ns = parseGoTime(str(layout!), str(s!), str(zone!));
      return ns === undefined ? ZERO_TIME : new GoTime(ns);
    }),
  ],
  ["unixToTime", fn(["string"], ([s]) => unixToTime(str(s!)))],
  ["alignLeft", fn(["int", "string"], ([count, s]) => align2(int(count!), str(s!), true))],
  ["alignRight", fn(["int", "string"], ([count, s]) => align2(int(count!), str(s!), false))],
  ["b64dec", stringFn(base64Decode)],

  // Per-entry values
  ["__line__", { params: [], call: (_args, context) => context.line }],
  ["__timestamp__", { params: [], call: (_args, context) => new GoTime(context.tsNs) }],
]);
