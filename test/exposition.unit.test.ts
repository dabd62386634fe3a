import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { goParseFloat } from "../common/go/parse.js";
import {
  type ExposedSample,
  ExpositionError,
  type ExpositionFormat,
  formatOf,
  parseExposition,
  seriesLabels,
} from "../collector/receivers/exposition.js";

// The exposition parser (text 0.0.4 and OpenMetrics 1.0) on its own: what it reads, what it refuses, and a fuzz
// run over mutated expositions. test/scrape-prometheus.test.ts compares it with Debian's Prometheus.

function samples(body: string, format: ExpositionFormat = "text"): ExposedSample[] {
  const out: ExposedSample[] = [];
  parseExposition(body, format, (s) => out.push(s));
  return out;
}

function failure(body: string, format: ExpositionFormat = "text"): string {
  try {
    parseExposition(body, format, () => {});
  } catch (err) {
    assert.ok(err instanceof ExpositionError, `not an ExpositionError: ${(err as Error).stack}`);
    return err.message;
  }
  assert.fail(`parsed without error: ${JSON.stringify(body)}`);
}

const TEXT_EXPOSITION = `# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} NaN
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
spaced  {  a = "1" , b="2" c="3",}  -0.5e-3\t
`;

describe("text exposition format 0.0.4", () => {
  it("reads samples with labels, escapes, timestamps, types and free whitespace", () => {
    const got = samples(TEXT_EXPOSITION);
    assert.deepEqual(
      got.map((s) => [s.name, s.value, s.timestampMs, s.type, s.family]),
      [
        ["http_requests_total", 1027, 1395066363000, "counter", "http_requests_total"],
        ["http_requests_total", 3, 1395066363000, "counter", "http_requests_total"],
        ["msdos_file_access_time_seconds", 1.458255915e9, undefined, "unknown", "msdos_file_access_time_seconds"],
        ["metric_without_timestamp_and_labels", 12.47, undefined, "unknown", "metric_without_timestamp_and_labels"],
        ["something_weird", Infinity, undefined, "unknown", "something_weird"],
        ["http_request_duration_seconds_bucket", 24054, undefined, "histogram", "http_request_duration_seconds"],
        ["http_request_duration_seconds_bucket", 144320, undefined, "histogram", "http_request_duration_seconds"],
        ["http_request_duration_seconds_sum", 53423, undefined, "histogram", "http_request_duration_seconds"],
        ["http_request_duration_seconds_count", 144320, undefined, "histogram", "http_request_duration_seconds"],
        ["rpc_duration_seconds", NaN, undefined, "summary", "rpc_duration_seconds"],
        ["rpc_duration_seconds_sum", 1.7560473e7, undefined, "summary", "rpc_duration_seconds"],
        ["rpc_duration_seconds_count", 2693, undefined, "summary", "rpc_duration_seconds"],
        ["spaced", -0.0005, undefined, "unknown", "spaced"],
      ],
    );
    assert.deepEqual(
      { ...seriesLabels(got[2]!.series) },
      {
        __name__: "msdos_file_access_time_seconds",
        path: "C:\\DIR\\FILE.TXT",
        error: 'Cannot find file:\n"FILE.TXT"',
      },
    );
    assert.deepEqual({ ...seriesLabels(got[12]!.series) }, { __name__: "spaced", a: "1", b: "2", c: "3" });
    // Other escapes keep their backslash, as Prometheus's replacer leaves them.
    assert.deepEqual({ ...seriesLabels('m{a="x\\ty\\\\"}') }, { __name__: "m", a: "x\\ty\\" });
  });

  it("refuses what Prometheus refuses, naming the line", () => {
    const cases: [string, RegExp][] = [
      ["m\n", /expected value after metric/],
      ['m{a="1"}', /expected value after metric/],
      ["m 1\u0000junk\n", /expected timestamp or new record/],
      ["ok 1\nm{a=1} 2\n", /line 2: expected label value/],
      ['m{,a="1"} 1\n', /expected label name/],
      ['m{a="1",,} 1\n', /expected label name/],
      ['m{a="1"} 1 2 3\n', /expected next entry after timestamp/],
      ["m 1 -5\n", /expected timestamp or new record/],
      ["m 1.5.5\n", /invalid value/],
      ["m 0x1p3\n", /invalid value/],
      ["m 1_000\n", /invalid value/],
      ["m 1e999\n", /invalid value/],
      ["m +nan\n", /invalid value/],
      ["m 1 99999999999999999999\n", /timestamp out of range/],
      ["# TYPE m countr\n", /invalid metric type/],
      ["# TYPE 1m counter\n", /expected metric name after TYPE/],
      ["-m 1\n", /not a valid start token/],
      ['m{a="1\\\n"} 1\n', /invalid escape in label value/],
      ['m{a="1} 1\n', /unterminated label value/],
    ];
    for (const [body, expected] of cases) assert.match(failure(body), expected, JSON.stringify(body));
    assert.throws(() => seriesLabels('m{a="1",a="2"}'), /label name "a" is not unique/);
    assert.throws(() => seriesLabels('m{__name__="x"}'), /not unique/);
  });

  it("lets the last line end without a newline, stops at a NUL that starts a line, reads an empty body as no samples", () => {
    assert.equal(samples("m 1\n# a comment").length, 1);
    assert.deepEqual(
      samples("# TYPE m counter\nm 1 5").map((s) => [s.name, s.timestampMs, s.type]),
      [["m", 5, "counter"]],
    );
    assert.equal(samples("# HELP m text").length, 0);
    assert.equal(samples("m 1\n\u0000garbage").length, 1);
    assert.equal(samples("").length, 0);
    assert.equal(samples("\n\n   \n").length, 0);
  });

  it("keeps blanks before a sample's name in the name, which no scrape accepts, as Prometheus does", () => {
    const [sample] = samples('\t m{a="1"} 1\n');
    assert.equal(sample!.name, "\t m");
    assert.equal(seriesLabels(sample!.series)["__name__"], "\t m");
    assert.deepEqual({ ...seriesLabels(sample!.series) }, { __name__: "\t m", a: "1" });
  });
});

