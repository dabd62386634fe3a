// Cases rewritten as data from Grafana Loki's own expectations (pkg/logql/log/*_test.go), plus edge cases of the
// label builder, error labels and the template engine whose Loki behaviour was read from its source.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Labels } from "../proto/labels.js";
import type { DropKeepItem, LabelFilterExpr, LabelFormatItem, Stage, Unwrap } from "../common/logql/syntax/ast.js";
import { compilePipeline, compileUnwrap } from "../query/logql/pipeline/pipeline.js";
import type { MatchOp } from "../storage/store.js";

function labels(record: Record<string, string> = {}): Labels {
  return Object.assign(Object.create(null) as Labels, record);
}

function plain(record: Labels): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

interface Run {
  line: string;
  labels: Record<string, string>;
}

function run(
  stages: Stage[],
  line: string,
  stream: Record<string, string> = {},
  metadata: Record<string, string> = {},
  tsNs = 0n,
): Run | null {
  const result = compilePipeline(stages).process(tsNs, line, labels(stream), labels(metadata));
  return result === null ? null : { line: result.line, labels: plain(result.labels) };
}

const json = (params: [string, string][] = []): Stage => ({
  kind: "json",
  pos: 0,
  params: params.map(([label, expression]) => ({ label, expression })),
});
const logfmt = (opts: { strict?: boolean; keepEmpty?: boolean; params?: [string, string][] } = {}): Stage => ({
  kind: "logfmt",
  pos: 0,
  strict: opts.strict ?? false,
  keepEmpty: opts.keepEmpty ?? false,
  params: (opts.params ?? []).map(([label, expression]) => ({ label, expression })),
});
const regexp = (pattern: string): Stage => ({ kind: "regexp", pos: 0, pattern });
const pattern = (text: string): Stage => ({ kind: "pattern", pos: 0, pattern: text });
const unpack: Stage = { kind: "unpack", pos: 0 };
const lineFilter = (op: "|=" | "!=" | "|~" | "!~" | "|>" | "!>", ...values: string[]): Stage => ({
  kind: "line_filter",
  pos: 0,
  op,
  values,
});
const ipLineFilter = (op: "|=" | "!=", ...values: string[]): Stage => ({
  kind: "line_filter",
  pos: 0,
  op,
  values,
  ip: values.map(() => true),
});
const filter = (expr: LabelFilterExpr): Stage => ({ kind: "label_filter", pos: 0, filter: expr });
const str = (name: string, op: MatchOp, value: string): LabelFilterExpr => ({
  kind: "string",
  pos: 0,
  name,
  op,
  value,
});
const num = (name: string, op: "==" | "!=" | ">" | ">=" | "<" | "<=", value: number): LabelFilterExpr => ({
  kind: "number",
  pos: 0,
  name,
  op,
  value,
});
const dur = (name: string, op: "==" | "!=" | ">" | ">=" | "<" | "<=", seconds: number): LabelFilterExpr => ({
  kind: "duration",
  pos: 0,
  name,
  op,
  seconds,
});
const bytes = (name: string, op: "==" | "!=" | ">" | ">=" | "<" | "<=", value: number): LabelFilterExpr => ({
  kind: "bytes",
  pos: 0,
  name,
  op,
  bytes: value,
});
const ip = (name: string, op: "=" | "!=", value: string): LabelFilterExpr => ({
  kind: "ip",
  pos: 0,
  name,
  op,
  pattern: value,
});
const and = (left: LabelFilterExpr, right: LabelFilterExpr): LabelFilterExpr => ({ kind: "and", pos: 0, left, right });
const or = (left: LabelFilterExpr, right: LabelFilterExpr): LabelFilterExpr => ({ kind: "or", pos: 0, left, right });
const lineFormat = (template: string): Stage => ({ kind: "line_format", pos: 0, template });
const labelFormat = (...items: LabelFormatItem[]): Stage => ({ kind: "label_format", pos: 0, items });
const tmpl = (label: string, template: string): LabelFormatItem => ({ kind: "template", label, template });
const rename = (label: string, from: string): LabelFormatItem => ({ kind: "rename", label, from });
const drop = (...items: (string | [string, MatchOp, string])[]): Stage => ({
  kind: "drop",
  pos: 0,
  items: items.map((item) =>
    typeof item === "string"
      ? { kind: "name", name: item }
      : { kind: "matcher", matcher: { name: item[0], op: item[1], value: item[2] } },
  ),
});
const keep = (...items: (string | [string, MatchOp, string])[]): Stage => ({
  kind: "keep",
  pos: 0,
  items: (drop(...items) as { items: DropKeepItem[] }).items,
});
const decolorize: Stage = { kind: "decolorize", pos: 0 };

interface Case {
  name: string;
  stages: Stage[];
  line: string;
  stream?: Record<string, string>;
  metadata?: Record<string, string>;
  ts?: bigint;
  /** Expected labels; null when the entry is dropped. */
  want: Record<string, string> | null;
  wantLine?: string;
}

function table(title: string, cases: Case[]): void {
  describe(title, () => {
    for (const c of cases) {
      it(c.name, () => {
        const got = run(c.stages, c.line, c.stream, c.metadata, c.ts);
        if (c.want === null) {
          assert.equal(got, null);
          return;
        }
        assert.notEqual(got, null, "entry was dropped");
        assert.deepEqual(got!.labels, plain(labels(c.want)));
        assert.equal(got!.line, c.wantLine ?? c.line);
      });
    }
  });
}

const JSON_LINE = `{"app":"foo","field with space":"value","field with ÜFT8👌":"value","null_field":null,"bool_field":false,"namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar", "params": [1,2,3,"string_value"]}}}`;
const JSON_ERR = "JSONParserErr";
const OBJECT_ERR = "Value looks like object, but can't find closing '}' symbol";

table("json", [
  {
    name: "multi depth",
    stages: [json()],
    line: `{"app":"foo","namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar"}}}`,
    want: { app: "foo", namespace: "prod", pod_uuid: "foo", pod_deployment_ref: "foobar" },
  },
  {
    name: "multi depth with duplicates",
    stages: [json()],
    line: `{"app":"bar","namespace":"prod","pod":{"uuid":"bar","deployment":{"ref":"foobar"}}}`,
    stream: { app: "foo", pod_uuid: "foo" },
    want: {
      app: "foo",
      app_extracted: "bar",
      namespace: "prod",
      pod_uuid: "foo",
      pod_uuid_extracted: "bar",
      pod_deployment_ref: "foobar",
    },
  },
  {
    name: "numbers keep their spelling",
    stages: [json()],
    line: `{"counter":1, "price": {"_net_":5.56909}, "big": 1.50e3}`,
    want: { counter: "1", price__net_: "5.56909", big: "1.50e3" },
  },
  {
    name: "whitespace key is skipped in the prefix",
    stages: [json()],
    line: `{" ": {"foo":"bar"}}`,
    want: { foo: "bar" },
  },
  {
    name: "whitespace key and subkey give an empty name",
    stages: [json()],
    line: `{" ": {" ":"bar"}}`,
    want: { "": "bar" },
  },
  { name: "empty key and subkey give an empty name", stages: [json()], line: `{"": {"":"bar"}}`, want: { "": "bar" } },
  {
    name: "escaped quotes",
    stages: [json()],
    line: `{"counter":1,"foo":"foo\\\\\\"bar"}`,
    want: { counter: "1", foo: `foo\\"bar` },
  },
  {
    name: "unicode escapes",
    stages: [json()],
    line: `{"msg":"caf\\u00e9 \\ud83d\\ude00 \\n"}`,
    want: { msg: "café 😀 \n" },
  },
  {
    name: "invalid escape becomes empty",
    stages: [json()],
    line: `{"msg":"bad \\x escape","ok":"1"}`,
    want: { msg: "", ok: "1" },
  },
  {
    name: "replacement character becomes a space",
    stages: [json()],
    line: `{"counter":1,"foo":"\ufffd"}`,
    want: { counter: "1", foo: " " },
  },
  {
    name: "arrays are skipped",
    stages: [json()],
    line: `{"counter":1, "price": {"net_":["10","20"]}}`,
    want: { counter: "1" },
  },
  {
    name: "nulls are skipped",
    stages: [json()],
    line: `{"a":null,"b":true,"c":false}`,
    want: { b: "true", c: "false" },
  },
  { name: "bad key replaced", stages: [json()], line: `{"cou-nter":1}`, want: { cou_nter: "1" } },
  {
    name: "nested bad key replaced, trailing garbage ignored",
    stages: [json()],
    line: `{"foo":{"cou-nter":1}}"`,
    want: { foo_cou_nter: "1" },
  },
  {
    name: "leading digit gets an underscore",
    stages: [json()],
    line: `{"1st":"a","x":{"2nd":"b"}}`,
    want: { _1st: "a", x_2nd: "b" },
  },
  {
    name: "multibyte key characters each become one underscore",
    stages: [json()],
    line: `{"ÜFT8👌":"v"}`,
    want: { _FT8_: "v" },
  },
  {
    name: "invalid object",
    stages: [json()],
    line: `{n}`,
    want: { __error__: JSON_ERR, __error_details__: OBJECT_ERR },
  },
  {
    name: "not json at all",
    stages: [json()],
    line: `level=info msg=hello`,
    want: { __error__: JSON_ERR, __error_details__: OBJECT_ERR },
  },
  { name: "empty line", stages: [json()], line: ``, want: { __error__: JSON_ERR, __error_details__: OBJECT_ERR } },
  {
    name: "labels before a syntax error are kept",
    stages: [json()],
    line: `{"a":"1","b":tru}`,
    want: { a: "1", __error__: JSON_ERR, __error_details__: "Unknown value type" },
  },
  {
    name: "unterminated string",
    stages: [json()],
    line: `{"a":"1`,
    want: { __error__: JSON_ERR, __error_details__: `Value is string, but can't find closing '"' symbol` },
  },
  {
    name: "duplicate extraction",
    stages: [json()],
    line: `{"app":"foo","namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar"}},"next":{"err":false}}`,
    stream: { app: "bar" },
    want: {
      app: "bar",
      app_extracted: "foo",
      namespace: "prod",
      pod_uuid: "foo",
      next_err: "false",
      pod_deployment_ref: "foobar",
    },
  },
  {
    name: "collision with structured metadata",
    stages: [json()],
    line: `{"app":"foo","namespace":"prod","pod":"pod_parsed"}`,
    metadata: { pod: "pod_sm" },
    want: { app: "foo", namespace: "prod", pod: "pod_sm", pod_extracted: "pod_parsed" },
  },
  { name: "a duplicate key keeps the first value", stages: [json()], line: `{"a":"1","a":"2"}`, want: { a: "1" } },
  {
    name: "a later parser does not overwrite an extracted label",
    stages: [regexp("(?P<a>x)"), logfmt()],
    line: "a=1 x",
    want: { a: "x" },
  },
]);

