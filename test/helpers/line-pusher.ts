import assert from "node:assert/strict";

/**
 * Posts numbered lines in one stream to collectors' Loki push API, stamped with the current time (so that no
 * retention or timestamp window touches them), and keeps those acknowledged. Every request must get 204.
 */
export class LinePusher {
  readonly acknowledged: string[] = [];
  private lastNs = 0n;
  private n = 0;

  constructor(private readonly labels: Record<string, string>) {}

  /** Pushes `count` new lines, each starting with `tag`, to the collector at `url`; returns them. */
  async push(url: string, count: number, tag: string): Promise<string[]> {
    const now = BigInt(Date.now()) * 1_000_000n;
    this.lastNs = now > this.lastNs ? now : this.lastNs + 1n;
    const values = Array.from({ length: count }, (_, i) => [String(this.lastNs + BigInt(i)), `${tag} n=${this.n++}`]);
    this.lastNs += BigInt(count);
    const response = await fetch(`${url}/loki/api/v1/push`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ streams: [{ stream: this.labels, values }] }),
    });
    assert.equal(response.status, 204, await response.text());
    const lines = values.map(([, line]) => line!);
    this.acknowledged.push(...lines);
    return lines;
  }
}
