// Admission control for the receivers that answer their senders: a budget of bytes that requests hold from the
// moment their body is read until their data is in the disk buffer (or refused), shared by every receiver of the
// process. A request reserves its body first, and before decompressing the most it may grow to
// (IngestContract.maxDecompressedBytes; a snappy body declares its size), then keeps what it turned out to be.
// So decoding many bodies at once cannot take memory beyond the budget (plus the objects decoding makes of
// them, a small multiple), and when the disk buffer or the event loop falls behind, requests wait for room in
// arrival order, up to a bound, and are then answered 503 with Retry-After instead of waiting without end.

/** No room within the wait bound: answered 503 with Retry-After. */
export class OverloadedError extends Error {
  override readonly name = "OverloadedError";
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super(message);
  }
}

export interface AdmissionOptions {
  /** Bytes that requests in flight may hold together. */
  maxBytes: number;
  /** Longest a request waits for room before OverloadedError. */
  maxWaitMs: number;
  /** Told of every change of the bytes held and of the requests waiting, for gauges. */
  onChange?: (held: number, waiting: number) => void;
}

interface Waiter {
  bytes: number;
  grant: () => void;
  timer: NodeJS.Timeout;
}

export class Admission {
  private held = 0;
  private readonly queue: Waiter[] = [];

  constructor(private readonly options: AdmissionOptions) {}

  /** Bytes held by requests in flight. */
  get heldBytes(): number {
    return this.held;
  }

  /** Reserves `bytes` (at most the whole budget), waiting for room up to the bound; OverloadedError past it. */
  async enter(bytes: number): Promise<Ticket> {
    const ticket = new Ticket(this, Date.now() + this.options.maxWaitMs);
    await ticket.resize(bytes);
    return ticket;
  }

  /** @internal Moves a ticket's reservation by `delta` bytes, waiting until `deadline` when it grows. */
  async reserve(delta: number, deadline: number): Promise<void> {
    if (delta <= 0) {
      this.held += delta;
      this.grantWaiting();
      this.changed();
      return;
    }
    if (this.queue.length === 0 && this.held + delta <= this.options.maxBytes) {
      this.held += delta;
      this.changed();
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        bytes: delta,
        grant: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(
          () => {
            this.queue.splice(this.queue.indexOf(waiter), 1);
            this.changed();
            // Whoever waited behind it may fit now.
            this.grantWaiting();
            reject(
              new OverloadedError(
                `the receivers are busy: ${this.held} of ${this.options.maxBytes} bytes of requests in flight (collector.limits.max_inflight_bytes) and no room for ${delta} more within ${this.options.maxWaitMs} ms; retry later`,
                Math.max(1, Math.ceil(this.options.maxWaitMs / 1000)),
              ),
            );
          },
          Math.max(0, deadline - Date.now()),
        ),
      };
      this.queue.push(waiter);
      this.changed();
    });
  }

  private grantWaiting(): void {
    while (this.queue.length > 0 && this.held + this.queue[0]!.bytes <= this.options.maxBytes) {
      const next = this.queue.shift()!;
      this.held += next.bytes;
      next.grant();
    }
    this.changed();
  }

  private changed(): void {
    this.options.onChange?.(this.held, this.queue.length);
  }

  /** The budget, which bounds every reservation so that a request larger than it can still go alone. */
  get maxBytes(): number {
    return this.options.maxBytes;
  }
}

/** One request's reservation; release it once its data is in the disk buffer or refused. */
export class Ticket {
  private bytes = 0;
  private released = false;

  constructor(
    private readonly admission: Admission,
    private readonly deadline: number,
  ) {}

  /** Holds `bytes` from now on (at most the whole budget), waiting for room when it grows; OverloadedError past the bound. */
  async resize(bytes: number): Promise<void> {
    if (this.released) return;
    const wanted = Math.min(Math.max(0, Math.ceil(bytes)), this.admission.maxBytes);
    const delta = wanted - this.bytes;
    if (delta === 0) return;
    await this.admission.reserve(delta, this.deadline);
    this.bytes = wanted;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    void this.admission.reserve(-this.bytes, this.deadline);
    this.bytes = 0;
  }
}
