// Snappy block format bodies (Loki's protobuf push, Prometheus remote write): the declared length is read and
// checked before anything is decompressed, and the native module is loaded by the first such body, so a node fed
// only JSON never holds it in memory.

/** The uncompressed length a snappy block declares (its leading varint), or undefined when there is none. */
export function snappyLength(buf: Uint8Array): number | undefined {
  let value = 0;
  for (let i = 0, shift = 0; i < 5 && i < buf.length; i++, shift += 7) {
    value += (buf[i]! & 0x7f) * 2 ** shift;
    if ((buf[i]! & 0x80) === 0) return value;
  }
  return undefined;
}

let snappy: Promise<typeof import("snappy")> | undefined;

/** Decompresses a snappy block; throws (snappy's error) when it is not one. */
export async function uncompressSnappy(body: Buffer): Promise<Buffer> {
  const { uncompressSync } = await (snappy ??= import("snappy"));
  return uncompressSync(body) as Buffer;
}
