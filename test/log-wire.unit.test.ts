import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { valueSymbol } from "piscina";
import protobuf from "protobufjs";
import { encodeLogsFromWire } from "../aggregator/log-wire.js";
import decode, { type DecodeResult } from "../aggregator/worker.js";
import { type Batch, encodeBatchMessage, type LogStream } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { decodeFrame, frameMessage } from "../proto/codec.js";
import { type BatchLimits, STORABLE_NS } from "../proto/validate.js";
import { encodeLogBatch } from "../storage/log-rowbinary.js";
import { makeBatch, prng } from "./helpers/batches.js";

// The worker's direct path (protobuf wire format -> RowBinary) against the reference path (protobufjs ->
// validateBatch -> encodeLogBatch): the same rows byte for byte, the same parts and spans, the same errors.

const LIMITS: BatchLimits = {
  max_labels: 5,
  max_label_name_bytes: 16,
  max_label_value_bytes: 64,
  max_line_bytes: 40_000,
};
const MAX_BATCH_BYTES = 16 << 20;
const DAY_NS = 86_400_000_000_000n;
const MIDNIGHT = 20_000n * DAY_NS;
/** The last storable nanosecond (STORABLE_NS): later times are refused, so the direct path leaves them alone. */
const LAST_NS = STORABLE_NS.max - 1n;

function unwrap(result: DecodeResult): DecodeResult {
  const moved = (result as unknown as Record<symbol, DecodeResult>)[valueSymbol];
  return moved ?? result;
}

/** A decode result with its timing dropped and its row bytes in hex, for deepEqual. */
function comparable(result: DecodeResult): unknown {
  if (!result.ok) return result;
  const { decodeMs: _, logs, ...rest } = result;
  if (logs === undefined || !("encoded" in logs)) return { ...rest, logs };
  return { ...rest, logs: { ...logs.encoded, buffer: Buffer.from(logs.encoded.buffer).toString("hex") } };
}

/** What the reference path makes of a frame: protobufjs decoding, validateBatch, encodeLogBatch. */
function reference(frame: Uint8Array, limits: BatchLimits): DecodeResult {
  const decoded = unwrap(decode({ value: frame, maxBatchBytes: MAX_BATCH_BYTES, limits, encodeLogs: false }));
  if (!decoded.ok || decoded.logs === undefined || !("decoded" in decoded.logs)) return decoded;
  try {
    return { ...decoded, logs: { encoded: encodeLogBatch(decoded.logs.decoded) } };
  } catch (err) {
    return { ok: false, reason: "internal", message: (err as Error).message };
  }
}

/** Asserts that the worker gives what the reference path gives; returns whether the direct path handled it. */
function expectSame(frame: Uint8Array, limits = LIMITS): boolean {
  const got = unwrap(
    decode({ value: new Uint8Array(frame), maxBatchBytes: MAX_BATCH_BYTES, limits, encodeLogs: true }),
  );
  const want = reference(new Uint8Array(frame), limits);
  assert.deepEqual(comparable(got), comparable(want));
  return encodeLogsFromWire(decodeFrame(frame, { maxBatchBytes: MAX_BATCH_BYTES }), limits) !== undefined;
}

const frameOf = (batch: Batch) => frameMessage(encodeBatchMessage(batch));

function batchWith(streams: LogStream[], overrides: Partial<Batch> = {}): Batch {
  return { ...makeBatch({ streams: 0, series: 1, pointsPerSeries: 3 }), streams, ...overrides };
}

const entry = (timeUnixNano: bigint, line: string, metadata: [string, string][] = []) => ({
  timeUnixNano,
  line,
  metadata: labelsOf(metadata),
});

