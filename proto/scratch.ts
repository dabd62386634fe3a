/**
 * A buffer reused from one encode to the next. Encoding a batch makes two intermediate copies (the protobuf
 * message and its LZ4 frame) as large as the batch; allocated anew each time, they are garbage the moment the
 * frame is built, and on a small edge node that garbage, not the data, set the process's peak memory. Only
 * sizes up to `maxBytes` are kept: a rare huge batch gets a buffer of its own, so it does not pin its size.
 * One scratch serves one synchronous encode at a time (each worker thread has its own module instance).
 */
export class Scratch {
  private buffer: Buffer | undefined;

  constructor(private readonly maxBytes: number) {}

  /** A buffer of exactly `size` bytes whose contents are undefined; valid until the next take(). */
  take(size: number): Buffer {
    if (size > this.maxBytes) return Buffer.allocUnsafe(size);
    if (this.buffer === undefined || this.buffer.length < size)
      this.buffer = Buffer.allocUnsafeSlow(Math.min(this.maxBytes, Math.max(size, 2 * (this.buffer?.length ?? 0))));
    return this.buffer.subarray(0, size);
  }
}