table("json with parameters", [
  { name: "single field", stages: [json([["app", "app"]])], line: JSON_LINE, want: { app: "foo" } },
  {
    name: "bracket syntax",
    stages: [json([["test", `["field with space"]`]])],
    line: JSON_LINE,
    want: { test: "value" },
  },
  {
    name: "multiple fields",
    stages: [
      json([
        ["app", "app"],
        ["namespace", "namespace"],
      ]),
    ],
    line: JSON_LINE,
    want: { app: "foo", namespace: "prod" },
  },
  { name: "utf8 key", stages: [json([["utf8", `["field with ÜFT8👌"]`]])], line: JSON_LINE, want: { utf8: "value" } },
  { name: "nested field", stages: [json([["uuid", "pod.uuid"]])], line: JSON_LINE, want: { uuid: "foo" } },
  { name: "nested field, bracket", stages: [json([["uuid", `pod["uuid"]`]])], line: JSON_LINE, want: { uuid: "foo" } },
  {
    name: "nested field, brackets",
    stages: [json([["uuid", `["pod"]["uuid"]`]])],
    line: JSON_LINE,
    want: { uuid: "foo" },
  },
  {
    name: "nested field, bracket then dot",
    stages: [json([["uuid", `["pod"].uuid`]])],
    line: JSON_LINE,
    want: { uuid: "foo" },
  },
  {
    name: "array element",
    stages: [json([["param", "pod.deployment.params[0]"]])],
    line: JSON_LINE,
    want: { param: "1" },
  },
  {
    name: "array string element",
    stages: [json([["param", "pod.deployment.params[3]"]])],
    line: JSON_LINE,
    want: { param: "string_value" },
  },
  {
    name: "object element not present",
    stages: [json([["undefined", `pod[""]`]])],
    line: JSON_LINE,
    want: { undefined: "" },
  },
  {
    name: "key access on an array",
    stages: [json([["param", `pod.deployment.params[""]`]])],
    line: JSON_LINE,
    want: { param: "" },
  },
  {
    name: "index out of range",
    stages: [json([["param", "pod.deployment.params[9]"]])],
    line: JSON_LINE,
    want: { param: "" },
  },
  {
    name: "full array",
    stages: [json([["params", "pod.deployment.params"]])],
    line: JSON_LINE,
    want: { params: `[1,2,3,"string_value"]` },
  },
  {
    name: "full object",
    stages: [json([["deployment", "pod.deployment"]])],
    line: JSON_LINE,
    want: { deployment: `{"ref":"foobar", "params": [1,2,3,"string_value"]}` },
  },
  { name: "expression matching nothing", stages: [json([["nope", "pod.nope"]])], line: JSON_LINE, want: { nope: "" } },
  { name: "null field", stages: [json([["nf", "null_field"]])], line: JSON_LINE, want: { nf: "" } },
  { name: "boolean field", stages: [json([["bool", "bool_field"]])], line: JSON_LINE, want: { bool: "false" } },
  {
    name: "label override",
    stages: [json([["uuid", "pod.uuid"]])],
    line: JSON_LINE,
    stream: { uuid: "bar" },
    want: { uuid: "bar", uuid_extracted: "foo" },
  },
  {
    name: "non-matching expression",
    stages: [json([["request_size", "request.size.invalid"]])],
    line: JSON_LINE,
    stream: { uuid: "bar" },
    want: { uuid: "bar", request_size: "" },
  },
  {
    name: "invalid JSON line",
    stages: [json([["uuid", "will.not.work"]])],
    line: `invalid json`,
    stream: { foo: "bar" },
    want: { foo: "bar", __error__: JSON_ERR },
  },
  {
    name: "empty line",
    stages: [json([["uuid", "will.not.work"]])],
    line: ``,
    stream: { foo: "bar" },
    want: { foo: "bar" },
  },
  {
    name: "escaped JSON inside a string",
    stages: [json([["app", "app"]])],
    line: `{"app":"{ \\"key\\": \\"value\\", \\"key2\\":\\"value2\\"}"}`,
    stream: { foo: "bar" },
    want: { foo: "bar", app: `{ "key": "value", "key2":"value2"}` },
  },
  {
    name: "object value of an unclosed line",
    stages: [json([["app", "app"]])],
    line: `{"app":{"name":"great \\"loki\\""}`,
    stream: { foo: "bar" },
    want: { foo: "bar", app: `{"name":"great \\"loki\\""}` },
  },
  {
    name: "duplicate field name takes first value",
    stages: [json([["app", "app"]])],
    line: `{"app":"foo","app":"duplicate"}`,
    stream: { foo: "bar" },
    want: { foo: "bar", app: "foo" },
  },
  {
    name: "collision with structured metadata",
    stages: [json([["app", "app"]])],
    line: JSON_LINE,
    metadata: { app: "app_sm" },
    want: { app: "app_sm", app_extracted: "foo" },
  },
  { name: "top-level array index", stages: [json([["first", "[1]"]])], line: `["a","b"]`, want: { first: "b" } },
  {
    name: "malformed value at the path",
    stages: [json([["a", "a"]])],
    line: `{"a":"open`,
    want: { a: "", __error__: JSON_ERR, __error_details__: `Value is string, but can't find closing '"' symbol` },
  },
]);

describe("json parameter expressions that do not parse", () => {
  for (const expression of ["field with space", `"pod"]`, `["pod"`, `["pod""uuid"]`, "pod..uuid", "a[1.5]"]) {
    it(expression, () => assert.throws(() => compilePipeline([json([["app", expression]])])));
  }
});

table("logfmt", [
  {
    name: "not logfmt",
    stages: [logfmt()],
    line: "foobar====wqe=sdad1r",
    stream: { foo: "bar" },
    want: { foo: "bar" },
  },
  {
    name: "not logfmt, strict",
    stages: [logfmt({ strict: true })],
    line: "foobar====wqe=sdad1r",
    stream: { foo: "bar" },
    want: {
      foo: "bar",
      __error__: "LogfmtParserErr",
      __error_details__: "logfmt syntax error at pos 8 : unexpected '='",
    },
  },
  {
    name: "replacement character in a value",
    stages: [logfmt()],
    line: `buzz=foo bar=\ufffdf`,
    want: { bar: " f", buzz: "foo" },
  },
  {
    name: "key alone",
    stages: [logfmt()],
    line: "buzz bar=foo",
    stream: { foo: "bar" },
    want: { foo: "bar", bar: "foo" },
  },
  {
    name: "quoted",
    stages: [logfmt()],
    line: `foobar="foo bar"`,
    stream: { foo: "bar" },
    want: { foo: "bar", foobar: "foo bar" },
  },
  {
    name: "escaped control chars",
    stages: [logfmt()],
    line: `foobar="foo\\nbar\\tbaz"`,
    want: { foobar: "foo\nbar\tbaz" },
  },
  {
    name: "literal control chars",
    stages: [logfmt()],
    line: 'foobar="foo\nbar\tbaz"',
    want: { foobar: "foo\nbar\tbaz" },
  },
  {
    name: "escaped backslash",
    stages: [logfmt()],
    line: `foobar="foo ba\\\\r baz"`,
    want: { foobar: `foo ba\\r baz` },
  },
  {
    name: "two properties",
    stages: [logfmt()],
    line: `foobar="foo bar" latency=10ms`,
    want: { foobar: "foo bar", latency: "10ms" },
  },
  {
    name: "duplicate key keeps the first",
    stages: [logfmt()],
    line: `foobar="foo bar" foobar=10ms`,
    want: { foobar: "foo bar" },
  },
  {
    name: "collision with a stream label",
    stages: [logfmt()],
    line: `foo="foo bar" foobar=10ms`,
    stream: { foo: "bar" },
    want: { foo: "bar", foo_extracted: "foo bar", foobar: "10ms" },
  },
  {
    name: "invalid key names",
    stages: [logfmt()],
    line: `foo="foo bar" foo.bar=10ms test-dash=foo`,
    stream: { foo: "bar" },
    want: { foo: "bar", foo_extracted: "foo bar", foo_bar: "10ms", test_dash: "foo" },
  },
  {
    name: "empty key skipped",
    stages: [logfmt()],
    line: `foo="foo bar" =notkey bar=10ms`,
    stream: { foo: "bar" },
    want: { foo: "bar", foo_extracted: "foo bar", bar: "10ms" },
  },
  {
    name: "empty key, strict",
    stages: [logfmt({ strict: true })],
    line: `foo="foo bar" =notkey bar=10ms`,
    stream: { foo: "bar" },
    want: {
      foo: "bar",
      foo_extracted: "foo bar",
      __error__: "LogfmtParserErr",
      __error_details__: "logfmt syntax error at pos 15 : unexpected '='",
    },
  },
  {
    name: "replacement character in a key, strict (byte positions)",
    stages: [logfmt({ strict: true })],
    line: `foo="foo bar" b\ufffdr=10ms`,
    stream: { foo: "bar" },
    want: {
      foo: "bar",
      foo_extracted: "foo bar",
      __error__: "LogfmtParserErr",
      __error_details__: "logfmt syntax error at pos 20 : invalid key",
    },
  },
  {
    name: "double quote in key, strict",
    stages: [logfmt({ strict: true })],
    line: `foo="foo bar" bu"zz=10ms`,
    stream: { foo: "bar" },
    want: {
      foo: "bar",
      foo_extracted: "foo bar",
      __error__: "LogfmtParserErr",
      __error_details__: `logfmt syntax error at pos 17 : unexpected '"'`,
    },
  },
  {
    name: "= in value is skipped",
    stages: [logfmt()],
    line: `bar=bu=zz foo="foo bar"`,
    stream: { foo: "bar" },
    want: { foo: "bar", foo_extracted: "foo bar" },
  },
  {
    name: "= in value, strict stops at the error",
    stages: [logfmt({ strict: true })],
    line: `bar=bu=zz foo="foo bar"`,
    stream: { foo: "bar" },
    want: {
      foo: "bar",
      __error__: "LogfmtParserErr",
      __error_details__: "logfmt syntax error at pos 7 : unexpected '='",
    },
  },
  {
    name: "unterminated quote, strict",
    stages: [logfmt({ strict: true })],
    line: `a=1 b="x`,
    want: {
      a: "1",
      __error__: "LogfmtParserErr",
      __error_details__: "logfmt syntax error at pos 9 : unterminated quoted value",
    },
  },
  { name: "empty values are dropped", stages: [logfmt()], line: `a= b="" c=1`, want: { c: "1" } },
  {
    name: "--keep-empty keeps them",
    stages: [logfmt({ keepEmpty: true })],
    line: `a= b="" c=1 d`,
    want: { a: "", b: "", c: "1", d: "" },
  },
  {
    name: "metadata collision",
    stages: [logfmt({ strict: true, keepEmpty: true })],
    line: `app=lowkey level=error msg="hello world"`,
    metadata: { app: "loki" },
    want: { app: "loki", app_extracted: "lowkey", level: "error", msg: "hello world" },
  },
]);

