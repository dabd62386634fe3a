import { goParseFloat } from "../../common/go/parse.js";
import type { Labels } from "../../proto/labels.js";

// The two text formats a Prometheus target serves, read as Prometheus 2.42 reads them (model/textparse):
//
// - text 0.0.4 (text/plain): spaces and tabs between tokens, blank lines, free comments, an optional trailing
//   comma (and even a missing comma) between labels, timestamps in integer milliseconds, the last line's newline
//   optional. Blanks before a sample's name are part of the name (which the scrape then refuses), and a NUL
//   where a line starts ends the input, as Prometheus's lexer has it.
// - OpenMetrics 1.0 (application/openmetrics-text): one space between tokens, no blank lines, no other comments
//   than HELP, TYPE and UNIT, timestamps in seconds, exemplars after ` # ` on _total and _bucket series, and the
//   input ends with `# EOF`.
//
// Label values unescape \\, \" and \n; another escape keeps its backslash. Values are Go floats (NaN, Inf,
// +Inf, -Inf, Infinity in any case; no hex, no underscores; out of range is an error). Anything else fails the
// whole exposition, with the line it is on, as it fails Prometheus's scrape. No npm parser reads both formats
// this way (parse-prometheus-text-format, the only maintained one, folds histograms and knows no OpenMetrics).

export type ExpositionFormat = "text" | "openmetrics";

export type MetricType =
  "counter" | "gauge" | "histogram" | "gaugehistogram" | "summary" | "info" | "stateset" | "unknown";

export interface ExposedSample {
  /** The series as written (`name{labels}`), the key a scrape caches its label set by. */
  series: string;
  name: string;
  value: number;
  /** The sample's own timestamp, when it has one. */
  timestampMs: number | undefined;
  /** The TYPE of the sample's metric family; unknown without one. */
  type: MetricType;
  /** The family the TYPE line named (`http_requests` for `http_requests_total`), or the name itself. */
  family: string;
}

export class ExpositionError extends Error {
  override readonly name = "ExpositionError";
  constructor(message: string, line: number, text: string) {
    const shown = text.length > 80 ? `${text.slice(0, 80)}...` : text;
    super(`line ${line}: ${message}: ${JSON.stringify(shown)}`);
  }
}

/** Which parser a target's Content-Type asks for, as Prometheus chooses: OpenMetrics by name, text otherwise. */
export function formatOf(contentType: string | undefined): ExpositionFormat {
  const media = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return media === "application/openmetrics-text" ? "openmetrics" : "text";
}

const TEXT_TYPES: Record<string, MetricType> = {
  counter: "counter",
  gauge: "gauge",
  histogram: "histogram",
  summary: "summary",
  untyped: "unknown",
};

const OPENMETRICS_TYPES: Record<string, MetricType> = {
  counter: "counter",
  gauge: "gauge",
  histogram: "histogram",
  gaugehistogram: "gaugehistogram",
  summary: "summary",
  info: "info",
  stateset: "stateset",
  unknown: "unknown",
};

/** The sample-name suffixes of each type's family, longest first. */
const FAMILY_SUFFIXES: Partial<Record<MetricType, string[]>> = {
  counter: ["_created", "_total"],
  histogram: ["_created", "_bucket", "_count", "_sum"],
  gaugehistogram: ["_gcount", "_bucket", "_gsum"],
  summary: ["_created", "_count", "_sum"],
  info: ["_info"],
};

const isNameStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
const isNameChar = (c: number) => isNameStart(c) || (c >= 48 && c <= 57);
const isMetricStart = (c: number) => isNameStart(c) || c === 58;
const isMetricChar = (c: number) => isNameChar(c) || c === 58;
const isBlank = (c: number) => c === 32 || c === 9;
const NEWLINE = 10;

