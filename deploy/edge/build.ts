import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

// The edge collector as one minified bundle (dist/edge/cli.js and its lazily loaded chunks), what the systemd
// unit and the collector DaemonSet run. Loaded as some 600 separate ES modules, the collector's code and its
// libraries (kafkajs, zod, yaml, hono, prom-client, pino, protobufjs) keep each module's record and full
// source text in V8's heap; bundled, tree-shaken and minified they take a few MiB less of a 256 MiB node,
// for the same code. Native addons stay in node_modules. Only the collector role is in the bundle: the
// aggregator's worker pool and the stores are loaded by path, and the center is no edge node's business.

const DIST = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUT = join(DIST, "edge");
const NATIVE = ["lz4", "snappy", "re2", "@node-rs/crc32", "@duckdb/node-api", "piscina"];
const PROTO_FILES = [
  "bifrost.proto",
  "rpc-status.proto",
  "loki/push.proto",
  "prometheus/remote.proto",
  "prometheus/write-v2.proto",
  "opamp/v1/opamp.proto",
  "opamp/v1/anyvalue.proto",
];

/** Roles other than the collector: their modules are replaced by one that says where they are. */
const collectorOnly: Plugin = {
  name: "collector-only",
  setup(b) {
    b.onResolve(
      {
        filter:
          /(^|\/)(aggregator\/index|query\/index|fleet\/index|fleet\/cli|storage\/open|aggregator\/store-transport)\.js$/,
      },
      (args) => ({ path: args.path, namespace: "not-in-edge-build" }),
    );
    b.onLoad({ filter: /.*/, namespace: "not-in-edge-build" }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`the edge build carries only the collector (${args.path} is not in it); run dist/cli.js for the other roles`)});`,
      loader: "js",
    }));
  },
};

rmSync(OUT, { recursive: true, force: true });
const result = await build({
  entryPoints: [join(DIST, "cli.js")],
  outdir: OUT,
  bundle: true,
  splitting: true,
  minify: true,
  format: "esm",
  platform: "node",
  target: "node20",
  mainFields: ["module", "main"],
  external: NATIVE,
  plugins: [collectorOnly],
  // CommonJS libraries inside an ES module bundle still call require() for Node's own modules.
  banner: {
    js: "import { createRequire as __bifrostRequire } from 'node:module'; const require = __bifrostRequire(import.meta.url);",
  },
  legalComments: "external",
  sourcemap: "linked",
  metafile: true,
  logLevel: "warning",
});
for (const file of PROTO_FILES) {
  mkdirSync(dirname(join(OUT, file)), { recursive: true });
  copyFileSync(join(DIST, "proto", file), join(OUT, file));
}
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stdout.write(
  `edge collector bundle: ${OUT}/cli.js (${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1048576).toFixed(1)} MiB with source maps)\n`,
);