const LOGFMT_LINE = `app=foo level=error spaces="value with ÜFT8👌" ts=2021-02-12T19:18:10.037940878Z`;

table("logfmt with parameters", [
  { name: "one key", stages: [logfmt({ params: [["app", "app"]] })], line: `app=foo level=info`, want: { app: "foo" } },
  {
    name: "renamed key",
    stages: [logfmt({ params: [["lvl", "level"]] })],
    line: `app=foo level=info`,
    want: { lvl: "info" },
  },
  {
    name: "quoted key",
    stages: [logfmt({ params: [["lvl", `"level"`]] })],
    line: `app=foo level=info`,
    want: { lvl: "info" },
  },
  {
    name: "missing key gives an empty label",
    stages: [logfmt({ params: [["nope", "nope"]] })],
    line: `app=foo`,
    want: { nope: "" },
  },
  {
    name: "collision with a stream label",
    stages: [logfmt({ params: [["app", "app"]] })],
    line: `app=foo`,
    stream: { app: "bar" },
    want: { app: "bar", app_extracted: "foo" },
  },
  {
    name: "several fields with renaming",
    stages: [
      logfmt({
        params: [
          ["app", "app"],
          ["lvl", "level"],
          ["timestamp", "ts"],
        ],
      }),
    ],
    line: LOGFMT_LINE,
    want: { app: "foo", lvl: "error", timestamp: "2021-02-12T19:18:10.037940878Z" },
  },
  {
    name: "quoted value with multibyte characters",
    stages: [logfmt({ params: [["spaces", "spaces"]] })],
    line: LOGFMT_LINE,
    want: { spaces: "value with ÜFT8👌" },
  },
  {
    name: "renamed onto a name the stream lacks",
    stages: [logfmt({ params: [["lvl", "level"]] })],
    line: LOGFMT_LINE,
    stream: { level: "debug" },
    want: { level: "debug", lvl: "error" },
  },
  {
    name: "similar stream label",
    stages: [logfmt({ params: [["app", "app"]] })],
    line: LOGFMT_LINE,
    stream: { ap: "bar" },
    want: { ap: "bar", app: "foo" },
  },
  {
    name: "metadata conflict",
    stages: [logfmt({ params: [["app", "app"]] })],
    line: LOGFMT_LINE,
    metadata: { app: "foo_sm" },
    want: { app: "foo_sm", app_extracted: "foo" },
  },
  {
    name: "strict error",
    stages: [logfmt({ strict: true, params: [["a", "a"]] })],
    line: `a=1 b==2`,
    want: { a: "1", __error__: "LogfmtParserErr", __error_details__: "logfmt syntax error at pos 7 : unexpected '='" },
  },
]);

table("regexp", [
  {
    name: "no matches",
    stages: [regexp("(?P<foo>foo|bar)buzz")],
    line: "blah",
    stream: { app: "foo" },
    want: { app: "foo" },
  },
  {
    name: "greedy match",
    stages: [regexp("(?P<foo>.*)buzz")],
    line: "matchebuzz barbuzz",
    stream: { app: "bar" },
    want: { app: "bar", foo: "matchebuzz bar" },
  },
  {
    name: "collision",
    stages: [regexp("(?P<bar>bar)buzz")],
    line: "barbuzz",
    stream: { bar: "foo" },
    want: { bar: "foo", bar_extracted: "bar" },
  },
  {
    name: "several groups",
    stages: [regexp("status=(?P<status>\\w+),latency=(?P<latency>\\w+)(ms|ns)")],
    line: "status=200,latency=500ms",
    stream: { app: "foo" },
    want: { app: "foo", status: "200", latency: "500" },
  },
  {
    name: "metadata collision",
    stages: [regexp("status=(?P<status>\\w+),latency=(?P<latency>\\w+)(ms|ns)")],
    line: "status=200,latency=500ms",
    metadata: { status: "400" },
    want: { status: "400", status_extracted: "200", latency: "500" },
  },
  {
    name: "unmatched optional group is empty",
    stages: [regexp("a(?P<x>b)?c(?P<y>d)")],
    line: "acd",
    want: { x: "", y: "d" },
  },
  { name: "unanchored search", stages: [regexp("id=(?P<id>\\d+)")], line: "request id=42 done", want: { id: "42" } },
]);

describe("regexp without named groups", () => {
  it("is refused", () => assert.throws(() => compilePipeline([regexp("(a)b")]), /named capture/));
});

const APACHE = `127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`;
const APACHE_PATTERN = `<ip> <userid> <user> [<_>] "<method> <path> <_>" <status> <size>`;

table("pattern", [
  {
    name: "apache line",
    stages: [pattern(APACHE_PATTERN)],
    line: APACHE,
    stream: { foo: "bar" },
    want: {
      foo: "bar",
      ip: "127.0.0.1",
      userid: "user-identifier",
      user: "frank",
      method: "GET",
      path: "/apache_pb.gif",
      status: "200",
      size: "2326",
    },
  },
  {
    name: "collision",
    stages: [pattern(`<_> msg="<method> <path> (<status>) <duration>"`)],
    line: `level=debug ts=2021-05-19T07:54:26.864644382Z caller=logging.go:66 traceID=7fbb92fd0eb9c65d msg="POST /loki/api/v1/push (204) 1.238734ms"`,
    stream: { method: "bar" },
    want: { method: "bar", method_extracted: "POST", path: "/loki/api/v1/push", status: "204", duration: "1.238734ms" },
  },
  {
    name: "leading literal must be at the start",
    stages: [pattern(`foo <f>"`)],
    line: "bar",
    stream: { method: "bar" },
    want: { method: "bar" },
  },
  {
    name: "metadata collision",
    stages: [pattern(APACHE_PATTERN)],
    line: APACHE,
    metadata: { user: "not_frank" },
    want: {
      ip: "127.0.0.1",
      userid: "user-identifier",
      user: "not_frank",
      user_extracted: "frank",
      method: "GET",
      path: "/apache_pb.gif",
      status: "200",
      size: "2326",
    },
  },
  {
    name: "a missing literal ends the match with the rest",
    stages: [pattern(`<a> <b> <c>`)],
    line: "one two",
    want: { a: "one", b: "two" },
  },
  { name: "text after the last literal is ignored", stages: [pattern(`<a>:`)], line: "x:y", want: { a: "x" } },
]);

describe("pattern validation", () => {
  it("needs a named capture", () => assert.throws(() => compilePipeline([pattern("<_> foo")])));
  it("refuses consecutive captures", () => assert.throws(() => compilePipeline([pattern("<a><b>")])));
  it("refuses duplicate names", () => assert.throws(() => compilePipeline([pattern("<a> <a>")])));
});

table("unpack", [
  {
    name: "extracts only strings",
    stages: [unpack],
    line: `{"bar":1,"app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}}`,
    stream: { cluster: "us-central1" },
    want: { app: "foo", namespace: "prod", cluster: "us-central1" },
    wantLine: "some message",
  },
  {
    name: "not an object",
    stages: [unpack],
    line: `"app":"foo","_entry":"some message"`,
    want: { __error__: JSON_ERR, __error_details__: "expecting json object(6), but it is not" },
  },
  {
    name: "empty line",
    stages: [unpack],
    line: ``,
    stream: { cluster: "us-central1" },
    want: { cluster: "us-central1" },
  },
  {
    name: "array",
    stages: [unpack],
    line: `["foo","bar"]`,
    stream: { cluster: "us-central1" },
    want: { cluster: "us-central1", __error__: JSON_ERR, __error_details__: "expecting json object(6), but it is not" },
  },
  {
    name: "collision",
    stages: [unpack],
    line: `{"bar":1,"app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}}`,
    stream: { cluster: "us-central1", app: "bar" },
    want: { app: "bar", app_extracted: "foo", namespace: "prod", cluster: "us-central1" },
    wantLine: "some message",
  },
  {
    name: "no packed entry changes nothing",
    stages: [unpack],
    line: `{"bar":1,"app":"foo","namespace":"prod","pod":{"uid":"1"}}`,
    stream: { app: "bar" },
    want: { app: "bar" },
  },
  {
    name: "escaped quotes in the entry",
    stages: [unpack],
    line: `{"_entry":"I0303 kubelet] \\"Pod status updated\\" status=Running"}`,
    want: {},
    wantLine: `I0303 kubelet] "Pod status updated" status=Running`,
  },
  {
    name: "invalid key names",
    stages: [unpack],
    line: `{"foo.bar":"10ms","test-dash":"foo","_entry":"some message"}`,
    stream: { foo: "bar" },
    want: { foo: "bar", foo_bar: "10ms", test_dash: "foo" },
    wantLine: "some message",
  },
  {
    name: "metadata collision",
    stages: [unpack],
    line: `{"app":"foo","namespace":"prod","_entry":"some message"}`,
    metadata: { app: "foo_sm" },
    want: { app: "foo_sm", app_extracted: "foo", namespace: "prod" },
    wantLine: "some message",
  },
  {
    name: "then a parser on the unpacked line",
    stages: [unpack, logfmt()],
    line: `{"app":"a","_entry":"level=warn code=7"}`,
    want: { app: "a", level: "warn", code: "7" },
    wantLine: "level=warn code=7",
  },
]);

