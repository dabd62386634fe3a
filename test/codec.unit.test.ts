import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { crc32c } from "@node-rs/crc32";
import lz4 from "lz4";
import { type Batch, batchId, decodeBatchMessage, encodeBatchMessage, SampleKind } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { CodecError, type CodecErrorKind, decodeBatch, encodeBatch, FRAME_HEADER_BYTES } from "../proto/codec.js";
import { lz4FrameDecode, lz4FrameEncode, Lz4FrameError } from "../proto/lz4frame.js";
import { makeBatch } from "./helpers/batches.js";

function expectCodecError(kind: CodecErrorKind, frame: Uint8Array, limits?: { maxBatchBytes: number }): void {
  assert.throws(
    () => decodeBatch(frame, limits),
    (err: unknown) => err instanceof CodecError && err.kind === kind,
    `expected CodecError ${kind}`,
  );
}

/** Rewrites the header CRC so that a deliberately damaged payload reaches the stage after the CRC check. */
function resealed(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  const payloadLength = out.readUInt32LE(12);
  const crc = crc32c(out.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + payloadLength), crc32c(out.subarray(0, 16)));
  out.writeUInt32LE(crc >>> 0, 16);
  return out;
}

describe("batch codec round trip", () => {
  it("keeps every field of logs and samples, including a series' previous sample", () => {
    const batch = makeBatch({ sequence: 5, streams: 3, entriesPerStream: 50, series: 4, pointsPerSeries: 20 });
    assert.ok(batch.series[0]!.previous && !batch.series[1]!.previous);
    assert.deepEqual(decodeBatch(encodeBatch(batch)), batch);
  });

  it("keeps the incarnation, which tells apart the batch ids of two buffers that count the same sequences", () => {
    const batch = makeBatch({ sequence: 7, incarnation: "9f86d081884c7d65" });
    const decoded = decodeBatch(encodeBatch(batch));
    assert.deepEqual(decoded, batch);
    assert.equal(batchId(decoded), "fleet-a/edge-0001@9f86d081884c7d65:7");
    assert.notEqual(batchId(decoded), batchId({ ...decoded, incarnation: "0b52b3a2c1e0f001" }));
  });

  it("reads a batch of a collector from before incarnations under the id it always had", () => {
    const old = makeBatch({ sequence: 7 });
    const message = encodeBatchMessage(old);
    // The message an older collector wrote has no field 9; a new one differs by just that field.
    const current = encodeBatchMessage({ ...old, incarnation: "9f86d081884c7d65" });
    assert.deepEqual(Buffer.from(current.subarray(0, message.length)), Buffer.from(message));
    assert.deepEqual(
      Buffer.from(current.subarray(message.length)),
      Buffer.concat([Buffer.from([(9 << 3) | 2, 16]), Buffer.from("9f86d081884c7d65")]),
    );
    const decoded = decodeBatchMessage(message);
    assert.equal(decoded.incarnation, "");
    assert.equal(batchId(decoded), "fleet-a/edge-0001:7");
  });

  it("keeps unicode in labels, lines and metadata", () => {
    const batch: Batch = {
      ...makeBatch({ streams: 0, series: 0 }),
      streams: [
        {
          labels: labelsOf([
            ["service", "café-☕"],
            ["region", "東京"],
          ]),
          entries: [
            {
              timeUnixNano: 1n,
              line: "emoji 🧪🚀 and combining e\u0301 and RTL שלום",
              metadata: labelsOf([["trace", "ü"]]),
            },
            { timeUnixNano: 2n, line: "\u0000 nul and \uFFFD replacement", metadata: labelsOf([]) },
          ],
        },
      ],
    };
    assert.deepEqual(decodeBatch(encodeBatch(batch)), batch);
  });

  it("keeps an empty batch", () => {
    const batch = makeBatch({ streams: 0, series: 0 });
    const decoded = decodeBatch(encodeBatch(batch));
    assert.deepEqual(decoded, batch);
    assert.equal(decoded.streams.length, 0);
  });

  it("keeps the full 64-bit range of nanosecond timestamps and sequences", () => {
    const batch = makeBatch({ streams: 1, entriesPerStream: 1, series: 1, pointsPerSeries: 1 });
    batch.createdUnixNano = 2n ** 64n - 1n;
    batch.streams[0]!.entries[0]!.timeUnixNano = 1_764_000_000_123_456_789n;
    batch.sequence = Number.MAX_SAFE_INTEGER;
    batch.series[0]!.points[0] = { timeUnixMs: 1_764_000_000_123, value: -0.5 };
    assert.deepEqual(decodeBatch(encodeBatch(batch)), batch);
  });

  it("keeps special float values and every sample kind", () => {
    const batch = makeBatch({ streams: 0, series: 0 });
    const kinds = [
      SampleKind.Gauge,
      SampleKind.Counter,
      SampleKind.HistogramBucket,
      SampleKind.HistogramSum,
      SampleKind.HistogramCount,
    ];
    batch.series = kinds.map((kind, i) => ({
      name: `m_${i}`,
      labels: labelsOf([["le", "+Inf"]]),
      kind,
      points: [NaN, Infinity, -Infinity, 0, Number.MIN_VALUE].map((value, t) => ({ timeUnixMs: t, value })),
    }));
    const decoded = decodeBatch(encodeBatch(batch));
    assert.deepEqual(decoded, batch);
  });

  it("keeps label names that are special in JavaScript as plain keys", () => {
    const batch = makeBatch({ streams: 0, series: 0 });
    batch.streams = [
      {
        labels: labelsOf([
          ["__proto__", "x"],
          ["constructor", "y"],
        ]),
        entries: [],
      },
    ];
    const decoded = decodeBatch(encodeBatch(batch));
    assert.deepEqual(Object.entries(decoded.streams[0]!.labels), [
      ["__proto__", "x"],
      ["constructor", "y"],
    ]);
    assert.equal(({} as Record<string, unknown>)["x"], undefined);
  });

  it("round-trips 1 MiB lines in a batch exactly at the size limit", () => {
    const line = "x".repeat(1 << 20);
    const batch = makeBatch({ streams: 0, series: 0 });
    batch.streams = [
      {
        labels: labelsOf([["job", "big"]]),
        entries: [0, 1, 2].map((i) => ({ timeUnixNano: BigInt(i), line, metadata: labelsOf([]) })),
      },
    ];
    const frame = encodeBatch(batch);
    const exact = frame.readUInt32LE(8);
    assert.ok(exact > 3 << 20);
    assert.deepEqual(decodeBatch(frame, { maxBatchBytes: exact }), batch);
    expectCodecError("oversized", frame, { maxBatchBytes: exact - 1 });
    assert.throws(
      () => encodeBatch(batch, { maxBatchBytes: exact - 1 }),
      (e: unknown) => e instanceof CodecError && e.kind === "oversized",
    );
  });

  it("round-trips incompressible content that spans several LZ4 blocks", () => {
    const line = randomBytes(6 << 20).toString("base64");
    const batch = makeBatch({ streams: 0, series: 0 });
    batch.streams = [
      { labels: labelsOf([["job", "random"]]), entries: [{ timeUnixNano: 5n, line, metadata: labelsOf([]) }] },
    ];
    assert.deepEqual(decodeBatch(encodeBatch(batch)), batch);
  });

  it("compresses repetitive log lines", () => {
    const batch = makeBatch({ streams: 4, entriesPerStream: 2500, series: 0 });
    const frame = encodeBatch(batch);
    assert.ok(frame.readUInt32LE(8) / frame.length > 3, `ratio ${frame.readUInt32LE(8) / frame.length}`);
  });
});

