import { GO_BUILTINS } from "./builtins.js";
import { LOKI_FUNCTIONS } from "./loki-functions.js";
import type { TemplateFunction } from "./signature.js";
import { SPRIG_FUNCTIONS } from "./sprig.js";

// The functions Loki registers for line_format and label_format: Go's template builtins, Loki's own (fmt.go) and
// the sprig subset it imports. Names do not overlap.
export const FUNCTIONS: ReadonlyMap<string, TemplateFunction> = new Map([
  ...GO_BUILTINS,
  ...LOKI_FUNCTIONS,
  ...SPRIG_FUNCTIONS,
]);
