import { RowBinaryWriter } from "./log-rowbinary.js";
import type { SampleRow } from "./rows.js";

/** The samples table's columns that sampleRowBinary writes, in this order. */
export const SAMPLE_COLUMNS = ["tenant", "fingerprint", "timestamp", "value", "batch_id"] as const;

/** Sample rows as the body of a ClickHouse INSERT in RowBinary: DateTime64(3) as Int64 milliseconds. */
export function sampleRowBinary(rows: SampleRow[]): Uint8Array {
  const w = new RowBinaryWriter(rows.length * 64);
  for (const row of rows) {
    w.string(row.tenant);
    w.uint64(BigInt(row.fingerprint));
    w.int64(BigInt(row.timeMs));
    w.float64(row.value);
    w.string(row.batchId);
  }
  return w.buffer();
}
