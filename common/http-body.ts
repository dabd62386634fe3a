import { promisify } from "node:util";
import { gunzip, inflate } from "node:zlib";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Ticket } from "./admission.js";

// Request bodies of the push receivers: read and decompressed within an admission ticket (common/admission.ts),
// which grows to the most a body may expand to before zlib runs and shrinks to what it did, so that any number of
// small compressed bodies that expand a thousandfold cannot take memory beyond the receivers' budget.

/** A body that cannot be read as sent: `status` 400 (corrupt), 413 (too large) or 415 (unknown encoding). */
export class BodyError extends Error {
  override readonly name = "BodyError";
  constructor(
    readonly status: 400 | 413 | 415,
    readonly reason: "bad_request" | "body_too_large" | "unsupported_encoding",
    message: string,
  ) {
    super(message);
  }
}

/** Hono's body limit for a receiver that answers in plain text: 413 naming the limit, refused as body_too_large. */
export function plainBodyLimit(maxBytes: number, refuse: (reason: "body_too_large") => void) {
  return bodyLimit({
    maxSize: maxBytes,
    onError: (c) => {
      refuse("body_too_large");
      return c.text(`request body larger than ${maxBytes} bytes\n`, 413);
    },
  });
}

/** The request's media type: its Content-Type without parameters, lower-cased ("" when it has none). */
export function mediaType(c: Context): string {
  return (c.req.header("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
}

/** The bytes a request declares (Content-Length), or `otherwise` when it does not. */
export function declaredLength(c: Context, otherwise: number): number {
  const length = Number(c.req.header("Content-Length"));
  return Number.isSafeInteger(length) && length >= 0 ? length : otherwise;
}

const DECOMPRESS = { gzip: promisify(gunzip), deflate: promisify(inflate) };

/**
 * `raw` decompressed as its Content-Encoding says (`encodings` are those the receiver takes), at most `maxBytes`,
 * with `ticket` grown to `maxBytes` while zlib runs and set to the result's size after.
 */
export async function decompressBody(
  raw: Buffer,
  contentEncoding: string,
  options: { maxBytes: number; ticket: Ticket; encodings: ("gzip" | "deflate")[] },
): Promise<Buffer> {
  const encoding = contentEncoding.trim().toLowerCase();
  if (encoding === "" || encoding === "identity") return raw;
  if (!(options.encodings as string[]).includes(encoding))
    throw new BodyError(
      415,
      "unsupported_encoding",
      `unsupported Content-Encoding ${encoding}; use ${[...options.encodings, "none"].join(" or ")}`,
    );
  await options.ticket.resize(options.maxBytes);
  let body: Buffer;
  try {
    body = await DECOMPRESS[encoding as "gzip" | "deflate"](raw, { maxOutputLength: options.maxBytes });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE")
      throw new BodyError(413, "body_too_large", `the decompressed body is larger than ${options.maxBytes} bytes`);
    // A corrupt stream is the sender's fault (400), not the receiver's (500).
    throw new BodyError(400, "bad_request", `the body is not valid ${encoding}: ${(err as Error).message}`);
  }
  await options.ticket.resize(body.length);
  return body;
}
