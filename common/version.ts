import pkg from "../package.json" with { type: "json" };

/** Bifrost's version, as `bifrost --version`, buildinfo and User-Agent headers give it. */
export const VERSION: string = pkg.version;
