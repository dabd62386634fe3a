import { randomBytes } from "node:crypto";
import lz4 from "lz4";
import { decodeBatchMessage, encodeBatchMessage } from "../proto/batch.js";
import { decodeBatch, encodeBatch } from "../proto/codec.js";
import { makeBatch } from "../test/helpers/batches.js";

// npm run bench:codec — encode and decode throughput of the batch wire format (protobuf + LZ4 frame + CRC32C)
// for 10k-entry batches of 200-byte lines, beside raw LZ4 block compress/decompress of the same protobuf bytes,
// which is the ceiling for the compression stage. Prints one JSON line; progress goes to stderr.

const ENTRIES = 10_000;
const LINE_BYTES = 200;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Median seconds per call of `fn`, over ROUNDS rounds of enough calls to last about 100 ms. */
function time(label: string, fn: () => unknown): number {
  const start = performance.now();
  let calls = 0;
  while (performance.now() - start < 100) {
    fn();
    calls++;
  }
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) fn();
    samples.push((performance.now() - t0) / 1000 / calls);
  }
  process.stderr.write(`codec bench: ${label} ${(median(samples) * 1000).toFixed(3)} ms/batch\n`);
  return median(samples);
}

const batches = Array.from({ length: 8 }, (_, i) =>
  makeBatch({
    nodeId: `edge-${i}`,
    sequence: i + 1,
    // As a collector draws it (collector/wal.ts).
    incarnation: randomBytes(8).toString("hex"),
    streams: 10,
    entriesPerStream: ENTRIES / 10,
    lineBytes: LINE_BYTES,
    series: 0,
  }),
);
let next = 0;
const batch = () => batches[next++ % batches.length]!;

const messages = batches.map((b) => encodeBatchMessage(b));
const frames = batches.map((b) => encodeBatch(b));
const messageBytes = messages.reduce((sum, m) => sum + m.length, 0) / messages.length;
const frameBytes = frames.reduce((sum, f) => sum + f.length, 0) / frames.length;
const lineBytes = ENTRIES * LINE_BYTES;

const encode = time("encode (protobuf + LZ4 + CRC)", () => encodeBatch(batch()));
const decode = time("decode (CRC + LZ4 + protobuf)", () => decodeBatch(frames[next++ % frames.length]!));
const protoEncode = time("protobuf encode only", () => encodeBatchMessage(batch()));
const protoDecode = time("protobuf decode only", () => decodeBatchMessage(messages[next++ % messages.length]!));

const blockOut = Buffer.allocUnsafe(lz4.encodeBound(Math.max(...messages.map((m) => m.length))));
const blocks = messages.map((m) => {
  const out = Buffer.allocUnsafe(lz4.encodeBound(m.length));
  return { compressed: out.subarray(0, lz4.encodeBlock(m, out)), size: m.length };
});
const rawCompress = time("raw lz4 block compress", () =>
  lz4.encodeBlock(messages[next++ % messages.length]!, blockOut),
);
const decompressOut = Buffer.allocUnsafe(Math.max(...messages.map((m) => m.length)));
const rawDecompress = time("raw lz4 block decompress", () => {
  const block = blocks[next++ % blocks.length]!;
  return lz4.decodeBlock(block.compressed, decompressOut.subarray(0, block.size));
});

const mbps = (bytes: number, seconds: number) => Number((bytes / seconds / 1e6).toFixed(1));
process.stdout.write(
  JSON.stringify({
    bench: "codec",
    entries_per_batch: ENTRIES,
    line_bytes: LINE_BYTES,
    protobuf_bytes_per_batch: Math.round(messageBytes),
    frame_bytes_per_batch: Math.round(frameBytes),
    lz4_compression_ratio: Number((messageBytes / frameBytes).toFixed(2)),
    encode_mb_per_s: mbps(messageBytes, encode),
    encode_line_mb_per_s: mbps(lineBytes, encode),
    encode_entries_per_s: Math.round(ENTRIES / encode),
    decode_mb_per_s: mbps(messageBytes, decode),
    decode_line_mb_per_s: mbps(lineBytes, decode),
    decode_entries_per_s: Math.round(ENTRIES / decode),
    protobuf_encode_mb_per_s: mbps(messageBytes, protoEncode),
    protobuf_decode_mb_per_s: mbps(messageBytes, protoDecode),
    limit_raw_lz4_compress_mb_per_s: mbps(messageBytes, rawCompress),
    limit_raw_lz4_decompress_mb_per_s: mbps(messageBytes, rawDecompress),
    encode_vs_raw_lz4_compress: Number((rawCompress / encode).toFixed(3)),
    decode_vs_raw_lz4_decompress: Number((rawDecompress / decode).toFixed(3)),
    rounds: ROUNDS,
    node: process.version,
  }) + "\n",
);
