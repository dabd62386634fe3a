import type { DecodedBatch } from "./worker.js";
import { type EncodedLogBatch, takesEncodedLogs } from "../storage/log-rowbinary.js";
import type { AppendResult, LogBatch, MetadataBatch, RollupBatch, SampleBatch, Store } from "../storage/store.js";
import type { DeadLetter } from "./dead-letters.js";

// What decoded batches add to one store write, and that write.

/** One batch of a write as received, to take apart when the store refuses some of its rows (isolate.ts). */
export interface WriteSource {
  frame: Uint8Array;
  /** Where it came from, for its dead letters. */
  origin: string;
  key?: DeadLetter["key"];
  headers?: DeadLetter["headers"];
}

export interface WritePart {
  /** The batches as received, to write piece by piece if the store refuses some of their rows (isolate.ts). */
  sources: WriteSource[];
  logs: LogBatch[];
  /** Logs that the workers encoded, for a store with appendEncodedLogs. */
  encodedLogs: EncodedLogBatch[];
  samples: SampleBatch[];
  rollups: RollupBatch[];
  metadata: MetadataBatch[];
  rows: number;
}

/** What decoded batches add to a store write, and the rows they carry. */
export function writePartOf(batches: readonly { result: DecodedBatch; source: WriteSource }[]): WritePart {
  const part: WritePart = { sources: [], logs: [], encodedLogs: [], samples: [], rollups: [], metadata: [], rows: 0 };
  for (const { result, source } of batches) {
    part.sources.push(source);
    const { id, tenant } = result;
    if (result.logs && "encoded" in result.logs) part.encodedLogs.push(result.logs.encoded);
    else if (result.logs) part.logs.push(result.logs.decoded);
    if (result.series.length > 0) {
      part.samples.push({ id, tenant, series: result.series });
      part.rollups.push({ id, tenant, partials: result.partials });
    }
    if (result.metadata.length > 0) part.metadata.push({ tenant, seenMs: result.createdMs, metadata: result.metadata });
    part.rows += result.rows;
  }
  return part;
}

export async function appendLogsOf(
  store: Store,
  logs: LogBatch[],
  encodedLogs: EncodedLogBatch[],
): Promise<AppendResult> {
  const decoded = await store.appendLogs(logs);
  if (encodedLogs.length === 0) return decoded;
  if (!takesEncodedLogs(store)) throw new Error("log batches arrived encoded for a store that does not take them");
  const encoded = await store.appendEncodedLogs(encodedLogs);
  return {
    written: decoded.written + encoded.written,
    duplicates: decoded.duplicates + encoded.duplicates,
    rows: decoded.rows + encoded.rows,
  };
}

/**
 * Writes a part to the store once, without retrying: for callers that report a store failure to their sender
 * (the HTTP endpoint's 503, `bifrost all`'s shipper) rather than wait it out. Raw samples go before rollups,
 * as in a flush, so that a retry after a failure between the two finds the samples stored.
 */
export async function appendPart(
  store: Store,
  part: WritePart,
): Promise<{ logs: AppendResult; samples: AppendResult; rollups: AppendResult }> {
  const logs = await appendLogsOf(store, part.logs, part.encodedLogs);
  const samples = await store.appendSamples(part.samples);
  const rollups = await store.appendRollups(part.rollups);
  await store.appendMetadata(part.metadata);
  return { logs, samples, rollups };
}