table("line filters", [
  { name: "contains", stages: [lineFilter("|=", "err")], line: "an error", want: {} },
  { name: "does not contain", stages: [lineFilter("|=", "err")], line: "all good", want: null },
  { name: "is case sensitive", stages: [lineFilter("|=", "ERR")], line: "an error", want: null },
  { name: "or values", stages: [lineFilter("|=", "warn", "err")], line: "an error", want: {} },
  { name: "not contains", stages: [lineFilter("!=", "debug")], line: "an error", want: {} },
  { name: "not contains drops", stages: [lineFilter("!=", "debug")], line: "debug: x", want: null },
  { name: "not contains any of the or values", stages: [lineFilter("!=", "a", "b")], line: "xbx", want: null },
  { name: "empty |= keeps everything", stages: [lineFilter("|=", "")], line: "x", want: {} },
  { name: "empty != drops everything", stages: [lineFilter("!=", "")], line: "x", want: null },
  { name: "regex is unanchored", stages: [lineFilter("|~", "err(or)?\\s\\d+")], line: "got error 42 here", want: {} },
  { name: "regex with case flag", stages: [lineFilter("|~", "(?i)ERROR")], line: "an error", want: {} },
  { name: "negated regex", stages: [lineFilter("!~", "^debug")], line: "debug line", want: null },
  { name: "negated regex keeps", stages: [lineFilter("!~", "^debug")], line: "info line", want: {} },
  { name: "chained filters", stages: [lineFilter("|=", "a"), lineFilter("!=", "b")], line: "a c", want: {} },
]);

table("label filters", [
  {
    name: "numeric and duration",
    stages: [filter(and(num("foo", "==", 5), dur("bar", "==", 1)))],
    line: "",
    stream: { foo: "5", bar: "1s" },
    want: { foo: "5", bar: "1s" },
  },
  {
    name: "numeric and bytes",
    stages: [filter(and(num("foo", "==", 5), bytes("bar", "==", 42000)))],
    line: "",
    stream: { foo: "5", bar: "42kB" },
    want: { foo: "5", bar: "42kB" },
  },
  {
    name: "numeric fails",
    stages: [filter(and(num("foo", "==", 5), dur("bar", "==", 1)))],
    line: "",
    stream: { foo: "6", bar: "1s" },
    want: null,
  },
  {
    name: "duration fails",
    stages: [filter(and(num("foo", "==", 5), dur("bar", "==", 1)))],
    line: "",
    stream: { foo: "5", bar: "2s" },
    want: null,
  },
  {
    name: "string and duration",
    stages: [filter(and(str("foo", "=", "5"), dur("bar", "==", 1)))],
    line: "",
    stream: { foo: "5", bar: "1s" },
    want: { foo: "5", bar: "1s" },
  },
  {
    name: "or inside and",
    stages: [filter(and(or(dur("duration", ">", 1), num("status", "!=", 200)), str("method", "!=", "POST")))],
    line: "",
    stream: { duration: "2s", status: "200", method: "GET" },
    want: { duration: "2s", status: "200", method: "GET" },
  },
  {
    name: "or inside and, string fails",
    stages: [filter(and(or(dur("duration", ">", 1), num("status", "!=", 200)), str("method", "!=", "POST")))],
    line: "",
    stream: { duration: "2s", status: "200", method: "POST" },
    want: null,
  },
  {
    name: "or inside and, both or legs fail",
    stages: [filter(and(or(dur("duration", ">", 3), num("status", "!=", 200)), str("method", "!=", "POST")))],
    line: "",
    stream: { duration: "2s", status: "200", method: "GET" },
    want: null,
  },
  {
    name: "duration parse error keeps the entry",
    stages: [filter(dur("duration", ">", 3))],
    line: "",
    stream: { duration: "2weeeeee" },
    want: {
      duration: "2weeeeee",
      __error__: "LabelFilterErr",
      __error_details__: `time: unknown unit "weeeeee" in duration "2weeeeee"`,
    },
  },
  {
    name: "days are not a Go duration",
    stages: [filter(dur("d", ">", 3))],
    line: "",
    stream: { d: "1d" },
    want: { d: "1d", __error__: "LabelFilterErr", __error_details__: `time: unknown unit "d" in duration "1d"` },
  },
  {
    name: "bytes parse error",
    stages: [filter(bytes("bytes", ">", 100))],
    line: "",
    stream: { bytes: "2qb" },
    want: { bytes: "2qb", __error__: "LabelFilterErr", __error_details__: "unhandled size name: qb" },
  },
  {
    name: "number parse error",
    stages: [filter(num("number", ">", 100))],
    line: "",
    stream: { number: "not_a_number" },
    want: {
      number: "not_a_number",
      __error__: "LabelFilterErr",
      __error_details__: `strconv.ParseFloat: parsing "not_a_number": invalid syntax`,
    },
  },
  {
    name: "an earlier error is not overwritten",
    stages: [json(), filter(num("x", ">", 1))],
    line: `{"x":"abc"`,
    want: { x: "abc", __error__: JSON_ERR, __error_details__: "Value is array, but can't find closing ']' symbol" },
  },
  { name: "missing label drops for comparisons", stages: [filter(num("missing", "<", 100))], line: "", want: null },
  { name: "missing label is empty for strings", stages: [filter(str("missing", "=", ""))], line: "", want: {} },
  {
    name: "regex matcher is anchored",
    stages: [filter(str("app", "=~", "fo"))],
    line: "",
    stream: { app: "foo" },
    want: null,
  },
  {
    name: "regex matcher",
    stages: [filter(str("app", "=~", "fo.*"))],
    line: "",
    stream: { app: "foo" },
    want: { app: "foo" },
  },
  {
    name: "negated regex matcher",
    stages: [filter(str("app", "!~", "ba.*"))],
    line: "",
    stream: { app: "foo" },
    want: { app: "foo" },
  },
  {
    name: "bytes comparison with IEC units",
    stages: [filter(bytes("size", ">=", 1024))],
    line: "",
    stream: { size: "1KiB" },
    want: { size: "1KiB" },
  },
  {
    name: "bytes with thousands comma",
    stages: [filter(bytes("size", "==", 1200000))],
    line: "",
    stream: { size: "1,200 kB" },
    want: { size: "1,200 kB" },
  },
  {
    name: "float comparison",
    stages: [filter(num("v", "<=", 0.5))],
    line: "",
    stream: { v: "5e-1" },
    want: { v: "5e-1" },
  },
  { name: "Inf parses", stages: [filter(num("v", ">", 1e300))], line: "", stream: { v: "+Inf" }, want: { v: "+Inf" } },
  {
    name: "out of range is an error",
    stages: [filter(num("v", ">", 1))],
    line: "",
    stream: { v: "1e400" },
    want: {
      v: "1e400",
      __error__: "LabelFilterErr",
      __error_details__: `strconv.ParseFloat: parsing "1e400": value out of range`,
    },
  },
  {
    name: "or skips the right side when the left holds",
    stages: [filter(or(str("a", "=", "1"), num("b", ">", 1)))],
    line: "",
    stream: { a: "1", b: "x" },
    want: { a: "1", b: "x" },
  },
  {
    name: "and evaluates both sides",
    stages: [filter(and(str("a", "=", "2"), num("b", ">", 1)))],
    line: "",
    stream: { a: "1", b: "x" },
    want: null,
  },
  {
    name: "filter on an extracted label",
    stages: [logfmt(), filter(str("level", "=", "error"))],
    line: "level=error msg=x",
    want: { level: "error", msg: "x" },
  },
]);

table("parser hints: label filters checked while parsing, as Loki does", [
  {
    name: "a label rewritten before its filter is still dropped by its parsed value",
    stages: [logfmt(), labelFormat(tmpl("level", "{{ .level | upper }}")), filter(str("level", "=", "ERROR"))],
    line: "level=error",
    want: null,
  },
  {
    name: "a conversion error found while parsing sticks",
    stages: [logfmt(), labelFormat(tmpl("latency", "{{ .latency }}ms")), filter(dur("latency", ">", 1))],
    line: "latency=2500",
    want: {
      latency: "2500ms",
      __error__: "LabelFilterErr",
      __error_details__: `time: missing unit in duration "2500"`,
    },
  },
  {
    name: "only single-label filter stages take part",
    stages: [
      logfmt(),
      labelFormat(tmpl("level", "{{ .level | upper }}")),
      filter(or(str("level", "=", "ERROR"), str("x", "=", "y"))),
    ],
    line: "level=error",
    want: { level: "ERROR" },
  },
  {
    name: "json stops at the first failing label",
    stages: [json(), filter(str("a", "=", "1"))],
    line: `{"a":"2","b":"3"}`,
    want: null,
  },
  {
    name: "regexp",
    stages: [regexp("(?P<a>\\d)"), labelFormat(tmpl("a", "x")), filter(str("a", "=", "x"))],
    line: "7",
    want: null,
  },
  {
    name: "pattern",
    stages: [pattern("<a> <_>"), labelFormat(tmpl("a", "x")), filter(str("a", "=", "x"))],
    line: "7 8",
    want: null,
  },
  {
    name: "unpack",
    stages: [unpack, labelFormat(tmpl("a", "x")), filter(str("a", "=", "x"))],
    line: `{"a":"7","_entry":"e"}`,
    want: null,
  },
  {
    name: "json parameters are not checked early",
    stages: [json([["a", "a"]]), labelFormat(tmpl("a", "x")), filter(str("a", "=", "x"))],
    line: `{"a":"7"}`,
    want: { a: "x" },
  },
]);

