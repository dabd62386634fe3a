import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { labelsOf, NO_LABELS } from "../proto/labels.js";
import { keptRows } from "../storage/log-dedup.js";
import {
  logColumns,
  streamsOfColumns,
  rawLogRows,
  readWithoutRepeats,
  type RawLogRows,
} from "../storage/log-columns.js";
import { RowBinaryWriter, decodeLogRows } from "../storage/log-rowbinary.js";
import type { IndexedStream } from "../storage/streams-index.js";

// Log reads column-wise (storage/log-columns.ts): the order, repeats and limits every store's selectLogs and
// selectLogColumns share, and the RowBinary decoding of ClickHouse's answer.

const streamA: IndexedStream = { fingerprint: "30", labels: labelsOf([["app", "a"]]), kind: 0 };
const streamB: IndexedStream = { fingerprint: "20", labels: labelsOf([["app", "b"]]), kind: 0 };
const streamC: IndexedStream = { fingerprint: "10", labels: labelsOf([["app", "c"]]), kind: 0 };

/** Rows in SQL order (timestamp, fingerprint): [fingerprint, ts, line]. */
function rows(...entries: [number, number, string][]): RawLogRows {
  const out = rawLogRows();
  for (const [fp, ts, line] of entries) {
    out.fingerprints.push(BigInt(fp));
    out.ts.push(BigInt(ts));
    out.lines.push(line);
    out.metadata.push(NO_LABELS);
  }
  return out;
}

describe("log columns", () => {
  it("order entries sharing a timestamp by their streams' label text, a stream's own in read order", () => {
    // Fingerprint order is c, b, a; label order a, b, c.
    const columns = logColumns(
      [streamC, streamA, streamB],
      rows([10, 1, "c1"], [20, 1, "b1"], [20, 1, "b2"], [30, 1, "a1"], [10, 2, "c2"], [20, 3, "b3"], [30, 3, "a3"]),
    );
    assert.deepEqual(
      columns.streams.map((labels) => labels["app"]),
      ["a", "b", "c"],
    );
    assert.deepEqual(columns.lines, ["a1", "b1", "b2", "c1", "c2", "a3", "b3"]);
    assert.deepEqual(columns.stream, [0, 1, 1, 2, 2, 0, 1]);
    assert.deepEqual(columns.ts, [1n, 1n, 1n, 1n, 2n, 3n, 3n]);
  });

  it("become selectLogs' streams, sorted by label text with their entries in order", () => {
    const streams = streamsOfColumns(logColumns([streamB, streamA], rows([20, 1, "b1"], [30, 2, "a2"], [20, 3, "b3"])));
    assert.deepEqual(
      streams.map((s) => [s.labels["app"], s.entries.map((e) => e.line)]),
      [
        ["a", ["a2"]],
        ["b", ["b1", "b3"]],
      ],
    );
    const metadata = streams[0]!.entries[0]!.metadata;
    assert.notEqual(metadata, NO_LABELS, "each entry gets a record of its own");
    assert.deepEqual(Object.keys(metadata), []);
  });

  it("leave out rows of a stream the index lookup did not return (indexed after it)", () => {
    const columns = logColumns([streamA], rows([99, 1, "x"], [30, 2, "a2"]));
    assert.deepEqual(columns.lines, ["a2"]);
    assert.deepEqual(columns.stream, [0]);
  });
});

describe("repeated entries", () => {
  it("are the rows whose stream, timestamp and line an earlier row of the group has", () => {
    const read = rows([10, 1, "x"], [10, 1, "y"], [10, 1, "x"], [20, 1, "x"], [10, 2, "x"], [10, 2, "x"]);
    assert.deepEqual(keptRows(read.ts.length, read.fingerprints, read.ts, read.lines), [0, 1, 3, 4]);
    const clean = rows([10, 1, "x"], [10, 1, "y"], [20, 1, "x"]);
    assert.equal(keptRows(clean.ts.length, clean.fingerprints, clean.ts, clean.lines), undefined);
  });

  it("are read past: the limit counts entries without repeats, reading more while the store has more", async () => {
    const all = rows([10, 1, "x"], [10, 1, "x"], [10, 1, "x"], [10, 2, "y"], [10, 3, "z"]);
    const reads: number[] = [];
    const read = async (n: number) => {
      reads.push(n);
      const out = rawLogRows();
      for (let i = 0; i < Math.min(n, all.ts.length); i++) {
        out.fingerprints.push(all.fingerprints[i]!);
        out.ts.push(all.ts[i]!);
        out.lines.push(all.lines[i]!);
        out.metadata.push(all.metadata[i]!);
      }
      return out;
    };
    assert.deepEqual((await readWithoutRepeats(2, read)).lines, ["x", "y"]);
    assert.deepEqual(reads, [2, 4]);
    assert.deepEqual((await readWithoutRepeats(10, read)).lines, ["x", "y", "z"]);
  });
});

describe("log rows in RowBinary", () => {
  it("decode fingerprint, timestamp, line and metadata", () => {
    const writer = new RowBinaryWriter(64);
    writer.uint64(18_446_744_073_709_551_615n);
    writer.int64(-5n);
    writer.string("héllo wörld, a line longer than forty-two UTF-16 units of text");
    writer.map(labelsOf([["trace_id", "abc"]]));
    writer.uint64(7n);
    writer.int64(1_765_000_000_123_456_789n);
    writer.string("");
    writer.map(labelsOf([]));
    const decoded = decodeLogRows(Buffer.from(writer.buffer()));
    assert.deepEqual(decoded.fingerprints, [18_446_744_073_709_551_615n, 7n]);
    assert.deepEqual(decoded.ts, [-5n, 1_765_000_000_123_456_789n]);
    assert.deepEqual(decoded.lines, ["héllo wörld, a line longer than forty-two UTF-16 units of text", ""]);
    assert.deepEqual({ ...decoded.metadata[0] }, { trace_id: "abc" });
    assert.equal(decoded.metadata[1], NO_LABELS);
  });

  it("refuse a body cut short", () => {
    const writer = new RowBinaryWriter(64);
    writer.uint64(1n);
    writer.int64(2n);
    writer.string("a line");
    const body = Buffer.from(writer.buffer());
    assert.throws(() => decodeLogRows(body), /cut short/);
    assert.throws(() => decodeLogRows(body.subarray(0, 10)), /cut short/);
  });
});
