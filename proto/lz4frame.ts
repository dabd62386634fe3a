import lz4 from "lz4";
import type { Scratch } from "./scratch.js";

// The LZ4 frame format (lz4_Frame_format.md), so that a payload can be inspected with the `lz4` CLI.
// The package's own frame decoder is a stream that, on truncated input, throws from an asynchronous
// 'error' event and so would crash the process on one bad message, and it allocates each block anew;
// this decoder uses the package's native block codec, writes into one buffer of the size the caller
// expects, and reports every defect synchronously.

const MAGIC = 0x184d2204;
const FLG_VERSION = 0x40;
const FLG_BLOCK_INDEPENDENCE = 0x20;
const FLG_BLOCK_CHECKSUM = 0x10;
const FLG_CONTENT_SIZE = 0x08;
const FLG_CONTENT_CHECKSUM = 0x04;
const FLG_RESERVED = 0x02;
const FLG_DICT_ID = 0x01;
const BLOCK_UNCOMPRESSED = 0x80000000;
const BLOCK_MAX_SIZES: Record<number, number> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };
const ENCODE_BLOCK_ID = 7;
const ENCODE_BLOCK_SIZE = 4 << 20;

export class Lz4FrameError extends Error {
  override readonly name = "Lz4FrameError";
}

/**
 * Compresses `input` as one LZ4 frame with independent 4 MiB blocks and the content size in the header; into
 * `into`'s buffer if given (the frame is then valid until its next use).
 */
export function lz4FrameEncode(input: Uint8Array, into?: Scratch): Buffer {
  const blocks = Math.max(1, Math.ceil(input.length / ENCODE_BLOCK_SIZE));
  const bound = 15 + blocks * (4 + lz4.encodeBound(Math.min(input.length, ENCODE_BLOCK_SIZE))) + 4;
  const out = into ? into.take(bound) : Buffer.allocUnsafe(bound);
  out.writeUInt32LE(MAGIC, 0);
  out[4] = FLG_VERSION | FLG_BLOCK_INDEPENDENCE | FLG_CONTENT_SIZE;
  out[5] = ENCODE_BLOCK_ID << 4;
  out.writeBigUInt64LE(BigInt(input.length), 6);
  out[14] = lz4.utils.descriptorChecksum(out.subarray(4, 14));
  let pos = 15;
  for (let start = 0; start < input.length; start += ENCODE_BLOCK_SIZE) {
    const block = input.subarray(start, start + ENCODE_BLOCK_SIZE);
    const size = lz4.encodeBlock(block, out.subarray(pos + 4));
    if (size > 0 && size < block.length) {
      out.writeUInt32LE(size, pos);
      pos += 4 + size;
    } else {
      out.writeUInt32LE((block.length | BLOCK_UNCOMPRESSED) >>> 0, pos);
      out.set(block, pos + 4);
      pos += 4 + block.length;
    }
  }
  out.writeUInt32LE(0, pos);
  return out.subarray(0, pos + 4);
}

/**
 * Decompresses one LZ4 frame that must hold exactly `expectedSize` bytes. Never allocates more than that;
 * any defect (truncation, bad checksums, corrupt blocks, a size other than expected, trailing bytes) throws
 * Lz4FrameError.
 */
export function lz4FrameDecode(input: Uint8Array, expectedSize: number): Buffer {
  const view = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const need = (pos: number, n: number, what: string): void => {
    if (pos + n > view.length) throw new Lz4FrameError(`truncated LZ4 frame: ${what} at byte ${pos}`);
  };
  need(0, 7, "header");
  if (view.readUInt32LE(0) !== MAGIC) throw new Lz4FrameError("not an LZ4 frame (bad magic number)");
  const flg = view[4]!;
  const bd = view[5]!;
  if ((flg & 0xc0) !== FLG_VERSION) throw new Lz4FrameError(`unsupported LZ4 frame version ${flg >> 6}`);
  if (flg & FLG_RESERVED || bd & 0x8f) throw new Lz4FrameError("reserved LZ4 frame descriptor bits are set");
  if (flg & FLG_DICT_ID) throw new Lz4FrameError("LZ4 frames with a dictionary are not supported");
  const blockMax = BLOCK_MAX_SIZES[(bd >> 4) & 0x7];
  if (blockMax === undefined) throw new Lz4FrameError(`invalid LZ4 block maximum size id ${(bd >> 4) & 0x7}`);
  let pos = 6;
  if (flg & FLG_CONTENT_SIZE) {
    need(pos, 9, "content size");
    const contentSize = view.readBigUInt64LE(pos);
    if (contentSize !== BigInt(expectedSize)) {
      throw new Lz4FrameError(`LZ4 frame holds ${contentSize} bytes, expected ${expectedSize}`);
    }
    pos += 8;
  }
  need(pos, 1, "header checksum");
  if (lz4.utils.descriptorChecksum(view.subarray(4, pos)) !== view[pos]) {
    throw new Lz4FrameError("LZ4 frame header checksum mismatch");
  }
  pos += 1;

  const out = Buffer.allocUnsafe(expectedSize);
  let written = 0;
  for (;;) {
    need(pos, 4, "block size");
    const word = view.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break;
    const size = word & ~BLOCK_UNCOMPRESSED;
    if (size > blockMax) throw new Lz4FrameError(`LZ4 block of ${size} bytes exceeds the frame's ${blockMax}`);
    need(pos, size, "block data");
    const data = view.subarray(pos, pos + size);
    pos += size;
    if (flg & FLG_BLOCK_CHECKSUM) {
      need(pos, 4, "block checksum");
      if (lz4.utils.blockChecksum(data) >>> 0 !== view.readUInt32LE(pos))
        throw new Lz4FrameError("LZ4 block checksum mismatch");
      pos += 4;
    }
    const room = out.subarray(written, Math.min(expectedSize, written + blockMax));
    if (word & BLOCK_UNCOMPRESSED) {
      if (size > room.length) throw new Lz4FrameError(`LZ4 frame holds more than the expected ${expectedSize} bytes`);
      room.set(data);
      written += size;
    } else {
      const decoded = lz4.decodeBlock(data, room);
      if (decoded < 0) throw new Lz4FrameError(`corrupt LZ4 block at byte ${pos - size - 4}`);
      written += decoded;
    }
  }
  if (written !== expectedSize) throw new Lz4FrameError(`LZ4 frame holds ${written} bytes, expected ${expectedSize}`);
  if (flg & FLG_CONTENT_CHECKSUM) {
    need(pos, 4, "content checksum");
    const digest = lz4.utils.streamChecksum(null, lz4.utils.streamChecksum(out, null)) as number;
    if (digest >>> 0 !== view.readUInt32LE(pos)) throw new Lz4FrameError("LZ4 content checksum mismatch");
    pos += 4;
  }
  if (pos !== view.length) throw new Lz4FrameError(`${view.length - pos} trailing bytes after the LZ4 frame`);
  return out;
}
