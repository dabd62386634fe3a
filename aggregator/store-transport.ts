import type { Counter } from "prom-client";
import type { Logger } from "../common/log.js";
import type { BatchRecord, Transport } from "../common/transport.js";
import type { BatchLimits } from "../proto/validate.js";
import type { Store } from "../storage/store.js";
import { type DeadLetter, type DeadLetters, sendDeadLetters } from "./dead-letters.js";
import { appendIsolating } from "./isolate.js";
import { type WriteSource, writePartOf } from "./write-part.js";
import decode, { type DecodedBatch } from "./worker.js";

// `bifrost all` has no Kafka: the collector's shipper hands its disk-buffer records straight to this transport,
// which does what an aggregator does with a Kafka message (decode, validate, roll up) and writes to the store.
// The records leave the disk buffer only after the store write, so the collector's guarantees hold unchanged.
// What cannot be stored (a record that does not decode, rows outside the limits, rows the store refuses for
// good) goes to the dead letters, a file, and everything else of the records is written: one bad row never
// holds the disk buffer, and with it every tenant, back.

export interface StoreTransportOptions {
  store: Store;
  maxBatchBytes: number;
  limits: BatchLimits;
  deadLetters: DeadLetters;
  deadLetterCounter: Counter<"reason">;
  log: Logger;
}

export class StoreTransport implements Transport {
  constructor(private readonly options: StoreTransportOptions) {}

  async send(records: BatchRecord[]): Promise<void> {
    const { store, maxBatchBytes, limits, log } = this.options;
    const decoded: { result: DecodedBatch; source: WriteSource }[] = [];
    const dead: DeadLetter[] = [];
    for (const record of records) {
      const source = { frame: record.payload, origin: `disk buffer record ${record.sequence}` };
      // Decoded, not encoded, log rows: the embedded store of `bifrost all` takes them as they are.
      const result = decode({ value: record.payload, maxBatchBytes, limits, encodeLogs: false });
      if (!result.ok) {
        dead.push({ ...source, source: source.origin, reason: result.reason, error: result.message });
        continue;
      }
      for (const r of result.refused)
        dead.push({ ...source, source: source.origin, reason: r.reason, error: r.message, frame: r.frame });
      decoded.push({ result, source });
    }
    const isolated = await appendIsolating(
      {
        store,
        maxBatchBytes,
        limits,
        onRollupsLeftOut: (partials, error) => {
          this.options.deadLetterCounter.inc({ reason: "store_rejected_rollup" }, partials);
          log.error({ partials, err: error }, "the store refuses rollup partials; left out (their samples are stored)");
        },
      },
      writePartOf(decoded),
      decoded.map((d) => d.source),
    );
    await sendDeadLetters(this.options.deadLetters, [...dead, ...isolated.dead], this.options.deadLetterCounter, log);
  }

  async reset(): Promise<void> {}

  async close(): Promise<void> {
    await this.options.deadLetters.close();
  }
}
