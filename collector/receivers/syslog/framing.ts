// Syslog over a byte stream (TCP, TLS) as RFC 6587 frames it, told apart per message as rsyslog's imtcp does:
// a frame that starts with a digit is octet-counted (`LEN SP MSG`, the only framing RFC 5425 allows over
// TLS), any other is non-transparent, ended by LF (a CR before it is dropped). A message over the size limit
// is cut at it and the rest skipped without being held; an octet count that is not a number is a broken
// stream, after which no frame boundary can be trusted, so the connection is closed.

export class FramingError extends Error {
  override readonly name = "FramingError";
}

export interface Frame {
  bytes: Buffer;
  /** The message was longer than the limit and was cut to it. */
  truncated: boolean;
}

const SPACE = 0x20;
const LF = 0x0a;
const CR = 0x0d;
/** A count of more digits than this is larger than any message limit. */
const MAX_COUNT_DIGITS = 10;

export class FrameDecoder {
  /** Bytes of the frame being read (at most the limit). */
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Octet-counted frame: bytes still to come (counting those skipped over the limit); -1 for LF framing. */
  private remaining = -1;
  private counting = false;
  private digits = "";
  private truncated = false;
  private inFrame = false;
  /** The last of `parts` points into the chunk being read. */
  private fresh = false;

  constructor(private readonly maxMessageBytes: number) {}

  /** The frames completed by `chunk`; throws FramingError on a broken octet count. */
  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (!this.inFrame) {
        const first = chunk[pos]!;
        // Stray LFs between frames (a sender that ends octet-counted frames with one too) are skipped.
        if (first === LF || (first === CR && chunk[pos + 1] === LF)) {
          pos++;
          continue;
        }
        this.inFrame = true;
        this.counting = first >= 0x31 && first <= 0x39;
        this.digits = "";
        this.remaining = -1;
      }
      if (this.counting && this.remaining < 0) {
        while (pos < chunk.length && chunk[pos] !== SPACE) {
          const byte = chunk[pos]!;
          if (byte < 0x30 || byte > 0x39 || this.digits.length >= MAX_COUNT_DIGITS)
            throw new FramingError(
              `octet-counted frame with a bad length ${JSON.stringify(this.digits + String.fromCharCode(byte))}`,
            );
          this.digits += String.fromCharCode(byte);
          pos++;
        }
        if (pos === chunk.length) break;
        pos++;
        this.remaining = Number(this.digits);
        if (this.remaining === 0) {
          this.inFrame = false;
          continue;
        }
      }
      if (this.counting) {
        const take = Math.min(this.remaining, chunk.length - pos);
        this.append(chunk.subarray(pos, pos + take));
        this.remaining -= take;
        pos += take;
        if (this.remaining === 0) frames.push(this.finish());
      } else {
        const newline = chunk.indexOf(LF, pos);
        const end = newline < 0 ? chunk.length : newline;
        this.append(chunk.subarray(pos, end));
        pos = end;
        if (newline >= 0) {
          pos++;
          const frame = this.finish();
          if (!frame.truncated && frame.bytes[frame.bytes.length - 1] === CR) frame.bytes = frame.bytes.subarray(0, -1);
          frames.push(frame);
        }
      }
    }
    // Frames completed here may point into the chunk (they are decoded at once); the piece of an unfinished
    // one is copied, so that it does not hold a whole chunk until the rest arrives.
    if (this.fresh) this.parts[this.parts.length - 1] = Buffer.from(this.parts[this.parts.length - 1]!);
    this.fresh = false;
    return frames;
  }

  /** The unterminated last message when the sender closes the connection, if any. */
  end(): Frame | undefined {
    if (!this.inFrame || this.counting || this.partBytes === 0) return undefined;
    return this.finish();
  }

  private append(piece: Buffer): void {
    const room = this.maxMessageBytes - this.partBytes;
    if (piece.length > room) {
      this.truncated = true;
      piece = piece.subarray(0, Math.max(0, room));
    }
    if (piece.length === 0) return;
    this.parts.push(piece);
    this.fresh = true;
    this.partBytes += piece.length;
  }

  private finish(): Frame {
    const bytes = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partBytes);
    const frame = { bytes, truncated: this.truncated };
    this.parts = [];
    this.partBytes = 0;
    this.truncated = false;
    this.inFrame = false;
    this.remaining = -1;
    this.fresh = false;
    return frame;
  }

  /** Bytes held for the frame being read. */
  get buffered(): number {
    return this.partBytes;
  }
}