/** Reads one exposition, calling `onSample` for each sample in order; throws ExpositionError at the first fault. */
export function parseExposition(
  body: string,
  format: ExpositionFormat,
  onSample: (sample: ExposedSample) => void,
): void {
  new Parser(body, format, onSample).run();
}

class Parser {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  private readonly families = new Map<string, MetricType>();
  private readonly typeOfName = new Map<string, { type: MetricType; family: string }>();
  private readonly strict: boolean;

  constructor(
    private readonly body: string,
    format: ExpositionFormat,
    private readonly onSample: (sample: ExposedSample) => void,
  ) {
    this.strict = format === "openmetrics";
  }

  private fail(message: string): never {
    const end = this.body.indexOf("\n", this.lineStart);
    throw new ExpositionError(message, this.line, this.body.slice(this.lineStart, end < 0 ? undefined : end));
  }

  private code(at = this.pos): number {
    return at < this.body.length ? this.body.charCodeAt(at) : -1;
  }

  private skipBlanks(): void {
    if (this.strict) return;
    while (isBlank(this.code())) this.pos++;
  }

  private nextLine(): void {
    this.line++;
    this.lineStart = this.pos;
  }

  run(): void {
    const body = this.body;
    for (;;) {
      if (this.pos >= body.length) {
        if (this.strict) this.fail("data does not end with # EOF");
        return;
      }
      const lineStart = this.pos;
      this.skipBlanks();
      const c = this.code();
      if (c === -1 || (c === 0 && !this.strict)) return;
      if (c === NEWLINE) {
        if (this.strict) this.fail("unexpected blank line");
        this.pos++;
        this.nextLine();
        continue;
      }
      if (c === 35 /* # */) {
        if (this.comment()) return;
        continue;
      }
      if (!isMetricStart(c)) this.fail("not a valid start token");
      this.sample(lineStart);
    }
  }

  /** A `#` line; true when it ended the input (`# EOF`, or a final text comment without a newline). */
  private comment(): boolean {
    const body = this.body;
    this.pos++;
    if (this.strict) {
      if (body.startsWith(" EOF", this.pos)) {
        this.pos += 4;
        if (this.code() === NEWLINE) this.pos++;
        if (this.pos < body.length) this.fail("unexpected data after # EOF");
        return true;
      }
      const keyword = /^ (HELP|TYPE|UNIT) /.exec(body.slice(this.pos, this.pos + 6));
      if (keyword === null) this.fail("a comment other than HELP, TYPE, UNIT or EOF");
      this.pos += 6;
      return this.metadata(keyword[1]!);
    }
    if (isBlank(this.code())) {
      this.skipBlanks();
      const keyword = /^(HELP|TYPE)[ \t]/.exec(body.slice(this.pos, this.pos + 5));
      if (keyword !== null) {
        this.pos += 4;
        this.skipBlanks();
        return this.metadata(keyword[1]!);
      }
    }
    const end = body.indexOf("\n", this.pos);
    if (end < 0) return true;
    this.pos = end + 1;
    this.nextLine();
    return false;
  }

  private metadata(keyword: string): boolean {
    const body = this.body;
    const nameStart = this.pos;
    if (!isMetricStart(this.code())) this.fail(`expected metric name after ${keyword}`);
    while (isMetricChar(this.code())) this.pos++;
    const name = body.slice(nameStart, this.pos);
    let end = body.indexOf("\n", this.pos);
    if (end < 0) {
      if (this.strict) this.fail(`expected text in ${keyword}`);
      end = body.length;
    }
    const rest = body.slice(this.pos, end);
    let text: string;
    if (this.strict) {
      if (!rest.startsWith(" ")) this.fail(`expected text in ${keyword}`);
      text = rest.slice(1);
    } else text = rest.length > 1 ? rest.slice(1) : "";
    if (keyword === "TYPE") {
      const type = (this.strict ? OPENMETRICS_TYPES : TEXT_TYPES)[text];
      if (type === undefined) this.fail(`invalid metric type ${JSON.stringify(text)}`);
      this.families.set(name, type);
      this.typeOfName.clear();
    } else if (keyword === "UNIT" && text !== "" && !name.endsWith(`_${text}`)) {
      this.fail(`unit not a suffix of metric ${JSON.stringify(name)}`);
    }
    this.pos = end + 1;
    this.nextLine();
    return false;
  }

