import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { extractedOf, runOne, stagePipeline } from "./helpers/stages.js";

// Conformance tables of the parsing stages, written from the examples of Promtail's stage documentation.

describe("json stage", () => {
  const line =
    '{"log":"log message\\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z","extra":"{\\"user\\":\\"marco\\"}"}';
  it("extracts each expression's value (Promtail's first example)", () => {
    const stages = [{ json: { expressions: { output: "log", stream: "stream", timestamp: "time" } } }];
    assert.deepEqual(extractedOf(stages, line, ["output", "stream", "timestamp"]), {
      output: "log message\n",
      stream: "stderr",
      timestamp: "2019-04-30T02:12:41.8443515Z",
    });
  });
  it("parses an extracted value with `source`, an empty expression naming the key itself", () => {
    const stages = [
      { json: { expressions: { extra: null } } },
      { json: { expressions: { user: "" }, source: "extra" } },
    ];
    assert.deepEqual(extractedOf(stages, line, ["user"]), { user: "marco" });
  });
  it("keeps numbers and booleans, writes objects and arrays as JSON, and extracts nothing for null", () => {
    const stages = [
      {
        json: {
          expressions: { n: "a.n", b: "a.b", o: "a.o", list: "a.l[*].x", none: "a.missing", dotted: '"k.with.dots"' },
        },
      },
    ];
    const doc = '{"a":{"n":1.5,"b":true,"o":{"z":1},"l":[{"x":1},{"x":2}]},"k.with.dots":"yes"}';
    assert.deepEqual(extractedOf(stages, doc, ["n", "b", "o", "list", "none", "dotted"]), {
      n: "1.5",
      b: "true",
      o: '{"z":1}',
      list: "[1,2]",
      dotted: "yes",
    });
  });
  it("counts a line that is not JSON as failed and keeps it, or drops it with drop_malformed", async () => {
    const keep = stagePipeline([{ json: { expressions: { a: "a" } } }]);
    assert.equal(keep.run([{ line: "not json" }]).length, 1);
    assert.deepEqual(await keep.counts(), { "json/failed/malformed_json": 1 });
    const drop = stagePipeline([{ json: { expressions: { a: "a" }, drop_malformed: true } }]);
    assert.equal(drop.run([{ line: "not json" }, { line: '{"a":1}' }]).length, 1);
    assert.deepEqual(await drop.counts(), { "json/dropped/malformed_json": 1, "json/processed": 1 });
  });
  it("refuses an invalid JMESPath expression when the configuration loads, naming the key", () => {
    assert.throws(
      () => stagePipeline([{ json: { expressions: { a: "a[" } } }]),
      (err: Error) => err.message.includes("invalid JMESPath") && err.message.includes('"a"'),
    );
  });
});

describe("logfmt stage", () => {
  const line =
    'time=2012-11-01T22:08:41+00:00 app=loki level=WARN duration=125 message="this is a log line" extra="user=foo"';
  it("extracts the mapped keys (Promtail's example)", () => {
    const stages = [{ logfmt: { mapping: { timestamp: "time", app: null, duration: null, unknown: null } } }];
    assert.deepEqual(extractedOf(stages, line, ["timestamp", "app", "duration", "unknown"]), {
      timestamp: "2012-11-01T22:08:41+00:00",
      app: "loki",
      duration: "125",
    });
  });
  it("parses an extracted value with `source`", () => {
    const stages = [{ logfmt: { mapping: { extra: null } } }, { logfmt: { mapping: { user: null }, source: "extra" } }];
    assert.deepEqual(extractedOf(stages, line, ["user"]), { user: "foo" });
  });
});

describe("regex stage", () => {
  it("extracts named groups (Promtail's CRI example)", () => {
    const stages = [
      { regex: { expression: "^(?s)(?P<time>\\S+?) (?P<stream>stdout|stderr) (?P<flags>\\S+?) (?P<content>.*)$" } },
    ];
    assert.deepEqual(
      extractedOf(stages, "2019-01-01T01:00:00.000000001Z stderr P i'm a log message!", [
        "time",
        "stream",
        "flags",
        "content",
      ]),
      { time: "2019-01-01T01:00:00.000000001Z", stream: "stderr", flags: "P", content: "i'm a log message!" },
    );
  });
  it("matches an extracted value with `source`, and counts a line it does not match", async () => {
    const p = stagePipeline([{ regex: { expression: "^(?P<year>\\d+)", source: "time" } }, { labels: { year: null } }]);
    const [out] = p.run([{ line: "x", labels: { time: "2019-01-01" } }]);
    assert.equal(out?.labels["year"], "2019");
    p.run([{ line: "x", labels: { time: "none" } }]);
    assert.equal((await p.counts())["regex/failed/no_match"], 1);
  });
  it("refuses an expression without a named group, or not RE2, when the configuration loads", () => {
    assert.throws(() => stagePipeline([{ regex: { expression: "(\\d+)" } }]), /expected at least one named group/);
    assert.throws(() => stagePipeline([{ regex: { expression: "(?<=a)b" } }]), /expression/);
  });
});

