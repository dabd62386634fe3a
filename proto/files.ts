import { fileURLToPath } from "node:url";

/**
 * The path of one of the .proto files shipped beside this module (`proto/` in dist, or beside the edge
 * collector's bundle, which inlines this module): resolved from here, not from each caller, so that one
 * layout serves both.
 */
export function protoFile(name: string): string {
  return fileURLToPath(new URL(name, import.meta.url));
}
