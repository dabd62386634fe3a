import { type Labels, NO_LABELS } from "../../../proto/labels.js";
import type { QueryResult } from "../../logql/evaluation/evaluator.js";
import { jsonStage, logfmtStage } from "../../../common/logql/pipeline/parsers.js";
import { ERROR_DETAILS_LABEL, ERROR_LABEL, LabelsBuilder } from "../../../common/logql/pipeline/labels-builder.js";
import { type FieldType, fieldType, valueForQuery } from "./field-types.js";

// /loki/api/v1/detected_fields and /detected_field/<name>/values, with the semantics of Loki's query frontend
// (pkg/querier/queryrange/detected_fields.go): the newest `line_limit` entries of a log query are read with their
// labels by category; each entry's structured metadata are fields without a parser, and its line is parsed as JSON,
// else as logfmt (plus whatever the query's own parsers extracted), each label found being a field of that parser.
// A field's type is that of its value in the last entry read (streams in label order, each newest first), as in
// Loki. Cardinality is counted exactly (Loki estimates it with a HyperLogLog sketch, which is exact or within a
// few percent at these sizes): at most `line_limit` values per field are ever read.

type Streams = Extract<QueryResult, { type: "streams" }>["streams"];

export interface DetectedField {
  label: string;
  type: FieldType;
  cardinality: number;
  parsers: string[] | null;
  jsonPath?: string[];
}

/** Labels Loki leaves out of detected fields: the error labels a parser sets. */
const NOT_FIELDS = new Set([ERROR_LABEL, ERROR_DETAILS_LABEL, "__preserve_error__"]);

interface LineFields {
  parser: "json" | "logfmt";
  labels: Labels;
  paths: Map<string, string[]>;
}

/** Parses lines as Loki's detected fields do: as JSON, and when that fails as logfmt. */
class LineParser {
  private readonly paths = new Map<string, string[]>();
  private readonly json = jsonStage(this.paths);
  private readonly logfmt = logfmtStage(false, false);
  private readonly builder = new LabelsBuilder();

  parse(line: string, streamLabels: Labels): LineFields | undefined {
    this.paths.clear();
    this.builder.reset(streamLabels, NO_LABELS);
    let parser: LineFields["parser"] = "json";
    this.json(0n, line, this.builder);
    if (this.builder.err !== "") {
      parser = "logfmt";
      this.builder.reset(streamLabels, NO_LABELS);
      this.logfmt(0n, line, this.builder);
      if (this.builder.err !== "") return undefined;
    }
    return { parser, labels: this.builder.categories().parsed, paths: this.paths };
  }
}

interface EntryFields {
  metadata: Labels;
  /** Values by name: the query's own parsed labels and those of the line. */
  parsed: Map<string, Set<string>>;
  parsers: string[];
  paths: Map<string, string[]> | undefined;
}

function* entryFields(streams: Streams): Generator<EntryFields> {
  const parser = new LineParser();
  for (const stream of streams) {
    for (const [, line, categories] of stream.entries) {
      const parsed = new Map<string, Set<string>>();
      const add = (name: string, value: string) => {
        if (NOT_FIELDS.has(name)) return;
        let values = parsed.get(name);
        if (values === undefined) parsed.set(name, (values = new Set()));
        values.add(value);
      };
      for (const name in categories?.parsed) add(name, categories.parsed[name]!);
      const fields = parser.parse(line, stream.labels);
      if (fields !== undefined) for (const name in fields.labels) add(name, fields.labels[name]!);
      yield {
        metadata: categories?.metadata ?? NO_LABELS,
        parsed,
        parsers: fields === undefined ? [] : [fields.parser],
        paths: fields?.parser === "json" ? fields.paths : undefined,
      };
    }
  }
}

interface Field {
  type: FieldType;
  parsers: string[];
  values: Set<string>;
  jsonPath: string[] | undefined;
}

/** At most `limit` fields, the first seen, sorted by name. */
export function detectedFields(streams: Streams, limit: number): DetectedField[] {
  const fields = new Map<string, Field>();
  const fieldOf = (name: string, parsers: string[]): Field | undefined => {
    let field = fields.get(name);
    if (field === undefined && fields.size < limit) {
      field = { type: "string", parsers: [...parsers], values: new Set(), jsonPath: undefined };
      fields.set(name, field);
    }
    return field;
  };
  for (const entry of entryFields(streams)) {
    for (const name in entry.metadata) {
      const field = fieldOf(name, []);
      if (field === undefined) continue;
      const value = entry.metadata[name]!;
      field.type = fieldType(value);
      field.values.add(value);
    }
    for (const [name, values] of entry.parsed) {
      const field = fieldOf(name, entry.parsers);
      if (field === undefined) continue;
      for (const parser of entry.parsers) if (!field.parsers.includes(parser)) field.parsers.push(parser);
      if (entry.paths !== undefined) field.jsonPath = entry.paths.get(name);
      let first = true;
      for (const value of values) {
        if (first) field.type = fieldType(value);
        first = false;
        field.values.add(value);
      }
    }
  }
  return [...fields]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([label, field]) => {
      const detected: DetectedField = {
        label,
        type: field.type,
        cardinality: field.values.size,
        parsers: field.parsers.length === 0 ? null : field.parsers,
      };
      if (field.jsonPath !== undefined) detected.jsonPath = field.jsonPath;
      return detected;
    });
}

/**
 * The distinct values of one field, sorted: from structured metadata as they are, from parsed labels rewritten
 * for a query when they read as bytes. Reading stops at the entry where `limit` values are reached, as in Loki.
 */
export function detectedFieldValues(streams: Streams, name: string, limit: number): string[] {
  const values = new Set<string>();
  for (const entry of entryFields(streams)) {
    if (values.size >= limit) break;
    const fromMetadata = entry.metadata[name];
    if (fromMetadata !== undefined) values.add(fromMetadata);
    for (const value of entry.parsed.get(name) ?? []) values.add(valueForQuery(value));
  }
  return [...values].sort();
}
