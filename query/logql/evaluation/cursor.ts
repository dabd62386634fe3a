// Reads rows one at a time out of a source's chunks, with a look at the next row before taking it, so that a
// range aggregation can stop loading exactly at a window's end. Only the current chunk is held in memory.

export class RowCursor<Row> {
  private readonly chunks: AsyncIterator<Row[]>;
  private chunk: Row[] = [];
  private index = 0;
  private done = false;

  constructor(
    source: AsyncIterable<Row[]>,
    private readonly signal?: AbortSignal,
  ) {
    this.chunks = source[Symbol.asyncIterator]();
  }

  /** The next row without taking it; undefined once the source is exhausted. */
  async peek(): Promise<Row | undefined> {
    while (this.index >= this.chunk.length) {
      if (this.done) return undefined;
      // Aborting is honoured between chunks: a chunk in hand is cheap to finish, a source read may not be.
      this.signal?.throwIfAborted();
      const next = await this.chunks.next();
      if (next.done === true) {
        this.done = true;
        return undefined;
      }
      this.chunk = next.value;
      this.index = 0;
    }
    return this.chunk[this.index];
  }

  /** The next row when the chunk at hand holds it, without a wait; else undefined, and peek() reads on. */
  buffered(): Row | undefined {
    return this.index < this.chunk.length ? this.chunk[this.index] : undefined;
  }

  /** Takes the row that peek() (or buffered()) returned. */
  skip(): void {
    this.index++;
  }

  /** Stops the source early, e.g. once a log query's limit is reached. */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.chunks.return?.();
    }
  }
}
