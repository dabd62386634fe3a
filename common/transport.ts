// What the collector's shipper and a transport agree on: the shipper reads encoded batches from the disk buffer
// and hands them to a transport (Kafka, HTTP to an aggregator, or in `bifrost all` the process's store), and
// moves its cursor once the transport says they are durable at the other end.

/** One encoded batch (a batch frame, proto/codec.ts) with its sequence in the disk buffer. */
export interface BatchRecord {
  sequence: number;
  payload: Buffer;
}

/** Where the shipper delivers disk-buffer records. */
export interface Transport {
  /** Resolves once `records` are durable at the other end; called again with the same records after a failure. */
  send(records: BatchRecord[]): Promise<void>;
  /** Drops connections after a failure, so the next attempt starts fresh. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** The other end asked to be left alone for a while (HTTP 429 or 503); `delayMs` is its Retry-After, if any. */
export class RetryLaterError extends Error {
  override readonly name = "RetryLaterError";
  constructor(
    message: string,
    readonly delayMs: number | undefined,
  ) {
    super(message);
  }
}
