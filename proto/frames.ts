import { CodecError } from "./codec.js";

// The body of POST /bifrost/v1/batches (collector/shipper/http-transport.ts to aggregator/http-ingest.ts): batch frames
// as the disk buffer holds them (codec.ts), one after the other, each behind its length as u32 little endian.
// A frame carries its own lengths and CRC; the prefix lets the aggregator split the body without trusting any
// frame, so that a bad frame is refused by its index while the others of the request are still understood.

/** The aggregator endpoint that takes them. */
export const BATCHES_PATH = "/bifrost/v1/batches";

export const FRAMES_CONTENT_TYPE = "application/vnd.bifrost.frames";

const PREFIX = 4;

export function joinFrames(frames: readonly Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(frames.reduce((n, f) => n + PREFIX + f.length, 0));
  let at = 0;
  for (const frame of frames) {
    out.writeUInt32LE(frame.length, at);
    out.set(frame, at + PREFIX);
    at += PREFIX + frame.length;
  }
  return out;
}

/** The frames of a body, as views into it; a length that runs past the end is `truncated`. */
export function splitFrames(body: Uint8Array): Uint8Array[] {
  const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const frames: Uint8Array[] = [];
  for (let at = 0; at < view.length;) {
    if (view.length - at < PREFIX)
      throw new CodecError(
        "truncated",
        `${view.length - at} bytes after frame ${frames.length}, short of a length prefix`,
      );
    const length = view.readUInt32LE(at);
    if (length > view.length - at - PREFIX)
      throw new CodecError(
        "truncated",
        `frame ${frames.length} says ${length} bytes, ${view.length - at - PREFIX} follow`,
      );
    frames.push(view.subarray(at + PREFIX, at + PREFIX + length));
    at += PREFIX + length;
  }
  return frames;
}
