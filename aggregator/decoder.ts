import type { Piscina } from "piscina";
import type { BatchLimits } from "../proto/validate.js";
import type { DecodeResult, DecodeTask } from "./worker.js";

/**
 * Decodes batch frames in the worker pool, for the Kafka consumer and the HTTP endpoint alike. A fetch after a
 * rebalance can hold hundreds of messages per partition, and HTTP requests arrive at once; admitting frames
 * only as slots free keeps the pool's queue within its bound instead of failing them.
 */
export class Decoder {
  private readonly slots: Slots;

  constructor(
    private readonly pool: Piscina,
    private readonly options: { maxBatchBytes: number; limits: BatchLimits; encodeLogs: boolean },
  ) {
    this.slots = new Slots(pool.options.maxThreads + pool.options.maxQueue);
  }

  /** `frame` is copied, so a view into a larger buffer (a Kafka fetch, a request body) posts only its bytes. */
  async decode(frame: Uint8Array): Promise<DecodeResult> {
    await this.slots.acquire();
    try {
      // The copy is moved to the worker rather than copied again.
      const value = new Uint8Array(frame);
      const task: DecodeTask = { value, ...this.options };
      return (await this.pool.run(task, { transferList: [value.buffer] })) as DecodeResult;
    } finally {
      this.slots.release();
    }
  }
}

/** A counting semaphore. */
class Slots {
  private readonly waiting: (() => void)[] = [];

  constructor(private free: number) {}

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}
