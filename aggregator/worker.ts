import { move, transferableSymbol, valueSymbol } from "piscina";
import { type Batch, batchId, batchPart, type MetricMetadata, type Series } from "../proto/batch.js";
import { CodecError, decodeBatch, decodeFrame, decodeMessage, encodeBatch } from "../proto/codec.js";
import { type BatchLimits, screenBatch } from "../proto/validate.js";
import { type EncodedLogBatch, encodeLogBatch } from "../storage/log-rowbinary.js";
import type { LogBatch, RollupPartial } from "../storage/store.js";
import { encodeLogsFromWire } from "./log-wire.js";
import { rollupBatch } from "./rollup.js";

// Runs in the piscina worker threads: everything CPU-bound about one Kafka message (CRC, LZ4, protobuf,
// limits, rollups, and for a store that takes them the encoded log rows), so that the main thread only
// schedules, writes and commits.

export interface DecodeTask {
  value: Uint8Array;
  maxBatchBytes: number;
  limits: BatchLimits;
  /** Return the log rows encoded (storage/log-rowbinary.ts) instead of the decoded streams. */
  encodeLogs: boolean;
}

/** Rows of a batch refused by the limits, as a batch frame of their own (proto/batch.ts batchPart) for the dead letters. */
export interface RefusedPart {
  reason: string;
  message: string;
  id: string;
  rows: number;
  frame: Uint8Array;
}

export interface DecodedBatch {
  ok: true;
  id: string;
  tenant: string;
  /** The node that sent the batch: the HTTP endpoint checks it against the client certificate. */
  nodeId: string;
  /** The log streams, decoded or encoded as the task asked; absent when the batch has none. */
  logs?: { decoded: LogBatch } | { encoded: EncodedLogBatch };
  series: Series[];
  partials: RollupPartial[];
  /** Metric family metadata the batch carries, and when the batch was made (the time it was seen). */
  metadata: MetricMetadata[];
  createdMs: number;
  rows: number;
  /** Rows outside the limits, taken out of the batch (the rest is written): for the dead letters. */
  refused: RefusedPart[];
  decodeMs: number;
}

export type DecodeResult = DecodedBatch | { ok: false; reason: string; message: string };

/** The rows of a frame within the limits, as decode() writes them: for rewriting a batch piece by piece. */
export function validRows(frame: Uint8Array, maxBatchBytes: number, limits: BatchLimits): Batch {
  return screenBatch(decodeBatch(frame, { maxBatchBytes }), limits).valid;
}

export default function decode(task: DecodeTask): DecodeResult {
  const started = performance.now();
  try {
    const message = decodeFrame(task.value, { maxBatchBytes: task.maxBatchBytes });
    const direct = task.encodeLogs ? encodeLogsFromWire(message, task.limits) : undefined;
    const decoded = direct?.batch ?? decodeMessage(message);
    // The direct path takes the streams only when every entry passes; the rest is screened row by row.
    const { valid: batch, refused } = screenBatch(decoded, task.limits);
    if (batch.streams.length === 0 && batch.series.length === 0 && refused[0]?.error.reason === "missing_identity")
      return { ok: false, reason: "missing_identity", message: refused[0].error.message };
    const id = batchId(batch);
    let logs: DecodedBatch["logs"];
    let logRows = 0;
    if (direct?.logs) {
      logs = { encoded: direct.logs };
      logRows = direct.logs.rows;
    } else if (batch.streams.length > 0) {
      const logBatch: LogBatch = {
        id,
        tenant: batch.tenant,
        streams: batch.streams,
        createdUnixNano: batch.createdUnixNano,
      };
      logs = task.encodeLogs ? { encoded: encodeLogBatch(logBatch) } : { decoded: logBatch };
      logRows = batch.streams.reduce((n, s) => n + s.entries.length, 0);
    }
    const result: DecodeResult = {
      ok: true,
      id,
      tenant: batch.tenant,
      nodeId: batch.nodeId,
      ...(logs ? { logs } : {}),
      series: batch.series,
      partials: rollupBatch(batch.series),
      metadata: batch.metadata ?? [],
      createdMs: Number(batch.createdUnixNano / 1_000_000n),
      rows: logRows + batch.series.reduce((n, s) => n + s.points.length, 0),
      refused: refused.map(({ error, rows }) => {
        const part = batchPart(decoded, error.reason, rows);
        return {
          reason: error.reason,
          message: error.message,
          id: batchId(part),
          rows:
            rows.streams.reduce((n, s) => n + s.entries.length, 0) +
            rows.series.reduce((n, s) => n + s.points.length, 0) +
            (rows.metadata?.length ?? 0),
          frame: encodeBatch(part, { maxBatchBytes: task.maxBatchBytes }),
        };
      }),
      decodeMs: performance.now() - started,
    };
    // The encoded rows move to the main thread instead of being copied.
    if (logs === undefined || !("encoded" in logs)) return result;
    return move({
      [transferableSymbol]: [logs.encoded.buffer.buffer],
      [valueSymbol]: result,
    }) as unknown as DecodeResult;
  } catch (err) {
    if (err instanceof CodecError) return { ok: false, reason: err.kind, message: err.message };
    return { ok: false, reason: "internal", message: (err as Error).message };
  }
}