table("ip label filter", [
  {
    name: "single address",
    stages: [filter(ip("addr", "=", "192.168.0.1"))],
    line: "",
    stream: { addr: "192.168.0.1" },
    want: { addr: "192.168.0.1" },
  },
  {
    name: "cidr",
    stages: [filter(ip("addr", "=", "192.168.4.0/24"))],
    line: "",
    stream: { addr: "192.168.4.5" },
    want: { addr: "192.168.4.5" },
  },
  {
    name: "cidr miss",
    stages: [filter(ip("addr", "=", "192.168.4.0/24"))],
    line: "",
    stream: { addr: "192.168.5.5" },
    want: null,
  },
  {
    name: "range",
    stages: [filter(ip("addr", "=", "192.168.4.5-192.168.4.20"))],
    line: "",
    stream: { addr: "192.168.4.7" },
    want: { addr: "192.168.4.7" },
  },
  {
    name: "range includes its ends",
    stages: [filter(ip("addr", "=", "192.168.4.5-192.168.4.20"))],
    line: "",
    stream: { addr: "192.168.4.20" },
    want: { addr: "192.168.4.20" },
  },
  {
    name: "range excludes the outside",
    stages: [filter(ip("addr", "=", "192.168.4.5-192.168.4.20"))],
    line: "",
    stream: { addr: "192.168.4.21" },
    want: null,
  },
  {
    name: "negated",
    stages: [filter(ip("addr", "!=", "10.0.0.0/8"))],
    line: "",
    stream: { addr: "192.168.4.7" },
    want: { addr: "192.168.4.7" },
  },
  {
    name: "address inside text",
    stages: [filter(ip("addr", "=", "10.0.0.0/8"))],
    line: "",
    stream: { addr: "from 10.1.2.3:8080" },
    want: { addr: "from 10.1.2.3:8080" },
  },
  {
    name: "ipv6 prefix",
    stages: [filter(ip("addr", "=", "2001:db8::/32"))],
    line: "",
    stream: { addr: "2001:db8::1" },
    want: { addr: "2001:db8::1" },
  },
  {
    name: "ipv4 does not match ipv6",
    stages: [filter(ip("addr", "=", "::ffff:192.168.0.1"))],
    line: "",
    stream: { addr: "192.168.0.1" },
    want: null,
  },
  {
    name: "leading zeros are not an address",
    stages: [filter(ip("addr", "=", "192.168.0.1"))],
    line: "",
    stream: { addr: "192.168.000.001" },
    want: null,
  },
  { name: "missing label", stages: [filter(ip("addr", "=", "192.168.0.1"))], line: "", want: null },
  {
    name: "an error lets everything through",
    stages: [json(), filter(ip("addr", "=", "1.2.3.4"))],
    line: "nope",
    want: { __error__: JSON_ERR, __error_details__: OBJECT_ERR },
  },
]);

describe("ip patterns that Loki refuses", () => {
  for (const bad of ["192.168.0", "10.0.0.0/33", "10.0.0.5-10.0.0.1", "foo"]) {
    it(bad, () => assert.throws(() => compilePipeline([filter(ip("a", "=", bad))]), /ip: invalid pattern/));
  }
});

// The Test column of Loki's pattern fixtures (pkg/logql/log/pattern/pattern_test.go), captures made unnamed.
table("pattern line filters", [
  { name: "literal, capture, literal", stages: [lineFilter("|>", "foo <_> bar")], line: "foo buzz bar", want: {} },
  {
    name: "a pattern ending on a capture needs text after the last literal",
    stages: [lineFilter("|>", "foo <_> bar<_>")],
    line: "foo buzz bar",
    want: null,
  },
  {
    name: "an empty capture before a literal fails",
    stages: [lineFilter("|>", "<_>foo <_> bar")],
    line: "foo buzz bar",
    want: null,
  },
  { name: "captures around a literal", stages: [lineFilter("|>", "<_>bar<_>")], line: " bar ", want: {} },
  {
    name: "an empty capture between spaces fails",
    stages: [lineFilter("|>", "<_> bar<_>")],
    line: " bar ",
    want: null,
  },
  { name: "a lone capture matches any non-empty line", stages: [lineFilter("|>", "<_>")], line: " bar ", want: {} },
  { name: "a lone capture does not match an empty line", stages: [lineFilter("|>", "<_>")], line: "", want: null },
  { name: "an empty pattern matches only an empty line", stages: [lineFilter("|>", "")], line: "", want: {} },
  { name: "the first literal may start anywhere", stages: [lineFilter("|>", "foo <_>")], line: "xfoo bar", want: {} },
  {
    name: "a pattern ending on a literal needs the line to end there",
    stages: [lineFilter("|>", "<_> error")],
    line: "disk error again",
    want: null,
  },
  {
    name: "or keeps a line matching any pattern",
    stages: [lineFilter("|>", "<_> warn", "<_> error")],
    line: "disk error",
    want: {},
  },
  {
    name: "!> drops a matching line",
    stages: [lineFilter("!>", "<_> error <_>")],
    line: "disk error again",
    want: null,
  },
  {
    name: "!> with or keeps a line matching none",
    stages: [lineFilter("!>", "<_> warn <_>", "x<_>")],
    line: "disk error again",
    want: {},
  },
]);

describe("pattern line filters that Loki refuses", () => {
  it("named captures", () =>
    assert.throws(
      () => compilePipeline([lineFilter("|>", "<_> <name>")]),
      /named captures are not allowed: found '<name>'/,
    ));
  it("consecutive captures", () =>
    assert.throws(() => compilePipeline([lineFilter("|>", "<_><_> x")]), /found consecutive capture '<_><_>'/));
});

table("ip line filters", [
  {
    name: "an address in the line",
    stages: [ipLineFilter("|=", "192.168.0.0/16")],
    line: "client 192.168.4.20 connected",
    want: {},
  },
  {
    name: "no address in range",
    stages: [ipLineFilter("|=", "192.168.0.0/16")],
    line: "client 10.0.0.1 connected",
    want: null,
  },
  {
    name: "!= keeps lines without a matching address",
    stages: [ipLineFilter("!=", "192.168.0.0/16")],
    line: "client 10.0.0.1 connected",
    want: {},
  },
  {
    name: "!= drops lines with one",
    stages: [ipLineFilter("!=", "192.168.0.0/16")],
    line: "from 10.0.0.1 via 192.168.0.1",
    want: null,
  },
  {
    name: "or with a string",
    stages: [{ kind: "line_filter", pos: 0, op: "|=", values: ["timeout", "::1"], ip: [false, true] }],
    line: "peer ::1 reset",
    want: {},
  },
  { name: "a range", stages: [ipLineFilter("|=", "10.0.0.1-10.0.0.9")], line: "10.0.0.10 and 10.0.0.5", want: {} },
]);

describe("ip line filters that Loki refuses", () => {
  it("a bad pattern", () =>
    assert.throws(() => compilePipeline([ipLineFilter("|=", "10.0.0")]), /ip: invalid pattern/));
  it("a regexp operator", () =>
    assert.throws(
      () => compilePipeline([{ kind: "line_filter", pos: 0, op: "|~", values: ["10.0.0.1"], ip: [true] }]),
      /ip: invalid operation/,
    ));
});

table("__error__ handling", [
  {
    name: '__error__="" drops errored entries',
    stages: [json(), filter(str("__error__", "=", ""))],
    line: "not json",
    want: null,
  },
  {
    name: '__error__="" keeps clean entries',
    stages: [json(), filter(str("__error__", "=", ""))],
    line: `{"a":"1"}`,
    want: { a: "1" },
  },
  {
    name: '__error__!="" keeps only errors',
    stages: [json(), filter(str("__error__", "!=", ""))],
    line: `{"a":"1"}`,
    want: null,
  },
  {
    name: "drop __error__ keeps details",
    stages: [json(), drop("__error__")],
    line: "x",
    want: { __error_details__: OBJECT_ERR },
  },
  { name: "drop both error labels", stages: [json(), drop("__error__", "__error_details__")], line: "x", want: {} },
  {
    name: "drop __error__ by matcher",
    stages: [json(), drop(["__error__", "=", JSON_ERR])],
    line: "x",
    want: { __error_details__: OBJECT_ERR },
  },
  {
    name: "drop __error__ by a matcher that does not match",
    stages: [json(), drop(["__error__", "=", "Other"])],
    line: "x",
    want: { __error__: JSON_ERR, __error_details__: OBJECT_ERR },
  },
  {
    name: "error labels in structured metadata become the error",
    stages: [filter(str("__error__", "=", "boom"))],
    line: "",
    metadata: { __error__: "boom" },
    want: { __error__: "boom" },
  },
  {
    name: "the entry continues after an error",
    stages: [json(), lineFormat("{{.__error__}}!")],
    line: "x",
    want: { __error__: JSON_ERR, __error_details__: OBJECT_ERR },
    wantLine: "JSONParserErr!",
  },
]);

