import type { BatchRecord, Transport } from "../common/transport.js";
import type { BatchLimits } from "../proto/validate.js";
import type { Store } from "../storage/store.js";
import { appendPart, writePartOf } from "./write-buffer.js";
import decode, { type DecodedBatch } from "./worker.js";

// `bifrost all` has no Kafka: the collector's shipper hands its disk-buffer records straight to this transport,
// which does what an aggregator does with a Kafka message (decode, validate, roll up) and writes to the store.
// The records leave the disk buffer only after the store write, so the collector's guarantees hold unchanged.

export interface StoreTransportOptions {
  store: Store;
  maxBatchBytes: number;
  limits: BatchLimits;
  /** A record that fails to decode or validate: there is no dead-letter topic in process, so it is counted and logged. */
  onInvalid: (reason: string, message: string) => void;
}

export class StoreTransport implements Transport {
  constructor(private readonly options: StoreTransportOptions) {}

  async send(records: BatchRecord[]): Promise<void> {
    const { store, maxBatchBytes, limits } = this.options;
    const decoded: DecodedBatch[] = [];
    for (const record of records) {
      // Decoded, not encoded, log rows: the embedded store of `bifrost all` takes them as they are.
      const result = decode({ value: record.payload, maxBatchBytes, limits, encodeLogs: false });
      if (result.ok) decoded.push(result);
      else this.options.onInvalid(result.reason, result.message);
    }
    await appendPart(store, writePartOf(decoded));
  }

  async reset(): Promise<void> {}

  async close(): Promise<void> {}
}