describe("batch codec rejects bad input with a typed error", () => {
  const frame = encodeBatch(makeBatch({ streams: 2, entriesPerStream: 20, series: 2, pointsPerSeries: 5 }));

  it("truncated at every length", () => {
    for (let length = 0; length < frame.length; length++) {
      expectCodecError("truncated", frame.subarray(0, length));
    }
  });

  it("trailing bytes after the frame", () => {
    expectCodecError("trailing_bytes", Buffer.concat([frame, Buffer.from([0])]));
  });

  it("oversized: declared lengths over the limit, before anything is decompressed", () => {
    expectCodecError("oversized", frame, { maxBatchBytes: frame.readUInt32LE(8) - 1 });
    const huge = Buffer.from(frame);
    huge.writeUInt32LE(0xffffffff, 8);
    expectCodecError("oversized", huge);
    const hugePayload = Buffer.from(frame);
    hugePayload.writeUInt32LE(0xffffffff, 12);
    expectCodecError("oversized", hugePayload);
  });

  it("corrupt CRC: any single flipped bit in the payload or the CRC", () => {
    for (let i = FRAME_HEADER_BYTES; i < frame.length; i++) {
      const bad = Buffer.from(frame);
      bad[i]! ^= 1 << (i % 8);
      expectCodecError("crc_mismatch", bad);
    }
    for (let bit = 0; bit < 32; bit++) {
      const bad = Buffer.from(frame);
      bad[16 + (bit >> 3)]! ^= 1 << (bit & 7);
      expectCodecError("crc_mismatch", bad);
    }
  });

  it("a length field changed consistently with the buffer is still caught by the CRC", () => {
    const bad = Buffer.concat([frame, Buffer.alloc(4)]);
    bad.writeUInt32LE(frame.readUInt32LE(12) + 4, 12);
    expectCodecError("crc_mismatch", bad);
  });

  it("wrong version and unknown flags", () => {
    for (const version of [0, 2, 255]) {
      const bad = Buffer.from(frame);
      bad[4] = version;
      expectCodecError("unsupported_version", bad);
    }
    const flagged = Buffer.from(frame);
    flagged[5] = 1;
    expectCodecError("unsupported_version", flagged);
  });

  it("bad magic", () => {
    const bad = Buffer.from(frame);
    bad.write("JUNK", 0, "latin1");
    expectCodecError("bad_magic", bad);
    expectCodecError("bad_magic", Buffer.from('{"not":"a frame","but":"long enough"}'));
  });

  it("corrupt LZ4 payload behind a valid CRC", () => {
    const bad = Buffer.from(frame);
    for (let i = FRAME_HEADER_BYTES + 19; i < bad.length - 4; i += 7) bad[i] = 0xff;
    expectCodecError("corrupt_payload", resealed(bad));
    const shortDeclared = Buffer.from(frame);
    shortDeclared.writeUInt32LE(shortDeclared.readUInt32LE(8) - 1, 8);
    expectCodecError("corrupt_payload", resealed(shortDeclared));
  });

  it("a valid LZ4 frame of something that is not a batch", () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    const payload = lz4FrameEncode(garbage);
    const bad = Buffer.alloc(FRAME_HEADER_BYTES + payload.length);
    frame.copy(bad, 0, 0, 8);
    bad.writeUInt32LE(garbage.length, 8);
    bad.writeUInt32LE(payload.length, 12);
    payload.copy(bad, FRAME_HEADER_BYTES);
    expectCodecError("invalid_message", resealed(bad));
  });

  it("random bytes and random mutations never escape as anything but CodecError", () => {
    for (let round = 0; round < 2000; round++) {
      const input = round % 2 === 0 ? randomBytes(round % 97) : Buffer.from(frame);
      if (round % 2 === 1) {
        for (let k = 0; k < 1 + (round % 5); k++)
          input[Math.floor(Math.random() * input.length)] = Math.floor(Math.random() * 256);
      }
      try {
        decodeBatch(round % 4 === 1 ? resealed(input) : input);
      } catch (err) {
        assert.ok(err instanceof CodecError, `round ${round}: ${String(err)}`);
      }
    }
  });
});

