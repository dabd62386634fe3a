import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NOW_MS, stagePipeline } from "./helpers/stages.js";

// The timestamp stage's conformance table: Go's named and reference layouts, as Promtail's documentation lists them.

const ns = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;

function stamp(format: string, value: string, extra: Record<string, unknown> = {}): bigint | undefined {
  const p = stagePipeline([{ timestamp: { source: "ts", format, ...extra } }]);
  return p.run([{ line: "x", labels: { job: "t", ts: value } }])[0]?.timeUnixNano;
}

describe("timestamp stage", () => {
  const cases: [string, string, bigint][] = [
    ["RFC3339", "2026-12-06T10:11:12+01:00", ns("2026-12-06T09:11:12Z")],
    ["RFC3339Nano", "2026-12-06T10:11:12.123456789Z", ns("2026-12-06T10:11:12Z") + 123456789n],
    ["ANSIC", "Sun Dec  6 10:11:12 2026", ns("2026-12-06T10:11:12Z")],
    ["UnixDate", "Sun Dec  6 10:11:12 UTC 2026", ns("2026-12-06T10:11:12Z")],
    ["RubyDate", "Sun Dec 06 10:11:12 -0500 2026", ns("2026-12-06T15:11:12Z")],
    ["RFC822Z", "06 Dec 26 10:11 +0200", ns("2026-12-06T08:11:00Z")],
    ["RFC1123", "Sun, 06 Dec 2026 10:11:12 UTC", ns("2026-12-06T10:11:12Z")],
    ["RFC1123Z", "Sun, 06 Dec 2026 10:11:12 -0700", ns("2026-12-06T17:11:12Z")],
    ["RFC850", "Sunday, 06-Dec-26 10:11:12 UTC", ns("2026-12-06T10:11:12Z")],
    ["Unix", "1796552000", 1796552000n * 1_000_000_000n],
    ["Unix", "1796552000.5", 1796552000n * 1_000_000_000n + 500_000_000n],
    ["UnixMs", "1796552000123", 1796552000123n * 1_000_000n],
    ["UnixUs", "1796552000123456", 1796552000123456n * 1_000n],
    ["UnixNs", "1796552000123456789", 1796552000123456789n],
    ["2006-01-02 15:04:05.000", "2026-12-06 10:11:12.250", ns("2026-12-06T10:11:12.250Z")],
    ["02/Jan/2006:15:04:05 -0700", "06/Dec/2026:10:11:12 -0500", ns("2026-12-06T15:11:12Z")],
  ];
  for (const [format, value, expected] of cases)
    it(`${format}: ${value}`, () => assert.equal(stamp(format, value), expected));

  it("reads a layout without a zone in `location`", () => {
    assert.equal(
      stamp("2006-01-02 15:04:05", "2026-12-07 06:00:00", { location: "America/New_York" }),
      ns("2026-12-07T11:00:00Z"),
    );
  });
  it("gives a layout without a year the current year (Promtail's syslog-style timestamps)", () => {
    assert.equal(stamp("Jan _2 15:04:05", "Dec  6 10:11:12"), ns("2026-12-06T10:11:12Z"));
  });
  it("tries fallback_formats in order", () => {
    const fallback_formats = ["2006-01-02", "UnixMs"];
    assert.equal(stamp("RFC3339", "2026-12-07", { fallback_formats }), ns("2026-12-07T00:00:00Z"));
    assert.equal(stamp("RFC3339", "1796552000123", { fallback_formats }), 1796552000123n * 1_000_000n);
  });
  it("fudge: an unreadable time becomes the stream's last time plus 1ns; skip keeps the read time", async () => {
    const parse = { regex: { expression: "^(?P<ts>\\S+)" } };
    const fudge = stagePipeline([parse, { timestamp: { source: "ts", format: "RFC3339" } }]);
    const out = fudge.run([{ line: "2026-12-06T10:00:00Z a" }]);
    const again = fudge.run([{ line: "garbage b" }]);
    assert.equal(out[0]?.timeUnixNano, ns("2026-12-06T10:00:00Z"));
    assert.equal(again[0]?.timeUnixNano, ns("2026-12-06T10:00:00Z") + 1n);
    assert.equal((await fudge.counts())["timestamp/failed/unreadable"], 1);
    const skip = stagePipeline([parse, { timestamp: { source: "ts", format: "RFC3339", action_on_failure: "skip" } }]);
    skip.run([{ line: "2026-12-06T10:00:00Z a" }]);
    assert.equal(skip.run([{ line: "garbage b" }])[0]?.timeUnixNano, BigInt(NOW_MS) * 1_000_000n);
  });
  it("does not take a time outside the window, counting it as too_old or in_future", async () => {
    const p = stagePipeline([
      { timestamp: { source: "ts", format: "RFC3339", max_age: "1d", action_on_failure: "skip" } },
    ]);
    const read = BigInt(NOW_MS) * 1_000_000n;
    const out = p.run([
      { line: "old", labels: { job: "a", ts: "2026-12-01T00:00:00Z" } },
      { line: "ahead", labels: { job: "b", ts: "2027-01-01T00:00:00Z" } },
      { line: "fine", labels: { job: "c", ts: "2026-12-07T11:00:00Z" } },
    ]);
    assert.deepEqual(
      out.map((e) => [e.line, e.timeUnixNano]),
      [
        ["old", read],
        ["ahead", read],
        ["fine", ns("2026-12-07T11:00:00Z")],
      ],
    );
    assert.deepEqual(await p.counts(), {
      "timestamp/failed/too_old": 1,
      "timestamp/failed/in_future": 1,
      "timestamp/processed": 1,
    });
  });
  it("refuses an unknown location when the configuration loads", () => {
    assert.throws(
      () => stagePipeline([{ timestamp: { source: "ts", format: "RFC3339", location: "Mars/Base" } }]),
      /IANA time zone/,
    );
  });
});