  /** A sample line; `start` is where the line starts, blanks before the name included. */
  private sample(start: number): void {
    const body = this.body;
    while (isMetricChar(this.code())) this.pos++;
    const name = body.slice(start, this.pos);
    let seriesEnd = this.pos;
    this.skipBlanks();
    if (this.code() === 123 /* { */) {
      this.pos++;
      this.labels();
      seriesEnd = this.pos;
      this.skipBlanks();
    }
    const series = body.slice(start, seriesEnd);
    const value = this.number("metric");
    let timestampMs: number | undefined;
    if (this.strict) {
      const c = this.code();
      if (c === -1) this.fail("data does not end with # EOF");
      if (c === 32 && body.startsWith(" # {", this.pos)) this.exemplar(name);
      else if (c === 32) {
        timestampMs = this.openMetricsTimestamp();
        if (body.startsWith(" # {", this.pos)) this.exemplar(name);
        else if (this.code() !== NEWLINE) this.fail("expected next entry after timestamp");
      } else if (c !== NEWLINE) this.fail("expected timestamp or # symbol");
    } else {
      this.skipBlanks();
      const c = this.code();
      if (c >= 48 && c <= 57) {
        const tsStart = this.pos;
        while (this.code() >= 48 && this.code() <= 57) this.pos++;
        timestampMs = Number(body.slice(tsStart, this.pos));
        if (!Number.isSafeInteger(timestampMs) && BigInt(body.slice(tsStart, this.pos)) > 9223372036854775807n)
          this.fail("timestamp out of range");
        this.skipBlanks();
        if (this.code() !== NEWLINE && this.code() !== -1) this.fail("expected next entry after timestamp");
      } else if (c !== NEWLINE && c !== -1) this.fail("expected timestamp or new record");
    }
    this.pos++;
    this.nextLine();
    const { type, family } = this.typeOf(name);
    this.onSample({ series, name, value, timestampMs, type, family });
  }

  /** A value token: after the series (and, in OpenMetrics, exactly one space). */
  private number(after: string): number {
    const body = this.body;
    if (this.strict) {
      if (this.code() !== 32) this.fail(`expected value after ${after}`);
      this.pos++;
    }
    const start = this.pos;
    for (;;) {
      const c = this.code();
      if (c === -1 || c === NEWLINE || c === 32 || (!this.strict && (c === 9 || c === 123 || c === 0))) break;
      this.pos++;
    }
    if (this.pos === start) this.fail(`expected value after ${after}`);
    const text = body.slice(start, this.pos);
    const value = goParseFloat(text).value;
    if (value === undefined) this.fail(`invalid value ${JSON.stringify(text)}`);
    return value;
  }

  private openMetricsTimestamp(): number {
    const body = this.body;
    this.pos++;
    const start = this.pos;
    while (this.code() !== -1 && this.code() !== NEWLINE && this.code() !== 32) this.pos++;
    const seconds = goParseFloat(body.slice(start, this.pos)).value;
    if (seconds === undefined || !Number.isFinite(seconds)) this.fail("invalid timestamp");
    return Math.trunc(seconds * 1000);
  }

  /** ` # {labels} value [timestamp]` after an OpenMetrics sample; checked, then left out. */
  private exemplar(name: string): void {
    if (!name.endsWith("_total") && !name.endsWith("_bucket"))
      this.fail(`metric name ${name} does not support exemplars`);
    this.pos += 4;
    this.labels();
    this.number("exemplar labels");
    const c = this.code();
    if (c === 32) this.openMetricsTimestamp();
    if (this.code() === -1) this.fail("data does not end with # EOF");
    if (this.code() !== NEWLINE) this.fail("expected next entry after exemplar timestamp");
  }

