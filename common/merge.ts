// How configuration documents layer, the same everywhere a document is laid over another (the fleet's base
// config and fragments, a remote config over a collector's local file): mappings merge key by key, a later
// scalar or list replaces the earlier one (lists are not concatenated, so a fragment says exactly what it
// wants), and a later `null` deletes the key. This is how the OpenTelemetry Collector merges its --config files.

export type Document = Record<string, unknown>;

export function isMapping(value: unknown): value is Document {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `over` laid on `base`; neither is changed, and nothing of either is shared with the result. */
export function mergeDocuments(base: unknown, over: unknown): unknown {
  if (!isMapping(base) || !isMapping(over)) return structuredClone(over);
  const out: Document = Object.create(null) as Document;
  for (const [key, value] of Object.entries(base)) out[key] = structuredClone(value);
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete out[key];
    else out[key] = key in out ? mergeDocuments(out[key], value) : structuredClone(value);
  }
  return out;
}

/**
 * The value with mapping keys sorted at every level, so that two documents that mean the same serialise (and
 * hash) the same whatever order their files wrote the keys in. Lists keep their order: it means something.
 */
export function canonicalDocument(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonicalDocument);
  if (!isMapping(value)) return value;
  const out: Document = {};
  for (const key of Object.keys(value).sort()) out[key] = canonicalDocument(value[key]);
  return out;
}