describe("replace stage", () => {
  it("replaces a group of the line (Promtail's password example)", () => {
    const out = runOne([{ replace: { expression: "password (\\S+)", replace: "****" } }], {
      line: "2019-01-01T01:00:00.000000001Z stderr P i'm a log message who has sensitive information with password xyz!",
    });
    assert.equal(
      out?.line,
      "2019-01-01T01:00:00.000000001Z stderr P i'm a log message who has sensitive information with password ****",
    );
  });
  it("renders a template per group, `.Value` the captured text (Promtail's access log example)", () => {
    const expression =
      '^(?P<ip>\\S+) (?P<identd>\\S+) (?P<user>\\S+) \\[(?P<timestamp>[\\w:/]+\\s[+\\-]\\d{4})\\] "(?P<action>\\S+)\\s?(?P<path>\\S+)?\\s?(?P<protocol>\\S+)?" (?P<status>\\d{3}|-) (\\d+|-)\\s?"?(?P<referer>[^"]*)"?\\s?"?(?P<useragent>[^"]*)?"?$';
    const replace =
      '{{ if eq .Value "200" }}{{ Replace .Value "200" "HttpStatusOk" -1 }}{{ else }}{{ .Value | ToUpper }}{{ end }}';
    const out = runOne([{ replace: { expression, replace } }], {
      line: '11.11.11.11 - frank [25/Jan/2000:14:00:01 -0500] "GET /1986.js HTTP/1.1" 200 932 "-" "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7 GTB6"',
    });
    assert.equal(
      out?.line,
      '11.11.11.11 - FRANK [25/JAN/2000:14:00:01 -0500] "GET /1986.JS HTTP/1.1" HttpStatusOk 932 "-" "MOZILLA/5.0 (WINDOWS; U; WINDOWS NT 5.1; DE; RV:1.9.1.7) GECKO/20091221 FIREFOX/3.5.7 GTB6"',
    );
  });
  it("removes groups with an empty replacement, at every match, and extracts named groups", () => {
    const stages = [{ replace: { expression: "(?P<digits>\\d+)" } }, { labels: { digits: null } }];
    const out = runOne(stages, { line: "a1b22c333" });
    assert.equal(out?.line, "abc");
    assert.equal(out?.labels["digits"], "333");
  });
  it("changes an extracted value with `source`, leaving the line and the text outside the groups", () => {
    const stages = [
      { regex: { expression: "user=(?P<user>\\S+)" } },
      { replace: { expression: "(\\w)\\w*", source: "user", replace: "{{ .Value }}***" } },
      { labels: { user: null } },
    ];
    const out = runOne(stages, { line: "user=marco" });
    assert.deepEqual([out?.line, out?.labels["user"]], ["user=marco", "m***arco"]);
  });
});

describe("template stage", () => {
  const cases: [string, Record<string, string>, string, string][] = [
    ["hello world!", {}, "new_key", "hello world!"],
    ["{{ .Value }}_some_suffix", { app: "loki" }, "app", "loki_some_suffix"],
    ["{{ ToLower .Value }}", { app: "LOKI" }, "app", "loki"],
    ['{{ Replace .Value "loki" "blokey" 1 }}', { app: "loki" }, "app", "blokey"],
    ["{{ .level }}-{{ .app }}", { app: "api", level: "warn" }, "combined", "warn-api"],
  ];
  for (const [template, labels, source, expected] of cases)
    it(`${template} on ${JSON.stringify(labels)} sets ${source}`, () => {
      const out = runOne([{ template: { source, template } }, { labels: { [source]: null } }], {
        line: "x",
        labels: { job: "t", ...labels },
      });
      assert.equal(out?.labels[source], expected);
    });
  it("Sha2Hash is the SHA-256 of its arguments joined, as Promtail's", async () => {
    const { createHash } = await import("node:crypto");
    const out = runOne(
      [{ template: { source: "h", template: '{{ Sha2Hash "loki" "salt" }}' } }, { labels: { h: null } }],
      {
        line: "x",
      },
    );
    assert.equal(out?.labels["h"], createHash("sha256").update("lokisalt").digest("hex"));
  });
  it("refuses a template that does not parse when the configuration loads", () => {
    assert.throws(() => stagePipeline([{ template: { source: "a", template: "{{ .Value" } }]), /template/);
  });
});

describe("cri and docker stages", () => {
  it("cri: the content becomes the line, with the runtime's time and the stream label", () => {
    const out = runOne([{ cri: {} }], { line: "2019-04-30T02:12:41.8443515Z stdout F message" });
    assert.deepEqual(
      [out?.line, out?.labels["stream"], out?.timeUnixNano],
      ["message", "stdout", 1556590361844351500n],
    );
  });
  it("docker: the log field becomes the line without its newline", () => {
    const out = runOne([{ docker: null }], {
      line: '{"log":"log message\\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}',
    });
    assert.deepEqual(
      [out?.line, out?.labels["stream"], out?.timeUnixNano],
      ["log message", "stderr", 1556590361844351500n],
    );
  });
  it("a line in neither format goes on unchanged and is counted as failed", async () => {
    const p = stagePipeline([{ cri: {} }]);
    assert.equal(p.run([{ line: "plain" }])[0]?.line, "plain");
    assert.deepEqual(await p.counts(), { "cri/failed/not_container_format": 1 });
  });
});