  /** The label pairs after `{`, up to and past `}`. */
  private labels(): void {
    let first = true;
    for (;;) {
      this.skipBlanks();
      let c = this.code();
      if (c === 125 /* } */) {
        this.pos++;
        return;
      }
      if (this.strict && !first) {
        if (c !== 44 /* , */) this.fail("expected comma or right brace");
        this.pos++;
        c = this.code();
      }
      if (!isNameStart(c)) this.fail("expected label name");
      while (isNameChar(this.code())) this.pos++;
      this.skipBlanks();
      if (this.code() !== 61 /* = */) this.fail("expected equal");
      this.pos++;
      this.skipBlanks();
      if (this.code() !== 34 /* " */) this.fail("expected label value");
      this.pos++;
      for (;;) {
        const v = this.code();
        if (v === -1 || v === 0) this.fail("unterminated label value");
        this.pos++;
        if (v === 34) break;
        if (v === 92 /* \ */) {
          const escaped = this.code();
          if (escaped === -1 || escaped === NEWLINE) this.fail("invalid escape in label value");
          this.pos++;
        } else if (v === NEWLINE) {
          if (this.strict) this.fail("newline in label value");
          this.line++;
        }
      }
      first = false;
      if (!this.strict) {
        this.skipBlanks();
        if (this.code() === 44) this.pos++;
      }
    }
  }

  private typeOf(name: string): { type: MetricType; family: string } {
    let known = this.typeOfName.get(name);
    if (known !== undefined) return known;
    known = { type: "unknown", family: name };
    const own = this.families.get(name);
    if (own !== undefined) known = { type: own, family: name };
    else {
      for (const [type, suffixes] of Object.entries(FAMILY_SUFFIXES) as [MetricType, string[]][]) {
        const suffix = suffixes.find((s) => name.endsWith(s) && this.families.get(name.slice(0, -s.length)) === type);
        if (suffix !== undefined) {
          known = { type, family: name.slice(0, -suffix.length) };
          break;
        }
      }
    }
    this.typeOfName.set(name, known);
    return known;
  }
}

/**
 * The label set of a series as parseExposition returned it (already checked), with its name as `__name__`;
 * throws ExpositionError on a label given twice, which fails Prometheus's scrape too.
 */
export function seriesLabels(series: string): Labels {
  const labels: Labels = Object.create(null);
  let pos = 0;
  while (isBlank(series.charCodeAt(pos))) pos++;
  while (pos < series.length && isMetricChar(series.charCodeAt(pos))) pos++;
  labels["__name__"] = series.slice(0, pos);
  const brace = series.indexOf("{", pos);
  if (brace < 0) return labels;
  pos = brace + 1;
  for (;;) {
    while (pos < series.length && (isBlank(series.charCodeAt(pos)) || series[pos] === ",")) pos++;
    if (pos >= series.length || series[pos] === "}") return labels;
    const start = pos;
    while (isNameChar(series.charCodeAt(pos))) pos++;
    const name = series.slice(start, pos);
    pos = series.indexOf('"', pos) + 1;
    let value = "";
    let from = pos;
    for (;;) {
      const c = series[pos];
      if (c === '"') break;
      if (c === "\\") {
        const next = series[pos + 1];
        const unescaped = next === '"' ? '"' : next === "\\" ? "\\" : next === "n" ? "\n" : undefined;
        if (unescaped !== undefined) {
          value += series.slice(from, pos) + unescaped;
          pos += 2;
          from = pos;
          continue;
        }
      }
      pos++;
    }
    value += series.slice(from, pos);
    pos++;
    if (name in labels) throw new ExpositionError(`label name ${JSON.stringify(name)} is not unique`, 0, series);
    labels[name] = value;
  }
}
