import { crc32c } from "@node-rs/crc32";
import { type Batch, decodeBatchMessage, encodeBatchMessage } from "./batch.js";
import { lz4FrameDecode, lz4FrameEncode, Lz4FrameError } from "./lz4frame.js";
import { Scratch } from "./scratch.js";

// Frame layout, little endian:
//   0  magic "BFRB"        4  version u8     5  flags u8 (0)    6  reserved u16 (0)
//   8  uncompressed u32    12 payload u32    16 CRC32C of bytes 0..15 and the payload
//   20 payload: an LZ4 frame of a bifrost.v1.Batch protobuf message
export const FRAME_MAGIC = 0x42524642; // "BFRB" read as little endian
export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 20;
export const DEFAULT_MAX_BATCH_BYTES = 64 << 20;

export type CodecErrorKind =
  | "truncated"
  | "oversized"
  | "bad_magic"
  | "unsupported_version"
  | "crc_mismatch"
  | "corrupt_payload"
  | "invalid_message"
  | "trailing_bytes";

/** Why a frame was rejected; `kind` is stable for metrics and dead-letter records. */
export class CodecError extends Error {
  override readonly name = "CodecError";
  constructor(
    readonly kind: CodecErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface CodecLimits {
  /** Largest accepted batch, uncompressed protobuf bytes; also bounds the compressed payload. */
  maxBatchBytes?: number;
}

// The message and its LZ4 frame are intermediate: only the frame, copied out at its exact size, is returned.
const messageScratch = new Scratch(4 << 20);
const payloadScratch = new Scratch(4 << 20);

export function encodeBatch(batch: Batch, limits: CodecLimits = {}): Buffer {
  return frameMessage(encodeBatchMessage(batch, messageScratch), limits);
}

/** A frame around an encoded batch message. */
export function frameMessage(message: Uint8Array, limits: CodecLimits = {}): Buffer {
  const max = limits.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  if (message.length > max) {
    throw new CodecError("oversized", `batch is ${message.length} bytes, the limit is ${max}`);
  }
  const payload = lz4FrameEncode(message, payloadScratch);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(FRAME_MAGIC, 0);
  frame[4] = FRAME_VERSION;
  frame[5] = 0;
  frame.writeUInt16LE(0, 6);
  frame.writeUInt32LE(message.length, 8);
  frame.writeUInt32LE(payload.length, 12);
  payload.copy(frame, FRAME_HEADER_BYTES);
  frame.writeUInt32LE(frameChecksum(frame, payload.length), 16);
  return frame;
}

function frameChecksum(frame: Buffer, payloadLength: number): number {
  const header = crc32c(frame.subarray(0, 16));
  return crc32c(frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + payloadLength), header) >>> 0;
}

/** Decodes one frame that must span all of `frame`; every defect throws CodecError, nothing else. */
export function decodeBatch(frame: Uint8Array, limits: CodecLimits = {}): Batch {
  return decodeMessage(decodeFrame(frame, limits));
}

/** Decodes a frame's protobuf message (see decodeFrame); a malformed one throws CodecError. */
export function decodeMessage(message: Uint8Array): Batch {
  try {
    return decodeBatchMessage(message);
  } catch (err) {
    throw new CodecError("invalid_message", `batch message does not decode: ${(err as Error).message}`);
  }
}

/** The protobuf message of a frame, checked and decompressed but not decoded; the frame's defects throw CodecError. */
export function decodeFrame(frame: Uint8Array, limits: CodecLimits = {}): Buffer {
  const max = limits.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (buf.length < FRAME_HEADER_BYTES) {
    throw new CodecError(
      "truncated",
      `frame is ${buf.length} bytes, shorter than its ${FRAME_HEADER_BYTES}-byte header`,
    );
  }
  if (buf.readUInt32LE(0) !== FRAME_MAGIC) throw new CodecError("bad_magic", "not a Bifrost batch frame (bad magic)");
  const version = buf[4]!;
  if (version !== FRAME_VERSION) {
    throw new CodecError(
      "unsupported_version",
      `frame version ${version} is not supported (this build reads ${FRAME_VERSION})`,
    );
  }
  if (buf[5] !== 0 || buf.readUInt16LE(6) !== 0) {
    throw new CodecError("unsupported_version", "frame sets flags this build does not know");
  }
  const uncompressed = buf.readUInt32LE(8);
  const payloadLength = buf.readUInt32LE(12);
  if (uncompressed > max)
    throw new CodecError("oversized", `batch declares ${uncompressed} bytes, the limit is ${max}`);
  // An incompressible batch grows by LZ4's block headers; anything larger than that bound is not ours.
  const payloadMax = max + Math.ceil(max / 255) + 64;
  if (payloadLength > payloadMax)
    throw new CodecError("oversized", `payload declares ${payloadLength} bytes, the limit is ${payloadMax}`);
  const end = FRAME_HEADER_BYTES + payloadLength;
  if (buf.length < end) throw new CodecError("truncated", `frame is ${buf.length} bytes, its header declares ${end}`);
  if (buf.length > end) throw new CodecError("trailing_bytes", `${buf.length - end} bytes follow the frame`);
  if (frameChecksum(buf, payloadLength) !== buf.readUInt32LE(16))
    throw new CodecError("crc_mismatch", "frame CRC32C mismatch");
  try {
    return lz4FrameDecode(buf.subarray(FRAME_HEADER_BYTES, end), uncompressed);
  } catch (err) {
    if (err instanceof Lz4FrameError) throw new CodecError("corrupt_payload", err.message);
    throw err;
  }
}
