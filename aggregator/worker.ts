import { type Batch, batchId } from "../proto/batch.js";
import { CodecError, decodeBatch } from "../proto/codec.js";
import { type BatchLimits, validateBatch, ValidationError } from "../proto/validate.js";
import type { RollupPartial } from "../storage/store.js";
import { rollupBatch } from "./rollup.js";

// Runs in the piscina worker threads: everything CPU-bound about one Kafka message (CRC, LZ4, protobuf,
// limits, rollups), so that the main thread only schedules, writes and commits.

export interface DecodeTask {
  value: Uint8Array;
  maxBatchBytes: number;
  limits: BatchLimits;
}

export type DecodeResult =
  | { ok: true; id: string; batch: Batch; partials: RollupPartial[]; decodeMs: number }
  | { ok: false; reason: string; message: string };

export default function decode(task: DecodeTask): DecodeResult {
  const started = performance.now();
  try {
    const batch = decodeBatch(task.value, { maxBatchBytes: task.maxBatchBytes });
    validateBatch(batch, task.limits);
    return { ok: true, id: batchId(batch), batch, partials: rollupBatch(batch.series), decodeMs: performance.now() - started };
  } catch (err) {
    if (err instanceof CodecError) return { ok: false, reason: err.kind, message: err.message };
    if (err instanceof ValidationError) return { ok: false, reason: err.reason, message: err.message };
    return { ok: false, reason: "internal", message: (err as Error).message };
  }
}
