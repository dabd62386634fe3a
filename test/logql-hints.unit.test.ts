import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { labelsOf } from "../proto/labels.js";
import { compilePipeline } from "../query/logql/pipeline/pipeline.js";
import { requiredLabels } from "../query/logql/pipeline/hints.js";
import type { RangeAggregationExpr } from "../common/logql/syntax/ast.js";
import { parseLogQL } from "../common/logql/syntax/parser.js";

// Parser hints (query/logql/pipeline/hints.ts): which labels a grouped metric query makes its parsers extract.

function range(query: string): RangeAggregationExpr {
  const expr = parseLogQL(query);
  if (expr.kind !== "range_aggregation") throw new Error(`${query} is not a range aggregation`);
  return expr;
}

function required(query: string, by?: string[]): string[] | undefined {
  const expr = range(query);
  const grouping = by === undefined ? expr.grouping : { without: false, labels: by };
  const names = requiredLabels(expr.range.log.pipeline, grouping, expr.range.unwrap);
  return names === undefined ? undefined : [...names].sort();
}

describe("parser hints", () => {
  it("need the grouping, the filtered, formatted, renamed and unwrapped labels, each also with _extracted", () => {
    assert.deepEqual(required('count_over_time({a="b"} | logfmt [5m])', ["status"]), ["status", "status_extracted"]);
    assert.deepEqual(
      required(
        'count_over_time({a="b"} | logfmt | level="error" or code>=500 | label_format x="{{.method}}", y=path | drop z="1" [5m])',
        [],
      ),
      [
        "code",
        "code_extracted",
        "level",
        "level_extracted",
        "method",
        "method_extracted",
        "path",
        "path_extracted",
        "z",
        "z_extracted",
      ],
    );
    assert.deepEqual(required('max_over_time({a="b"} | json | unwrap latency | host!="" [5m]) by (pod)'), [
      "host",
      "host_extracted",
      "latency",
      "latency_extracted",
      "pod",
      "pod_extracted",
    ]);
  });

  it("need every label without a by grouping, with `without`, or with a template that reads the whole map", () => {
    assert.equal(required('count_over_time({a="b"} | logfmt [5m])'), undefined);
    assert.equal(
      requiredLabels(range('count_over_time({a="b"} | logfmt [5m])').range.log.pipeline, {
        without: true,
        labels: ["x"],
      }),
      undefined,
    );
    assert.equal(required('count_over_time({a="b"} | logfmt | line_format "{{ . }}" [5m])', ["x"]), undefined);
    assert.equal(
      required('count_over_time({a="b"} | logfmt | line_format "{{ range $k, $v := $ }}{{$k}}{{end}}" [5m])', ["x"]),
      undefined,
    );
  });

  it("make logfmt and json extract only the needed labels, and still flag malformed lines", () => {
    const stream = labelsOf([["app", "api"]]);
    const none = labelsOf([]);
    const logfmt = range('count_over_time({a="b"} | logfmt [5m])').range.log.pipeline;
    const hinted = compilePipeline(logfmt, { required: new Set(["status", "app_extracted"]) });
    assert.deepEqual(
      { ...hinted.process(0n, "status=500 app=x path=/a", stream, none)!.labels },
      { app: "api", status: "500", app_extracted: "x" },
    );
    const json = range('count_over_time({a="b"} | json [5m])').range.log.pipeline;
    const jsonHinted = compilePipeline(json, { required: new Set(["user_tier"]) });
    assert.deepEqual(
      {
        ...jsonHinted.process(0n, '{"level":"info","user":{"tier":"gold","id":"u1"},"other":{"x":1}}', stream, none)!
          .labels,
      },
      { app: "api", user_tier: "gold" },
    );
    // A malformed object the hints skip is still walked for its error, as extracting everything would.
    const broken = jsonHinted.process(0n, '{"level":"info","other":{"x":}}', stream, none)!.labels;
    const full = compilePipeline(json).process(0n, '{"level":"info","other":{"x":}}', stream, none)!.labels;
    assert.equal(broken["__error__"], "JSONParserErr");
    assert.equal(broken["__error_details__"], full["__error_details__"]);
  });
});