table("drop and keep", [
  { name: "drop names", stages: [drop("a", "b")], line: "", stream: { a: "1", b: "2", c: "3" }, want: { c: "3" } },
  { name: "drop a missing name", stages: [drop("x")], line: "", stream: { a: "1" }, want: { a: "1" } },
  {
    name: "drop by matcher",
    stages: [drop(["a", "=", "1"], ["b", "=", "x"])],
    line: "",
    stream: { a: "1", b: "2" },
    want: { b: "2" },
  },
  { name: "drop by regex matcher", stages: [drop(["a", "=~", "1|2"])], line: "", stream: { a: "2" }, want: {} },
  { name: "drop an extracted label", stages: [logfmt(), drop("level")], line: "level=info msg=x", want: { msg: "x" } },
  {
    name: "drop metadata",
    stages: [drop("trace")],
    line: "",
    metadata: { trace: "t" },
    stream: { a: "1" },
    want: { a: "1" },
  },
  {
    name: "keep names",
    stages: [keep("a")],
    line: "",
    stream: { a: "1", b: "2" },
    metadata: { c: "3" },
    want: { a: "1" },
  },
  {
    name: "keep by matcher",
    stages: [keep(["a", "=", "1"], ["b", "=", "x"])],
    line: "",
    stream: { a: "1", b: "2" },
    want: { a: "1" },
  },
  {
    name: "keep never removes error labels",
    stages: [json(), keep("a")],
    line: "x",
    stream: { a: "1", b: "2" },
    want: { a: "1", __error__: JSON_ERR, __error_details__: OBJECT_ERR },
  },
  {
    name: "keep an extracted label",
    stages: [logfmt(), keep("level")],
    line: "level=info msg=x",
    stream: { app: "a" },
    want: { level: "info" },
  },
  {
    name: "dropped stream label comes back as the parsed name",
    stages: [drop("app"), logfmt()],
    line: "app=x",
    stream: { app: "a" },
    want: { app_extracted: "x" },
  },
]);

table("decolorize", [
  {
    name: "strips colour codes",
    stages: [decolorize],
    line: "\u001b[31mred\u001b[0m and \u001b[1;32mgreen\u001b[0m",
    want: {},
    wantLine: "red and green",
  },
  { name: "leaves plain text", stages: [decolorize], line: "plain [31m text", want: {} },
]);

interface TemplateCase {
  name: string;
  template: string;
  labels?: Record<string, string>;
  line?: string;
  ts?: bigint;
  want?: string;
  /** Expected `__error_details__` when the template fails. */
  error?: string;
}

