// What keeps one query from stalling the process that also serves ingestion and /ready: evaluation runs in
// slices of at most YIELD_MS, giving the event loop a turn between them, stops at the next slice once its
// request is aborted (the query timeout), and counts the samples it holds against the query's limit.

/** Longest stretch of evaluation between two turns of the event loop. */
const YIELD_MS = 10;
/** Evaluation steps between two looks at the clock. */
const CHECK_EVERY = 64;

export class EvaluationBudget {
  private steps = 0;
  private samples = 0;
  private sliceStart = performance.now();

  constructor(
    private readonly limits: {
      /** With tooManySamples: the most samples the evaluation may hold. */
      maxSamples?: number;
      /** The error to throw once more than maxSamples are held. */
      tooManySamples?: () => Error;
      signal?: AbortSignal | undefined;
    },
  ) {}

  /** Counts `count` more samples held by the evaluation; throws the limit's error past maxSamples. */
  spend(count: number): void {
    this.samples += count;
    const { maxSamples, tooManySamples } = this.limits;
    if (maxSamples !== undefined && tooManySamples !== undefined && this.samples > maxSamples) throw tooManySamples();
  }

  /** Checks that one range of the evaluation, held only while it is used, is within maxSamples. */
  hold(count: number): void {
    const { maxSamples, tooManySamples } = this.limits;
    if (maxSamples !== undefined && tooManySamples !== undefined && count > maxSamples) throw tooManySamples();
  }

  /**
   * Called at every evaluation step: once the current slice has run YIELD_MS, waits for the event loop's next
   * turn, then throws the abort reason if the request was aborted meanwhile.
   */
  async pause(): Promise<void> {
    if (this.due()) await this.turn();
  }

  /** Counts a step as pause() does and tells whether pause() would wait: a hot loop then awaits turn() alone. */
  due(): boolean {
    return ++this.steps % CHECK_EVERY === 0 && performance.now() - this.sliceStart >= YIELD_MS;
  }

  /** Waits for the event loop's next turn, then throws the abort reason if the request was aborted meanwhile. */
  async turn(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.sliceStart = performance.now();
    this.limits.signal?.throwIfAborted();
  }
}