describe("LZ4 frame", () => {
  it("reads frames written by the lz4 package's encoder, with a content checksum and small blocks", () => {
    const data = Buffer.from("bifrost ".repeat(100_000));
    for (const options of [
      { blockMaxSize: 64 << 10, streamChecksum: true },
      { blockMaxSize: 4 << 20, streamChecksum: false },
    ]) {
      const encoded = (lz4 as unknown as { encode(b: Buffer, o: object): Buffer }).encode(data, options);
      assert.ok(lz4FrameDecode(encoded, data.length).equals(data));
    }
  });

  it("verifies block checksums when the frame has them", () => {
    // The package's encoder cannot write block checksums (it overflows writeInt32LE), so add them by hand:
    // set the FLG bit, reseal the descriptor checksum, and follow each block with its xxHash32.
    const data = Buffer.from("checksummed ".repeat(50_000));
    const plain = lz4FrameEncode(data);
    const descriptor = Buffer.from(plain.subarray(4, 14));
    descriptor[0]! |= 0x10;
    const parts = [plain.subarray(0, 4), descriptor, Buffer.from([lz4.utils.descriptorChecksum(descriptor)])];
    for (let pos = 15; ;) {
      const word = plain.readUInt32LE(pos);
      if (word === 0) break;
      const block = plain.subarray(pos + 4, pos + 4 + (word & 0x7fffffff));
      const sum = Buffer.alloc(4);
      sum.writeUInt32LE(lz4.utils.blockChecksum(block) >>> 0);
      parts.push(plain.subarray(pos, pos + 4), block, sum);
      pos += 4 + block.length;
    }
    parts.push(Buffer.alloc(4));
    const checked = Buffer.concat(parts);
    assert.ok(lz4FrameDecode(checked, data.length).equals(data));
    const damaged = Buffer.from(checked);
    damaged[damaged.length - 6]! ^= 0xff;
    assert.throws(() => lz4FrameDecode(damaged, data.length), /block checksum mismatch/);
  });

  it("writes frames that the lz4 package's decoder reads", () => {
    const data = Buffer.from("edge ".repeat(300_000));
    const decoded = (lz4 as unknown as { decode(b: Buffer): Buffer }).decode(lz4FrameEncode(data));
    assert.ok(decoded.equals(data));
  });

  it("refuses to produce more than the expected size", () => {
    const data = Buffer.alloc(1 << 20, 1);
    const frame = lz4FrameEncode(data);
    assert.throws(() => lz4FrameDecode(frame, data.length - 1), Lz4FrameError);
    assert.throws(() => lz4FrameDecode(frame, data.length + 1), Lz4FrameError);
  });
});
