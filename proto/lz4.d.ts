// The parts of the `lz4` package (native LZ4 and xxHash bindings) that proto/lz4frame.ts uses.
declare module "lz4" {
  /** Compresses `input` into `output` as one LZ4 block; returns the compressed size, 0 if it did not fit. */
  export function encodeBlock(input: Uint8Array, output: Uint8Array): number;
  /** Worst-case compressed size of `size` input bytes. */
  export function encodeBound(size: number): number;
  /** Decompresses one LZ4 block into `output`; returns the decoded size, negative on corrupt input or overflow. */
  export function decodeBlock(input: Uint8Array, output: Uint8Array): number;
  export const utils: {
    descriptorChecksum(descriptor: Uint8Array): number;
    blockChecksum(block: Uint8Array): number;
    streamChecksum(data: Uint8Array | null, state: unknown): unknown;
  };
}