describe("OpenMetrics 1.0", () => {
  const OM = `# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
# TYPE go_goroutines gauge
go_goroutines 69
# TYPE process_cpu_seconds counter
# UNIT process_cpu_seconds seconds
process_cpu_seconds_total 4.20072246e+06 1605281325.5
process_cpu_seconds_created 1.6e9
# TYPE foo histogram
foo_bucket{le="0.1"} 8 # {trace_id="KOO5S4vxi0o"} 0.067
foo_bucket{le="+Inf"} 17 # {trace_id="oHg5SJYRHA0"} 9.8 1520879607.789
foo_count 17
foo_sum 324789.3
# TYPE info_metric info
info_metric_info{version="1.2"} 1
# TYPE state stateset
state{state="a"} 1
# EOF
`;

  it("reads families, units, _created, exemplars (left out) and timestamps in seconds", () => {
    const got = samples(OM, "openmetrics");
    assert.deepEqual(
      got.map((s) => [s.name, s.value, s.timestampMs, s.type]),
      [
        ["acme_http_router_request_seconds_sum", 9036.32, undefined, "summary"],
        ["acme_http_router_request_seconds_count", 807283, undefined, "summary"],
        ["acme_http_router_request_seconds_created", 1605281325, undefined, "summary"],
        ["go_goroutines", 69, undefined, "gauge"],
        ["process_cpu_seconds_total", 4.20072246e6, 1605281325500, "counter"],
        ["process_cpu_seconds_created", 1.6e9, undefined, "counter"],
        ["foo_bucket", 8, undefined, "histogram"],
        ["foo_bucket", 17, undefined, "histogram"],
        ["foo_count", 17, undefined, "histogram"],
        ["foo_sum", 324789.3, undefined, "histogram"],
        ["info_metric_info", 1, undefined, "info"],
        ["state", 1, undefined, "stateset"],
      ],
    );
  });

  it("is strict where OpenMetrics is", () => {
    const cases: [string, RegExp][] = [
      ["m 1\n", /data does not end with # EOF/],
      ["m 1", /data does not end with # EOF/],
      ["m 1\n# EOF\nm 2\n", /unexpected data after # EOF/],
      ["\n# EOF\n", /unexpected blank line/],
      ["# a comment\n# EOF\n", /a comment other than HELP, TYPE, UNIT or EOF/],
      ["m  1\n# EOF\n", /invalid value|expected value/],
      ['m{a="1",} 1\n# EOF\n', /expected label name/],
      ['m{a="1" ,b="2"} 1\n# EOF\n', /expected comma/],
      ['m 1 # {a="1"} 1\n# EOF\n', /does not support exemplars/],
      ["# UNIT m_bytes seconds\n# EOF\n", /unit not a suffix/],
      ["# TYPE m untyped\n# EOF\n", /invalid metric type/],
      ["# HELP m\n# EOF\n", /expected text in HELP/],
      ["m 1 NaN\n# EOF\n", /invalid timestamp/],
      ['m{a="x\ny"} 1\n# EOF\n', /newline in label value/],
    ];
    for (const [body, expected] of cases) assert.match(failure(body, "openmetrics"), expected, JSON.stringify(body));
    assert.equal(samples("# EOF", "openmetrics").length, 0);
  });

  it("is chosen by Content-Type as Prometheus chooses", () => {
    assert.equal(formatOf("application/openmetrics-text; version=1.0.0; charset=utf-8"), "openmetrics");
    assert.equal(formatOf("text/plain; version=0.0.4"), "text");
    assert.equal(formatOf(undefined), "text");
    assert.equal(formatOf("application/json"), "text");
  });
});

describe("Go floats", () => {
  it("reads what strconv.ParseFloat reads, less hex and underscores", () => {
    const ok: [string, number][] = [
      ["1", 1],
      ["-1.5e3", -1500],
      ["+.5", 0.5],
      ["5.", 5],
      ["Inf", Infinity],
      ["+inf", Infinity],
      ["-Infinity", -Infinity],
      ["nan", NaN],
      ["1e-400", 0],
      ["007", 7],
    ];
    for (const [text, value] of ok) assert.equal(goParseFloat(text).value, value, text);
    for (const text of ["", ".", "1e", "0x10", "1_0", "infin", "+nan", "1e400", " 1", "Infinityy"])
      assert.ok(goParseFloat(text).error, text);
  });
});

describe("exposition fuzzing", () => {
  it("answers every mutation of valid expositions with samples or an ExpositionError, never anything else", () => {
    let state = 0x2545f4914f6cdd1dn;
    const random = (n: number) => {
      state ^= state << 13n;
      state ^= state >> 7n;
      state ^= state << 17n;
      state &= 0xffffffffffffffffn;
      return Number(state % BigInt(n));
    };
    const alphabet = ' \t\n{}",=#\\01aZ_:.-+eEIiNn\u0000é😀';
    const seeds: [string, ExpositionFormat][] = [
      [TEXT_EXPOSITION, "text"],
      [OPENMETRICS_SEED, "openmetrics"],
    ];
    let parsed = 0;
    let refused = 0;
    for (let round = 0; round < 20_000; round++) {
      const [seed, format] = seeds[round % 2]!;
      const chars = [...seed];
      for (let m = 1 + random(4); m > 0; m--) {
        const at = random(chars.length + 1);
        const op = random(3);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, alphabet[random(alphabet.length)]!);
        else chars.splice(at, 1, alphabet[random(alphabet.length)]!);
      }
      const body = chars.join("");
      try {
        parseExposition(body, format, (s) => {
          seriesLabels(s.series);
          assert.equal(typeof s.value, "number");
        });
        parsed++;
      } catch (err) {
        assert.ok(err instanceof ExpositionError, `${(err as Error).stack}\ninput: ${JSON.stringify(body)}`);
        refused++;
      }
    }
    assert.ok(parsed > 1000 && refused > 1000, `parsed ${parsed}, refused ${refused}`);
  });

  it("reads a 4 MiB label value and 100,000 samples in one pass", () => {
    const long = "x".repeat(4 << 20);
    assert.equal(samples(`m{a="${long}"} 1\n`).length, 1);
    const many = Array.from({ length: 100_000 }, (_, i) => `m{i="${i}"} ${i}\n`).join("");
    assert.equal(samples(many).length, 100_000);
  });
});

const OPENMETRICS_SEED = `# TYPE c counter
# HELP c help \\n text
c_total{a="1",b="x\\"y"} 1 1.5 # {t="1"} 2 3
c_created 1
# TYPE h histogram
h_bucket{le="1"} 2
h_bucket{le="+Inf"} 3
h_sum 4
h_count 3
# EOF
`;
