import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RecentEntries } from "../common/log-dedup.js";
import { labelsOf } from "../proto/labels.js";

const entry = (ns: number, line = "x") => ({ timeUnixNano: BigInt(ns), line, metadata: labelsOf([]) });

describe("recent entries (the collector's and the central push's memory of what was written)", () => {
  it("knows an entry by stream, timestamp and line", () => {
    const recent = new RecentEntries(100);
    recent.remember("a", [entry(1, "one"), entry(1, "two")]);
    assert.ok(recent.has("a", entry(1, "one")) && recent.has("a", entry(1, "two")));
    assert.ok(!recent.has("a", entry(1, "three")), "another line at that time");
    assert.ok(!recent.has("a", entry(2, "one")), "that line at another time");
    assert.ok(!recent.has("b", entry(1, "one")), "another stream");
  });

  it("tells lines apart by every character, not only ASCII ones (it keeps digests of lines, not lines)", () => {
    const recent = new RecentEntries(100);
    recent.remember("a", [entry(1, "caf\u00e9 \u{1F600}")]);
    assert.ok(recent.has("a", entry(1, "caf\u00e9 \u{1F600}")));
    assert.ok(!recent.has("a", entry(1, "cafe \u{1F600}")));
    assert.ok(!recent.has("a", entry(1, "caf\u00e9 \u{1F601}")));
    assert.ok(!recent.has("a", entry(1, "caf\u00e9 \u{1F600} ")));
  });

  it("remembers at least the newest maxTimestamps timestamps and forgets the older a generation at a time", () => {
    const recent = new RecentEntries(1000);
    for (let ns = 0; ns < 5000; ns += 100)
      recent.remember(
        "s",
        Array.from({ length: 100 }, (_, i) => entry(ns + i)),
      );
    for (let ns = 4000; ns < 5000; ns++) assert.ok(recent.has("s", entry(ns)), `${ns} is among the newest 1000`);
    for (let ns = 0; ns < 3000; ns++) assert.ok(!recent.has("s", entry(ns)), `${ns} is forgotten`);
  });
});
