import { mergePlaceholders, PLACEHOLDER, type Tokenizer } from "./tokenizers.js";

// The Drain log template miner (He et al., "Drain: An Online Log Parsing Approach with Fixed Depth Tree", ICWS
// 2017) with the parameters of Loki's pattern ingester: a line's tokens walk a prefix tree, first by their count,
// then by their leading tokens (a token with digits, or one past a node's 15 children, takes the wildcard branch);
// the leaf's templates are compared position by position and the line joins the most similar one if at least 30%
// of the positions agree, its differing positions becoming placeholders, else it founds a template of its own.
// Lines of fewer than 4 or more than 80 tokens are not mined. Each template counts its lines per 10 seconds.

export const SAMPLE_INTERVAL_MS = 10_000;

const SIMILARITY = 0.3;
const TREE_DEPTH = 30 - 2;
const MAX_CHILDREN = 15;
const MAX_CLUSTERS = 300;
const MIN_TOKENS = 4;
const MAX_TOKENS = 80;

export interface Cluster {
  tokens: string[];
  spaces: readonly number[];
  /** Lines per 10-second bucket (start in ms), oldest first. */
  samples: Map<number, number>;
}

interface Node {
  children: Map<string, Node>;
  clusters: Cluster[];
}

function node(): Node {
  return { children: new Map(), clusters: [] };
}

const DIGIT = /\p{N}/u;

export class Drain {
  private readonly root = node();
  /** Clusters by recency of use: Map keeps insertion order, and a used cluster is moved to the end. */
  private readonly live = new Map<Cluster, true>();

  constructor(private readonly tokenizer: Tokenizer) {}

  /** Adds a line seen at `tsMs`; lines must come oldest first. */
  train(line: string, tsMs: number): void {
    const tokenized = this.tokenizer.tokenize(line);
    if (tokenized === undefined) return;
    const { tokens, spaces } = tokenized;
    if (tokens.length < MIN_TOKENS || tokens.length > MAX_TOKENS) return;
    let cluster = this.search(tokens);
    if (cluster === undefined) {
      cluster = { tokens, spaces, samples: new Map() };
      this.remember(cluster);
      this.addToTree(cluster);
    } else {
      for (let i = 0; i < tokens.length; i++) if (cluster.tokens[i] !== tokens[i]) cluster.tokens[i] = PLACEHOLDER;
      this.live.delete(cluster);
      this.live.set(cluster, true);
    }
    const bucket = tsMs - (tsMs % SAMPLE_INTERVAL_MS);
    cluster.samples.set(bucket, (cluster.samples.get(bucket) ?? 0) + 1);
  }

  /** The templates with their patterns; a template that joins to nothing is left out. */
  patterns(): { pattern: string; cluster: Cluster }[] {
    const out: { pattern: string; cluster: Cluster }[] = [];
    for (const cluster of this.live.keys()) {
      const pattern = mergePlaceholders(this.tokenizer.join(cluster.tokens, cluster.spaces));
      if (pattern !== "") out.push({ pattern, cluster });
    }
    return out;
  }

  /** Keeps at most MAX_CLUSTERS templates, forgetting the least recently used. */
  private remember(cluster: Cluster): void {
    this.live.set(cluster, true);
    if (this.live.size > MAX_CLUSTERS) this.live.delete(this.live.keys().next().value!);
  }

  private search(tokens: string[]): Cluster | undefined {
    let current = this.root.children.get(String(tokens.length));
    if (current === undefined) return undefined;
    let depth = 1;
    for (const token of tokens) {
      if (depth >= TREE_DEPTH || depth === tokens.length) break;
      const next: Node | undefined = current.children.get(token) ?? current.children.get(PLACEHOLDER);
      if (next === undefined) return undefined;
      current = next;
      depth++;
    }
    let best: Cluster | undefined;
    let bestSimilarity = -1;
    let bestParams = -1;
    for (const cluster of current.clusters) {
      if (!this.live.has(cluster)) continue;
      let same = 0;
      let params = 0;
      for (let i = 0; i < tokens.length; i++) {
        if (cluster.tokens[i] === PLACEHOLDER) params++;
        else if (cluster.tokens[i] === tokens[i]) same++;
      }
      const similarity = same / tokens.length;
      if (similarity > bestSimilarity || (similarity === bestSimilarity && params > bestParams)) {
        best = cluster;
        bestSimilarity = similarity;
        bestParams = params;
      }
    }
    return bestSimilarity >= SIMILARITY ? best : undefined;
  }

  private addToTree(cluster: Cluster): void {
    const count = String(cluster.tokens.length);
    let current = this.root.children.get(count);
    if (current === undefined) {
      current = node();
      this.root.children.set(count, current);
    }
    let depth = 1;
    for (const token of cluster.tokens) {
      if (depth >= TREE_DEPTH || depth >= cluster.tokens.length) break;
      current = this.child(current, token);
      depth++;
    }
    current.clusters = current.clusters.filter((known) => this.live.has(known));
    current.clusters.push(cluster);
  }

  /** The branch a template's token takes, created where the tree has room. */
  private child(parent: Node, token: string): Node {
    const exact = parent.children.get(token);
    if (exact !== undefined) return exact;
    const wildcard = parent.children.get(PLACEHOLDER);
    const make = (key: string): Node => {
      const created = node();
      parent.children.set(key, created);
      return created;
    };
    if (DIGIT.test(token)) return wildcard ?? make(PLACEHOLDER);
    if (wildcard !== undefined) return parent.children.size < MAX_CHILDREN ? make(token) : wildcard;
    if (parent.children.size + 1 < MAX_CHILDREN) return make(token);
    // A node reaching its last free child gets the wildcard branch, which takes every later token.
    return make(PLACEHOLDER);
  }
}