describe("direct log encoding from the wire format", () => {
  it("matches the reference path on generated batches of every shape, and handles them itself", () => {
    const random = prng(42);
    const texts = [
      "",
      "a",
      "é",
      "🙂 emoji",
      "日本語のログ行",
      "x".repeat(127),
      "y".repeat(128),
      "z".repeat(16_384),
      "tab\there\nnewline",
      "\u0000nul",
    ];
    for (let round = 0; round < 150; round++) {
      const batch = makeBatch({
        nodeId: `edge-${round % 7}`,
        sequence: round + 1,
        streams: round % 11 === 0 ? 0 : 1 + Math.floor(random() * 6),
        entriesPerStream: round % 13 === 0 ? 0 : 1 + Math.floor(random() * 120),
        lineBytes: 1 + Math.floor(random() * 400),
        series: Math.floor(random() * 3),
        pointsPerSeries: 1 + Math.floor(random() * 5),
        startNs: round % 5 === 0 ? MIDNIGHT - 1000n : 1_764_000_000_000_000_000n,
      });
      for (const stream of batch.streams) {
        for (const [i, e] of stream.entries.entries()) {
          // Across days, out of order, on the ms and day edges, at both ends of the storable range.
          const pick = random();
          if (pick < 0.1)
            e.timeUnixNano =
              MIDNIGHT + BigInt(Math.floor((random() - 0.5) * 4)) * DAY_NS + BigInt(Math.floor(random() * 3)) - 1n;
          else if (pick < 0.12) e.timeUnixNano = [0n, 1n, 999_999n, 1_000_000n, LAST_NS, LAST_NS - 999_999n][i % 6]!;
          else if (pick < 0.2)
            e.timeUnixNano = (BigInt(Math.floor(random() * 2 ** 62)) * 2n + BigInt(i % 2)) % STORABLE_NS.max;
          if (random() < 0.1) e.line = texts[Math.floor(random() * texts.length)]!;
          if (random() < 0.05)
            e.metadata = labelsOf([
              ["user", "ü".repeat(i % 32)],
              ["__proto__", ""],
              ["span_9", "s"],
            ]);
        }
      }
      if (round % 17 === 0) batch.streams[0]?.entries.splice(0);
      assert.ok(expectSame(frameOf(batch)), `round ${round} went the reference way`);
    }
  });

  it("handles odd but valid label sets and limits at their edge", () => {
    const limitsEdge = { ...LIMITS, max_line_bytes: 10 };
    const cases: Batch[] = [
      batchWith([{ labels: labelsOf([]), entries: [entry(MIDNIGHT, "no labels")] }]),
      batchWith([
        {
          labels: labelsOf([
            ["__proto__", "x"],
            ["constructor", "é"],
          ]),
          entries: [entry(MIDNIGHT, "odd names")],
        },
      ]),
      batchWith([
        {
          labels: labelsOf([["job", "a"]]),
          entries: [
            entry(MIDNIGHT, "0123456789", [
              ["a", "b"],
              ["c", "d"],
              ["e", "f"],
              ["g", "h"],
              ["i", "j".repeat(64)],
            ]),
          ],
        },
      ]),
      batchWith([{ labels: labelsOf([["job", "a"]]), entries: [entry(MIDNIGHT, "x", [["n".repeat(16), ""]])] }]),
      batchWith([
        { labels: labelsOf([["job", "a"]]), entries: [] },
        { labels: labelsOf([["job", "a"]]), entries: [entry(MIDNIGHT, "twice")] },
      ]),
    ];
    for (const batch of cases) assert.ok(expectSame(frameOf(batch), limitsEdge));
  });

  it("leaves to the reference path what breaks a rule or would not come out the same, with the same result", () => {
    const ok = { labels: labelsOf([["job", "a"]]), entries: [entry(MIDNIGHT, "fine")] };
    const cases: [string, Batch][] = [
      [
        "line too long",
        batchWith([ok, { labels: labelsOf([["job", "b"]]), entries: [entry(MIDNIGHT, "é".repeat(20_001))] }]),
      ],
      ["metadata name invalid", batchWith([{ ...ok, entries: [entry(MIDNIGHT, "x", [["1a", "v"]])] }])],
      ["metadata name empty", batchWith([{ ...ok, entries: [entry(MIDNIGHT, "x", [["", "v"]])] }])],
      ["metadata name with a dash", batchWith([{ ...ok, entries: [entry(MIDNIGHT, "x", [["a-b", "v"]])] }])],
      ["metadata name too long", batchWith([{ ...ok, entries: [entry(MIDNIGHT, "x", [["n".repeat(17), "v"]])] }])],
      ["metadata value too long", batchWith([{ ...ok, entries: [entry(MIDNIGHT, "x", [["a", "ü".repeat(33)]])] }])],
      [
        "too much metadata",
        batchWith([
          {
            ...ok,
            entries: [
              entry(MIDNIGHT, "x", [
                ["a", "1"],
                ["b", "2"],
                ["c", "3"],
                ["d", "4"],
                ["e", "5"],
                ["f", "6"],
              ]),
            ],
          },
        ]),
      ],
      ["stream label invalid", batchWith([{ ...ok, labels: labelsOf([["bad name", "x"]]) }])],
      [
        "too many stream labels",
        batchWith([{ ...ok, labels: labelsOf(["a", "b", "c", "d", "e", "f"].map((n) => [n, n])) }]),
      ],
      ["time past Int64", batchWith([{ ...ok, entries: [entry(1n << 63n, "x")] }])],
      ["time past the storable range", batchWith([{ ...ok, entries: [entry(STORABLE_NS.max, "x")] }])],
    ];
    for (const [name, batch] of cases) {
      assert.equal(expectSame(frameOf(batch)), false, name);
      // The bad rows are taken out for the dead letters; the batch's other rows are written.
      const result = unwrap(
        decode({ value: frameOf(batch), maxBatchBytes: MAX_BATCH_BYTES, limits: LIMITS, encodeLogs: true }),
      );
      assert.ok(result.ok, name);
      const refusedRows = result.refused.reduce((n, r) => n + r.rows, 0);
      assert.ok(refusedRows >= 1, name);
      const rows =
        batch.streams.reduce((n, st) => n + st.entries.length, 0) +
        batch.series.reduce((n, se) => n + se.points.length, 0);
      assert.equal(result.rows + refusedRows, rows, name);
    }
  });

  it("rejects a batch without identity, and takes a bad series out of a batch with valid streams, as the reference path does", () => {
    const ok = { labels: labelsOf([["job", "a"]]), entries: [entry(MIDNIGHT, "fine")] };
    const decoded = (batch: Batch) => {
      expectSame(frameOf(batch));
      return unwrap(
        decode({ value: frameOf(batch), maxBatchBytes: MAX_BATCH_BYTES, limits: LIMITS, encodeLogs: true }),
      );
    };
    assert.equal(decoded(batchWith([ok], { tenant: "" })).ok, false);
    const result = decoded(batchWith([ok], { series: [{ ...makeBatch({ series: 1 }).series[0]!, name: "1bad" }] }));
    assert.ok(result.ok && result.logs && "encoded" in result.logs);
    assert.equal(result.logs.encoded.rows, 1);
    assert.deepEqual(
      result.refused.map((r) => [r.reason, r.rows]),
      [["invalid_metric_name", 10]],
    );
  });

  it("leaves repeated metadata names to the reference path, which keeps one of each", () => {
    const batch = batchWith([{ labels: labelsOf([["job", "a"]]), entries: [entry(MIDNIGHT, "x")] }]);
    const message = wire((w) => {
      str(w, 1, batch.tenant);
      str(w, 2, batch.nodeId);
      field(w, 7, (s) =>
        field(s, 2, (e) =>
          [
            ["a", "1"],
            ["b", "2"],
            ["a", "3"],
          ].forEach(([n, v]) => field(e, 3, (l) => label(l, n!, v!))),
        ),
      );
    });
    assert.equal(expectSame(frameMessage(message)), false);
    const result = unwrap(
      decode({ value: frameMessage(message), maxBatchBytes: MAX_BATCH_BYTES, limits: LIMITS, encodeLogs: true }),
    );
    assert.ok(result.ok && result.logs && "encoded" in result.logs && result.logs.encoded.rows === 1);
  });

  it("reads valid encodings other than protobufjs's own: unknown fields, any field order, repeated scalars", () => {
    const message = wire((w) => {
      str(w, 99, "unknown, skipped");
      w.uint32((98 << 3) | 0).uint64(12345);
      w.uint32((97 << 3) | 5).fixed32(7);
      w.uint32((96 << 3) | 1).fixed64(8);
      str(w, 1, "first tenant");
      field(w, 7, (s) => {
        field(s, 2, (e) => {
          str(e, 2, "a line replaced by the next");
          e.uint32((15 << 3) | 0).uint32(3);
          field(e, 3, (l) => {
            l.uint32((9 << 3) | 0).uint32(1);
            str(l, 2, "value before name");
            str(l, 1, "trace_id");
          });
          time(e, MIDNIGHT);
          str(e, 2, "line after time");
          time(e, MIDNIGHT + 7n);
        });
        field(s, 1, (l) => label(l, "job", "labels after entries"));
        str(s, 3, "unknown in stream");
        field(s, 2, (e) => time(e, MIDNIGHT - 1n));
      });
      field(w, 8, (m) => str(m, 1, "up"));
      str(w, 1, "tenant");
      str(w, 2, "edge-7");
      field(w, 7, (s) => field(s, 1, (l) => label(l, "job", "second")));
      w.uint32((5 << 3) | 0).uint64(9);
    });
    assert.ok(expectSame(frameMessage(message)));
  });

  it("leaves invalid UTF-8 and malformed messages to the reference path, with the same result", () => {
    const invalid = Buffer.from([0x61, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xff]);
    const base = (streams: (s: protobuf.Writer) => void) =>
      wire((w) => {
        str(w, 1, "tenant");
        str(w, 2, "edge-1");
        field(w, 7, streams);
      });
    const cases: [string, Uint8Array][] = [
      ["invalid UTF-8 line", base((s) => field(s, 2, (e) => e.uint32(0x12).bytes(invalid)))],
      [
        "invalid UTF-8 metadata value",
        base((s) => field(s, 2, (e) => field(e, 3, (l) => l.uint32(0x0a).string("a").uint32(0x12).bytes(invalid)))),
      ],
      [
        "invalid UTF-8 stream label",
        base((s) => field(s, 1, (l) => l.uint32(0x0a).string("job").uint32(0x12).bytes(invalid))),
      ],
      ["line with a wrong wire type", base((s) => field(s, 2, (e) => e.uint32(0x10).uint32(5)))],
      ["time with a wrong wire type", base((s) => field(s, 2, (e) => e.uint32(0x0d).fixed32(5)))],
      ["truncated message", base((s) => field(s, 2, (e) => e.uint32(0x12).string("x"))).subarray(0, -1)],
      ["group wire type", base((s) => s.uint32((4 << 3) | 3).uint32((4 << 3) | 4))],
      ["field number 0", base((s) => field(s, 2, (e) => e.uint32(0).uint32(1)))],
    ];
    for (const [name, message] of cases) assert.equal(expectSame(frameMessage(message)), false, name);
  });
});

function wire(build: (w: protobuf.Writer) => void): Uint8Array {
  const w = protobuf.Writer.create();
  build(w);
  return w.finish();
}

function field(w: protobuf.Writer, number: number, build: (w: protobuf.Writer) => void): void {
  w.uint32((number << 3) | 2).fork();
  build(w);
  w.ldelim();
}

function label(w: protobuf.Writer, name: string, value: string): void {
  w.uint32(0x0a).string(name).uint32(0x12).string(value);
}

function str(w: protobuf.Writer, number: number, text: string): void {
  w.uint32((number << 3) | 2).string(text);
}

function time(w: protobuf.Writer, ns: bigint): void {
  w.uint32(0x09)
    .fixed32(Number(ns & 0xffffffffn))
    .fixed32(Number(ns >> 32n));
}
