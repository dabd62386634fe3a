import { isMap, isPair, isSeq, type Document, type LineCounter, type Node, type Pair } from "yaml";

/**
 * Where in a YAML file a path of keys (as a schema reports a problem) lies, as `line:column`: the deepest node
 * of the path that the file has, or with `key` the key of that name inside it (an unknown key's own line).
 */
export function locate(doc: Document, lines: LineCounter, path: PropertyKey[], key?: string): string {
  let node: Node | null | undefined = doc.contents;
  let at = node?.range?.[0] ?? 0;
  const steps = key === undefined ? path : [...path, key];
  for (const [i, step] of steps.entries()) {
    if (isMap(node)) {
      const pair: Pair | undefined = node.items.find(
        (p) => isPair(p) && String((p.key as { value?: unknown })?.value) === String(step),
      );
      if (pair === undefined) break;
      const keyNode = pair.key as Node | null;
      // The last step of an unknown key points at the key itself; otherwise at the value.
      node = i === steps.length - 1 && key !== undefined ? keyNode : (pair.value as Node | null);
      at = node?.range?.[0] ?? keyNode?.range?.[0] ?? at;
    } else if (isSeq(node) && typeof step === "number" && node.items[step] !== undefined) {
      node = node.items[step] as Node;
      at = node.range?.[0] ?? at;
    } else break;
  }
  const { line, col } = lines.linePos(at);
  return `${line}:${col}`;
}
