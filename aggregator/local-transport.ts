import type { Transport } from "../collector/shipper.js";
import type { WalRecord } from "../collector/wal.js";
import type { BatchLimits } from "../proto/validate.js";
import type { LogBatch, RollupBatch, SampleBatch, Store } from "../storage/store.js";
import decode from "./worker.js";

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

  async send(records: WalRecord[]): Promise<void> {
    const { store, maxBatchBytes, limits } = this.options;
    const logs: LogBatch[] = [];
    const samples: SampleBatch[] = [];
    const rollups: RollupBatch[] = [];
    for (const record of records) {
      const result = decode({ value: record.payload, maxBatchBytes, limits });
      if (!result.ok) {
        this.options.onInvalid(result.reason, result.message);
        continue;
      }
      const { batch, id } = result;
      if (batch.streams.length > 0) logs.push({ id, tenant: batch.tenant, streams: batch.streams });
      if (batch.series.length > 0) {
        samples.push({ id, tenant: batch.tenant, series: batch.series });
        rollups.push({ id, tenant: batch.tenant, partials: result.partials });
      }
    }
    await store.appendLogs(logs);
    // Raw samples before rollups, as the aggregator writes them: a retry after a failure between the two finds
    // the samples stored and writes the rollups.
    await store.appendSamples(samples);
    await store.appendRollups(rollups);
  }

  async reset(): Promise<void> {}

  async close(): Promise<void> {}
}