describe("line_format", () => {
  const cases: TemplateCase[] = [
    { name: "count", template: `{{.foo | count "abc" }}`, labels: { foo: "abc abc abc" }, want: "3" },
    { name: "count regex", template: `{{.foo | count "a|b|c" }}`, labels: { foo: "abc abc abc" }, want: "9" },
    {
      name: "combining",
      template: "foo{{.foo}}buzz{{  .bar  }}",
      labels: { foo: "blip", bar: "blop" },
      want: "fooblipbuzzblop",
    },
    {
      name: "Replace",
      template: `foo{{.foo}}buzz{{ Replace .bar "blop" "bar" -1 }}`,
      labels: { foo: "blip", bar: "blop" },
      want: "fooblipbuzzbar",
    },
    { name: "Replace n times", template: `{{ Replace .bar "o" "0" 1 }}`, labels: { bar: "foo" }, want: "f0o" },
    {
      name: "replace",
      template: `foo{{.foo}}buzz{{ .bar | replace "blop" "bar" }}`,
      labels: { foo: "blip", bar: "blop" },
      want: "fooblipbuzzbar",
    },
    { name: "title", template: `{{.foo | title }}`, labels: { foo: "blip" }, want: "Blip" },
    {
      name: "title of several words",
      template: `{{.foo | title }}`,
      labels: { foo: "hello wORLD-x" },
      want: "Hello WORLD-X",
    },
    {
      name: "substr and trunc",
      template: `{{.foo | substr 1 3 }} {{ .bar  | trunc 1 }} {{ .bar  | trunc 3 }}`,
      labels: { foo: "blip", bar: "blop" },
      want: "li b blo",
    },
    { name: "negative trunc", template: `{{ trunc -2 .bar }}`, labels: { bar: "blop" }, want: "op" },
    {
      name: "trim family",
      template: `{{.foo | trim }} {{ .bar  | trimAll "op" }} {{ .bar  | trimPrefix "b" }} {{ .bar  | trimSuffix "p" }}`,
      labels: { foo: "  blip ", bar: "blop" },
      want: "blip bl lop blo",
    },
    {
      name: "Trim family",
      template: `{{ Trim .a "xy" }}|{{ TrimLeft .a "xy" }}|{{ TrimRight .a "xy" }}|{{ TrimPrefix .a "xy" }}|{{ TrimSuffix .a "xy" }}|{{ TrimSpace .b }}`,
      labels: { a: "xyaxy", b: " \tb\n" },
      want: "a|axy|xya|axy|xya|b",
    },
    {
      name: "lower and upper",
      template: `{{.foo | lower }} {{ .bar  | upper }} {{ ToLower .foo }} {{ ToUpper .bar }}`,
      labels: { foo: "BLIp", bar: "blop" },
      want: "blip BLOP blip BLOP",
    },
    {
      name: "urlencode",
      template: `{{.foo | urlencode }} {{ urlencode .foo }}`,
      labels: {
        foo: `/loki/api/v1/query?query=sum(count_over_time({stream_filter="some_stream",environment="prod", host=~"someec2.*"}`,
      },
      want: [1, 2]
        .map(
          () =>
            "%2Floki%2Fapi%2Fv1%2Fquery%3Fquery%3Dsum%28count_over_time%28%7Bstream_filter%3D%22some_stream%22%2Cenvironment%3D%22prod%22%2C+host%3D~%22someec2.%2A%22%7D",
        )
        .join(" "),
    },
    {
      name: "urldecode",
      template: `{{.foo | urldecode }}`,
      labels: {
        foo: "%2Floki%2Fapi%2Fv1%2Fquery%3Fquery%3Dsum%28count_over_time%28%7Bstream_filter%3D%22some_stream%22%2Cenvironment%3D%22prod%22%2C+host%3D~%22someec2.%2A%22%7D",
      },
      want: `/loki/api/v1/query?query=sum(count_over_time({stream_filter="some_stream",environment="prod", host=~"someec2.*"}`,
    },
    {
      name: "urldecode error",
      template: `{{ urldecode .foo }}`,
      labels: { foo: "%zz" },
      error: `template: line:1:3: executing "line" at <urldecode>: error calling urldecode: invalid URL escape "%zz"`,
    },
    { name: "repeat", template: `{{ "foo" | repeat 3 }}`, want: "foofoofoo" },
    { name: "indent", template: `{{ "foo\\n bar" | indent 4 }}`, want: "    foo\n     bar" },
    { name: "nindent", template: `{{ "foo" | nindent 2 }}`, want: "\n  foo" },
    {
      name: "contains",
      template: `{{ if  .foo | contains "p"}}yes{{end}}-{{ if  .foo | contains "z"}}no{{end}}`,
      labels: { foo: "BLIp" },
      want: "yes-",
    },
    {
      name: "hasPrefix",
      template: `{{ if  .foo | hasPrefix "BL" }}yes{{end}}-{{ if  .foo | hasPrefix "p"}}no{{end}}`,
      labels: { foo: "BLIp" },
      want: "yes-",
    },
    {
      name: "hasSuffix",
      template: `{{ if  .foo | hasSuffix "Ip" }}yes{{end}}-{{ if  .foo | hasSuffix "pw"}}no{{end}}`,
      labels: { foo: "BLIp" },
      want: "yes-",
    },
    {
      name: "regexReplaceAll",
      template: `{{ regexReplaceAll "(p)" .foo "t" }}`,
      labels: { foo: "BLIp" },
      want: "BLIt",
    },
    {
      name: "regexReplaceAll expands groups",
      template: `{{ regexReplaceAll "(?P<k>\\\\w+)=(\\\\d+)" .foo "\${2}:$k $1x" }}`,
      labels: { foo: "a=1" },
      want: "1:a ",
    },
    {
      name: "regexReplaceAllLiteral",
      template: `{{ regexReplaceAllLiteral "(p)" .foo "\${1}" }}`,
      labels: { foo: "BLIp" },
      want: "BLI${1}",
    },
    {
      name: "field with arguments",
      template: `{{.foo Replace "foo"}}`,
      labels: { foo: "blip" },
      error: `template: line:1:2: executing "line" at <.foo>: foo is not a method but has arguments`,
    },
    { name: "missing label", template: "foo {{.foo}}buzz{{  .bar  }}", labels: { bar: "blop" }, want: "foo buzzblop" },
    {
      name: "ToUpper in a pipeline",
      template: "foo {{.foo | ToUpper }} buzz{{  .bar  }}",
      labels: { foo: "blip", bar: "blop" },
      want: "foo BLIP buzzblop",
    },
    {
      name: "integer math",
      template: "{{ add .foo 1 | sub .bar | mul .baz | div .bazz}}",
      labels: { foo: "1", bar: "3", baz: "10", bazz: "20" },
      want: "2",
    },
    {
      name: "float math",
      template: "{{ addf .foo 1.5 | subf .bar 1.5 | mulf .baz | divf .bazz }}",
      labels: { foo: "1.5", bar: "5", baz: "10.5", bazz: "20.2" },
      want: "3.8476190476190477",
    },
    { name: "decimal addf", template: "{{ addf 0.1 0.2 }}", want: "0.3" },
    {
      name: "round",
      template: "{{ round (addf .foo 1.5 | subf .bar | mulf .baz | divf .bazz) 5 .2}}",
      labels: { foo: "1.5", bar: "3.5", baz: "10.5", bazz: "20.4" },
      want: "3.88572",
    },
    {
      name: "min and max",
      template: "min is {{ min .foo .bar .baz }} and max is {{ max .foo .bar .baz }}",
      labels: { foo: "5", bar: "10", baz: "15" },
      want: "min is 5 and max is 15",
    },
    {
      name: "minf and maxf",
      template: "minf is {{ minf .foo .bar .baz }} and maxf is {{maxf .foo .bar .baz}}",
      labels: { foo: "5.3", bar: "10.5", baz: "15.2" },
      want: "minf is 5.3 and maxf is 15.2",
    },
    {
      name: "ceil and floor",
      template: "ceil is {{ ceil .foo }} and floor is {{floor .foo }}",
      labels: { foo: "5.3" },
      want: "ceil is 6 and floor is 5",
    },
    { name: "mod", template: "mod is {{ mod .foo 3 }}", labels: { foo: "20" }, want: "mod is 2" },
    { name: "float64 then int", template: `{{ "2.5" | float64 | int | add 10}}`, want: "12" },
    {
      name: "unconvertible strings are zero",
      template: `{{ add .x 1 }} {{ addf .x 1 }}`,
      labels: { x: "abc" },
      want: "1 1",
    },
    { name: "hex strings convert", template: `{{ add "0x10" 1 }}`, want: "17" },
    {
      name: "division by zero",
      template: `{{ div 1 0 }}`,
      error: `template: line:1:3: executing "line" at <div>: error calling div: runtime error: integer divide by zero`,
    },
    {
      name: "datetime",
      template: `{{ sub (unixEpoch (toDate "2006-01-02" "2021-11-02")) (unixEpoch (toDate "2006-01-02" "2021-11-01")) }}`,
      want: "86400",
    },
    { name: "dateformat", template: `{{ date "2006-01-02" (toDate "2006-01-02" "2021-11-02") }}`, want: "2021-11-02" },
    {
      name: "date layout elements",
      template: `{{ date "Mon Jan _2 15:04:05.000 MST 2006 3PM -0700" __timestamp__ }}`,
      ts: 1656353124120000000n,
      want: "Mon Jun 27 18:05:24.120 UTC 2022 6PM +0000",
    },
    {
      name: "unparseable toDate is the zero time",
      template: `{{ toDate "2006-01-02" "nope" | unixEpoch }}`,
      want: "-62135596800",
    },
    { name: "now", template: "{{ div (unixEpoch now) (unixEpoch now) }}", want: "1" },
    { name: "__line__", template: "{{ __line__ }} bar {{ .bar }}", labels: { bar: "2" }, line: "1", want: "1 bar 2" },
    {
      name: "default",
      template: `{{.foo | default "-" }}{{.bar | default "-"}}{{.unknown | default "-"}}`,
      labels: { foo: "blip", bar: "" },
      want: "blip--",
    },
    {
      name: "__timestamp__ with date",
      template: `{{ __timestamp__ | date "2006-01-02" }} bar {{ .bar }}`,
      labels: { bar: "2" },
      ts: 1656331200000000000n,
      want: "2022-06-27 bar 2",
    },
    {
      name: "__timestamp__ with unixEpoch",
      template: "{{ __timestamp__ | unixEpoch }} bar {{ .bar }}",
      labels: { bar: "2" },
      ts: 1656353124120000000n,
      want: "1656353124 bar 2",
    },
    {
      name: "__timestamp__ printed",
      template: "{{ __timestamp__ }}",
      ts: 1656353124120000000n,
      want: "2022-06-27 18:05:24.12 +0000 UTC",
    },
    {
      name: "wrong number of args",
      template: "{{.foo | now}}",
      labels: { foo: "blip" },
      error: `template: line:1:9: executing "line" at <now>: wrong number of args for now: want 0 got 1`,
    },
    { name: "bytes", template: "{{ .foo | bytes }}", labels: { foo: "3 kB" }, want: "3000" },
    { name: "bytes printed as a Go float", template: "{{ .foo | bytes }}", labels: { foo: "3MB" }, want: "3e+06" },
    { name: "duration", template: "{{ .foo | duration }}", labels: { foo: "3ms" }, want: "0.003" },
    { name: "duration_seconds", template: "{{ .foo | duration_seconds }}", labels: { foo: "3m10s" }, want: "190" },
    {
      name: "toDateInZone and unixEpochMillis",
      template: `{{ .foo | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochMillis }}`,
      labels: { foo: "2023-03-10T01:32:40.340485723Z" },
      want: "1678411960340",
    },
    {
      name: "toDateInZone and unixEpochNanos",
      template: `{{ .foo | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochNanos }}`,
      labels: { foo: "2023-03-10T01:32:40.340485723Z" },
      want: "1678411960340485723",
    },
    {
      name: "toDateInZone with a named zone",
      template: `{{ .foo | toDateInZone "2006-01-02 15:04" "Europe/Paris" | unixEpoch }}`,
      labels: { foo: "2023-07-01 12:00" },
      want: "1688205600",
    },
    {
      name: "toDateInZone with an unknown zone uses UTC",
      template: `{{ .foo | toDateInZone "2006-01-02 15:04" "Mars/Base" | unixEpoch }}`,
      labels: { foo: "2023-07-01 12:00" },
      want: "1688212800",
    },
    {
      name: "unixToTime refuses odd lengths",
      template: `{{ .foo | unixToTime }}`,
      labels: { foo: "123" },
      error: `template: line:1:10: executing "line" at <unixToTime>: error calling unixToTime: unable to parse time '123': %!w(<nil>)`,
    },
    {
      name: "unixToTime from days",
      template: `{{ .foo | unixToTime | unixEpoch }}`,
      labels: { foo: "19373" },
      want: "1673827200",
    },
    {
      name: "unixToTime",
      template: `{{ .foo | unixToTime | date "2006-01-02T15:04:05" }}`,
      labels: { foo: "1673798889902" },
      want: "2023-01-15T16:08:09",
    },
    {
      name: "b64enc",
      template: "{{ .foo | b64enc }}",
      labels: { foo: "i'm a string, encode me!" },
      want: "aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh",
    },
    {
      name: "b64dec",
      template: "{{ .foo | b64dec }}",
      labels: { foo: "aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh" },
      want: "i'm a string, encode me!",
    },
    {
      name: "b64dec with missing padding",
      template: "{{ .foo | b64dec }} {{ .bar | b64dec }}",
      labels: { foo: "Zm9vYmE", bar: "Zm9vYg" },
      want: "fooba foob",
    },
    {
      name: "alignLeft",
      template: "{{ alignLeft 4 .foo }}|{{ alignLeft 7 .foo }}|",
      labels: { foo: "hello" },
      want: "hell|hello  |",
    },
    {
      name: "alignRight",
      template: "{{ alignRight 4 .foo }}|{{ alignRight 7 .foo }}",
      labels: { foo: "hello" },
      want: "ello|  hello",
    },
    { name: "simple key", template: "{{.foo}}", labels: { foo: "bar" }, want: "bar" },
    { name: "simple key with trailing text", template: "{{.foo}}  ", labels: { foo: "bar" }, want: "bar  " },
    { name: "simple key missing", template: "{{.missing}}", labels: { foo: "bar" }, want: "" },
    {
      name: "if else if else",
      template: `{{ if eq .a "1" }}one{{ else if eq .a "2" }}two{{ else }}other{{ end }}`,
      labels: { a: "2" },
      want: "two",
    },
    {
      name: "if else falls through",
      template: `{{ if eq .a "1" }}one{{ else if eq .a "2" }}two{{ else }}other{{ end }}`,
      labels: { a: "3" },
      want: "other",
    },
    {
      name: "eq with several values",
      template: `{{ if eq .a "x" "y" "z" }}hit{{ end }}`,
      labels: { a: "z" },
      want: "hit",
    },
    {
      name: "eq across types is an error",
      template: `{{ if eq .a 1 }}x{{ end }}`,
      labels: { a: "1" },
      error: `template: line:1:6: executing "line" at <eq>: error calling eq: incompatible types for comparison`,
    },
    {
      name: "numeric comparison after conversion",
      template: `{{ if gt (int .a) 5 }}big{{ else }}small{{ end }}`,
      labels: { a: "7" },
      want: "big",
    },
    {
      name: "string ordering",
      template: `{{ lt .a .b }} {{ ge .a .b }} {{ ne .a .b }} {{ le .a .a }}`,
      labels: { a: "abc", b: "abd" },
      want: "true false true true",
    },
    {
      name: "and/or return values",
      template: `{{ and .a .b }}|{{ or .c .a }}|{{ not .c }}`,
      labels: { a: "x", b: "y", c: "" },
      want: "y|x|true",
    },
    {
      name: "len and index",
      template: `{{ len .a }} {{ index . "a" }} {{ index .a 1 }}`,
      labels: { a: "héllo" },
      want: "6 héllo 195",
    },
    {
      name: "printf",
      template: `{{ printf "%05.1f|%-4s|%d|%q|%v|%x" 3.14159 "ab" 42 "x" .a 255 }}`,
      labels: { a: "v" },
      want: `003.1|ab  |42|"x"|v|ff`,
    },
    { name: "printf with a missing argument", template: `{{ printf "%s %s" "a" }}`, want: "a %!s(MISSING)" },
    { name: "print", template: `{{ print "a" 1 2 "b" }}`, want: "a1 2b" },
    { name: "variables", template: `{{ $x := .a }}{{ $x }}{{ $x = "z" }}{{ $x }}`, labels: { a: "y" }, want: "yz" },
    {
      name: "variables are scoped to their block",
      template: `{{ $x := "outer" }}{{ if true }}{{ $x := "inner" }}{{ $x }}{{ end }} {{ $x }}`,
      want: "inner outer",
    },
    {
      name: "with",
      template: `{{ with .a }}[{{ . }}]{{ else }}none{{ end }}{{ with .b }}[{{ . }}]{{ else }}none{{ end }}`,
      labels: { a: "x" },
      want: "[x]none",
    },
    {
      name: "range over the labels, sorted",
      template: `{{ range $k, $v := . }}{{$k}}={{$v}};{{ end }}`,
      labels: { b: "2", a: "1" },
      want: "a=1;b=2;",
    },
    {
      name: "range with break and continue",
      template: `{{ range $k, $v := . }}{{ if eq $k "b" }}{{ continue }}{{ end }}{{ if eq $k "d" }}{{ break }}{{ end }}{{ $k }}{{ end }}`,
      labels: { a: "", b: "", c: "", d: "", e: "" },
      want: "ac",
    },
    {
      name: "trim markers",
      template: "{{- .a -}}  x  {{- .b }}\n {{- .c }}",
      labels: { a: "1", b: "2", c: "3" },
      want: "1x23",
    },
    { name: "comments", template: "a{{/* note */}}b{{- /* trimmed */ -}} c", want: "abc" },
    { name: "raw strings", template: "{{ `a\\nb` }}", want: "a\\nb" },
    { name: "string escapes", template: `{{ "tab\\there \\u00e9" }}`, want: "tab\there é" },
    {
      name: "parenthesised pipelines",
      template: `{{ (printf "%s-%s" .a .b) | upper }}`,
      labels: { a: "x", b: "y" },
      want: "X-Y",
    },
    { name: "nil prints as no value", template: `{{ nil }}`, error: undefined, want: "<no value>" },
    {
      name: "numbers print as Go does",
      template: `{{ 3 }} {{ 1.5 }} {{ 1e3 }} {{ 1e7 }} {{ 0.00001 }} {{ -2 }}`,
      want: "3 1.5 1000 1e+07 1e-05 -2",
    },
    {
      name: "wrong argument type",
      template: `{{ ToUpper 3 }}`,
      error: `template: line:1:11: executing "line" at <3>: expected string; found 3`,
    },
    {
      name: "field of a string",
      template: `{{ .a.b }}`,
      labels: { a: "x" },
      error: `template: line:1:3: executing "line" at <.a.b>: can't evaluate field b in type string`,
    },
    {
      name: "error on a later line",
      template: "x\n  {{ div 1 0 }}",
      error: `template: line:2:5: executing "line" at <div>: error calling div: runtime error: integer divide by zero`,
    },
    {
      name: "sees extracted labels and error labels",
      template: `{{ .__error__ }}/{{ .a }}`,
      labels: { a: "1" },
      want: "/1",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = run([lineFormat(c.template)], c.line ?? "original", c.labels ?? {}, {}, c.ts ?? 0n)!;
      if (c.error !== undefined) {
        assert.equal(got.line, c.line ?? "original", "a failing template keeps the line");
        assert.equal(got.labels.__error__, "TemplateFormatErr");
        assert.equal(got.labels.__error_details__, c.error);
      } else {
        assert.equal(got.labels.__error__, undefined, got.labels.__error_details__);
        assert.equal(got.line, c.want);
      }
    });
  }

  it("reads a label set by an earlier stage", () => {
    assert.equal(
      run([logfmt(), lineFormat("{{.level | upper}}: {{.msg}}")], `level=warn msg="disk full"`)!.line,
      "WARN: disk full",
    );
  });

  for (const bad of [
    "{{ .a",
    "{{ nope .a }}",
    "{{ if .a }}x",
    "{{ end }}",
    '{{ define "x" }}{{ end }}',
    "{{ $undefined }}",
    "{{ .a | }}",
    "{{ break }}",
  ]) {
    it(`refuses ${JSON.stringify(bad)} when compiled`, () => assert.throws(() => compilePipeline([lineFormat(bad)])));
  }
});

