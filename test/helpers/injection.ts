import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { LineFilter, Store } from "../../storage/store.js";
import { prng } from "./batches.js";
import { logBatch, T0_NS } from "./store-contract.js";

// Hostile label values, label names and line filters through a real store: they match exactly what they
// should and nothing else, and nothing they spell out is executed.

const FRAGMENTS = [
  "'",
  '"',
  "\\",
  "`",
  ";",
  "--",
  "/*",
  "*/",
  "{",
  "}",
  ":",
  "$1",
  "?",
  "%",
  "_",
  "\n",
  "\t",
  "\r",
  "' OR '1'='1",
  "'); DROP TABLE logs; --",
  "{p0:String}",
  "{x:Array(String)}",
  "\\'",
  "\\\\'",
  "é",
  "🧪",
  "\u2028",
  "NULL",
  "0x41",
];

export function hostile(random: () => number): string {
  let out = "";
  const parts = 1 + Math.floor(random() * 5);
  for (let i = 0; i < parts; i++)
    out += FRAGMENTS[Math.floor(random() * FRAGMENTS.length)]! + (random() < 0.5 ? "x" : "");
  return out;
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

export function injectionSuite(name: string, open: () => Promise<Store>): void {
  describe(`${name}: hostile values through the store`, () => {
    let store: Store;
    const random = prng(99);
    const values = Array.from({ length: 40 }, () => hostile(random));
    const range = { startNs: T0_NS - 1_000_000_000n, endNs: T0_NS + 1_000_000_000_000n };
    before(async () => {
      store = await open();
      await store.appendLogs([
        logBatch(
          "fuzz:1",
          values.map((value, i) => ({
            labels: [
              ["service", "fuzz"],
              ["v", value],
              ["i", String(i)],
            ] as [string, string][],
            entries: [[T0_NS + BigInt(i), `line ${i} ${value}`, [["m", value]]]] as [
              bigint,
              string,
              [string, string][],
            ][],
          })),
        ),
      ]);
    });
    after(async () => store.close());

    it("matches each hostile label value exactly, by equality and by escaped regex", async () => {
      for (const [i, value] of values.entries()) {
        const expected = values
          .map((v, j) => [v, j] as const)
          .filter(([v]) => v === value)
          .map(([, j]) => String(j))
          .sort();
        for (const op of ["=", "=~"] as const) {
          const streams = await store.selectLogs({
            tenant: "acme",
            matchers: [
              { name: "service", op: "=", value: "fuzz" },
              { name: "v", op, value: op === "=" ? value : escapeRegex(value) },
            ],
            ...range,
            limit: 1000,
            direction: "forward",
          });
          assert.deepEqual(
            streams.map((s) => s.labels["i"]).sort(),
            expected,
            `value #${i} ${JSON.stringify(value)} with ${op}`,
          );
          assert.ok(streams.every((s) => s.entries[0]!.metadata["m"] === value));
        }
      }
    });

    it("filters lines by hostile substrings and escaped regexes exactly as JavaScript does", async () => {
      // Needles are prefixes by code point: a cut through a surrogate pair would not be text at all.
      for (const needle of values
        .slice(0, 15)
        .map((v) => [...v].slice(0, 1 + Math.floor(random() * [...v].length)).join(""))) {
        for (const filter of [
          { op: "|=", values: [needle] },
          { op: "!=", values: [needle] },
          { op: "|~", values: [escapeRegex(needle)] },
        ] as LineFilter[]) {
          const got = await store.selectLogs({
            tenant: "acme",
            matchers: [{ name: "service", op: "=", value: "fuzz" }],
            lineFilters: [filter],
            ...range,
            limit: 1000,
            direction: "forward",
          });
          const lines = got.flatMap((s) => s.entries.map((e) => e.line)).sort();
          const keep = filter.op !== "!=";
          const expected = values
            .map((v, i) => `line ${i} ${v}`)
            .filter((line) => line.includes(needle) === keep)
            .sort();
          assert.deepEqual(lines, expected, `${filter.op} ${JSON.stringify(needle)}`);
        }
      }
    });

    it("answers label lookups with hostile names and values, and nothing was dropped", async () => {
      const window = { startMs: Number(T0_NS / 1_000_000n) - 1000, endMs: Number(T0_NS / 1_000_000n) + 1_000_000 };
      for (const value of values.slice(0, 10)) {
        assert.deepEqual(
          await store.labelValues(
            { tenant: "acme", signal: "logs", selectors: [[{ name: value, op: "=", value }]], ...window },
            value,
          ),
          [],
        );
      }
      const all = await store.labelValues(
        { tenant: "acme", signal: "logs", selectors: [[{ name: "service", op: "=", value: "fuzz" }]], ...window },
        "v",
      );
      assert.deepEqual(
        all,
        [...new Set(values)].filter((v) => v !== "").sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
      );
      const count = await store.countLogs({
        tenant: "acme",
        matchers: [{ name: "service", op: "=", value: "fuzz" }],
        ...range,
        stepNs: range.endNs - range.startNs,
      });
      assert.equal(
        count.reduce((n, s) => n + s.points[0]!.count, 0),
        values.length,
      );
      // The per-minute log volume rollup holds the same entries; hostile tenant names read nothing.
      const minuteMs = Math.floor(Number(T0_NS / 1_000_000n) / 60_000) * 60_000;
      const volume = {
        matchers: [{ name: "service", op: "=" as const, value: "fuzz" }],
        startMs: minuteMs,
        endMs: minuteMs + 120_000,
        stepMs: 120_000,
      };
      const rolled = await store.logVolume({ tenant: "acme", ...volume });
      assert.equal(
        rolled.reduce((n, s) => n + s.points[0]!.count, 0),
        values.length,
      );
      for (const tenant of values.slice(0, 10)) assert.deepEqual(await store.logVolume({ tenant, ...volume }), []);
    });
  });
}