table("label_format", [
  {
    name: "rename",
    stages: [labelFormat(rename("new", "old"))],
    line: "",
    stream: { old: "v", other: "o" },
    want: { new: "v", other: "o" },
  },
  {
    name: "rename a missing label does nothing",
    stages: [labelFormat(rename("new", "missing"))],
    line: "",
    stream: { a: "1" },
    want: { a: "1" },
  },
  {
    name: "template",
    stages: [labelFormat(tmpl("combined", "{{.a}}-{{.b}}"))],
    line: "",
    stream: { a: "1", b: "2" },
    want: { a: "1", b: "2", combined: "1-2" },
  },
  {
    name: "overwrite a stream label",
    stages: [labelFormat(tmpl("a", "{{.a | upper}}"))],
    line: "",
    stream: { a: "x" },
    want: { a: "X" },
  },
  {
    name: "templates of one stage see the labels from before the stage",
    stages: [labelFormat(tmpl("a", "changed"), tmpl("b", "{{.a}}"))],
    line: "",
    stream: { a: "orig" },
    want: { a: "changed", b: "orig" },
  },
  {
    name: "a later stage sees the change",
    stages: [labelFormat(tmpl("a", "changed")), labelFormat(tmpl("b", "{{.a}}"))],
    line: "",
    stream: { a: "orig" },
    want: { a: "changed", b: "changed" },
  },
  {
    name: "a template may use __line__",
    stages: [labelFormat(tmpl("l", "{{ __line__ | len }}"))],
    line: "hello",
    want: { l: "5" },
  },
  {
    name: "a failing template sets the error and leaves the label",
    stages: [labelFormat(tmpl("bar", `{{replace "test" .foo}}`), tmpl("y", "ok"))],
    line: "",
    stream: { foo: "blip", bar: "blop" },
    want: {
      foo: "blip",
      bar: "blop",
      y: "ok",
      __error__: "TemplateFormatErr",
      __error_details__: `template: label:1:2: executing "label" at <replace>: wrong number of args for replace: want 3 got 2`,
    },
  },
  {
    name: "rename onto itself removes it, as Loki does",
    stages: [labelFormat(rename("a", "a"))],
    line: "",
    stream: { a: "1" },
    want: {},
  },
  {
    name: "metadata renamed",
    stages: [labelFormat(rename("t", "trace"))],
    line: "",
    metadata: { trace: "abc" },
    want: { t: "abc" },
  },
]);

describe("label_format validation", () => {
  it("refuses __error__ as a target", () =>
    assert.throws(() => compilePipeline([labelFormat(tmpl("__error__", "x"))]), /cannot be formatted/));
  it("refuses the same label twice", () =>
    assert.throws(() => compilePipeline([labelFormat(tmpl("a", "x"), rename("a", "b"))]), /multiple label name/));
});

table("structured metadata", [
  {
    name: "merged into the labels",
    stages: [],
    line: "",
    stream: { app: "a" },
    metadata: { trace_id: "t1" },
    want: { app: "a", trace_id: "t1" },
  },
  {
    name: "a metadata name taken by a stream label gets the suffix",
    stages: [],
    line: "",
    stream: { app: "a" },
    metadata: { app: "m" },
    want: { app: "a", app_extracted: "m" },
  },
  {
    name: "filterable",
    stages: [filter(str("trace_id", "=", "t1"))],
    line: "",
    metadata: { trace_id: "t1" },
    want: { trace_id: "t1" },
  },
]);

describe("unwrap", () => {
  const sample = (unwrap: Unwrap, record: Record<string, string>) => {
    const result = compileUnwrap(unwrap)({ line: "", labels: labels(record) });
    return result === null ? null : { value: result.value, labels: plain(result.labels) };
  };
  const unwrap = (
    label: string,
    conversion: Unwrap["conversion"] = "none",
    postFilters: LabelFilterExpr[] = [],
  ): Unwrap => ({ label, conversion, postFilters });

  it("takes a float and removes the label", () => {
    assert.deepEqual(sample(unwrap("latency"), { app: "a", latency: "0.25" }), { value: 0.25, labels: { app: "a" } });
  });
  it("converts durations to seconds", () => {
    assert.deepEqual(sample(unwrap("d", "duration"), { d: "1m30s" }), { value: 90, labels: {} });
    assert.deepEqual(sample(unwrap("d", "duration_seconds"), { d: "250ms" }), { value: 0.25, labels: {} });
  });
  it("converts bytes", () => {
    assert.deepEqual(sample(unwrap("size", "bytes"), { size: "2KiB" }), { value: 2048, labels: {} });
  });
  it("skips entries without the label or with it empty", () => {
    assert.equal(sample(unwrap("latency"), { app: "a" }), null);
    assert.equal(sample(unwrap("latency"), { latency: "" }), null);
  });
  it("marks conversion errors and keeps every label", () => {
    assert.deepEqual(sample(unwrap("latency"), { app: "a", latency: "fast" }), {
      value: 0,
      labels: {
        app: "a",
        latency: "fast",
        __error__: "SampleExtractionErr",
        __error_details__: `strconv.ParseFloat: parsing "fast": invalid syntax`,
      },
    });
  });
  it("drops errored samples with a post filter", () => {
    assert.equal(sample(unwrap("latency", "none", [str("__error__", "=", "")]), { latency: "fast" }), null);
    assert.deepEqual(sample(unwrap("latency", "none", [str("__error__", "=", "")]), { latency: "2" }), {
      value: 2,
      labels: {},
    });
  });
  it("applies value post filters", () => {
    assert.equal(sample(unwrap("latency", "none", [str("app", "=", "b")]), { app: "a", latency: "1" }), null);
  });
  it("keeps an earlier pipeline error", () => {
    assert.deepEqual(sample(unwrap("v"), { v: "3", __error__: JSON_ERR, __error_details__: "x" }), {
      value: 3,
      labels: { v: "3", __error__: JSON_ERR, __error_details__: "x" },
    });
  });
  it("drops leftover error details once the error itself was dropped", () => {
    assert.deepEqual(sample(unwrap("v"), { v: "3", __error_details__: "x" }), { value: 3, labels: {} });
  });
  it("runs after a full pipeline", () => {
    const pipeline = compilePipeline([logfmt(), filter(str("level", "=", "error"))]);
    const extract = compileUnwrap(unwrap("took", "duration"));
    const values = ["level=error took=1s", "level=info took=2s", "level=error took=500ms"].map((line) => {
      const result = pipeline.process(0n, line, labels({ app: "x" }), labels());
      return result === null ? null : extract(result);
    });
    assert.deepEqual(
      values.map((value) => value?.value ?? null),
      [1, null, 0.5],
    );
    assert.deepEqual(plain(values[0]!.labels), { app: "x", level: "error" });
  });
});

describe("pipeline reuse", () => {
  it("does not leak labels from one entry into the next", () => {
    const pipeline = compilePipeline([logfmt()]);
    const first = pipeline.process(0n, "a=1", labels({ s: "x" }), labels());
    const second = pipeline.process(0n, "b=2", labels({ s: "y" }), labels());
    assert.deepEqual(plain(first!.labels), { s: "x", a: "1" });
    assert.deepEqual(plain(second!.labels), { s: "y", b: "2" });
  });
  it("returns null-prototype label records", () => {
    const result = compilePipeline([json()]).process(0n, `{"constructor":"c"}`, labels(), labels());
    assert.equal(Object.getPrototypeOf(result!.labels), null);
    assert.equal(result!.labels.constructor, "c");
  });
  it("does not modify the caller's labels", () => {
    const stream = labels({ a: "1" });
    compilePipeline([drop("a"), labelFormat(tmpl("b", "x"))]).process(0n, "", stream, labels());
    assert.deepEqual(plain(stream), { a: "1" });
  });
});
