import { type Batch, batchPart, type LogStream, type Series } from "../../proto/batch.js";
import { decodeBatch, encodeBatch } from "../../proto/codec.js";
import type { BatchRecord } from "../../common/transport.js";

// Disk-buffer records fitted into the topic's max.message.bytes, which the broker applies to each produce
// request's record batch (all the messages of one partition, with their keys and headers), not to one message.
// Records go out in groups that fit; a record larger than the limit alone (a batch written under a larger
// collector.batch.max_batch_bytes, or a topic whose limit is smaller than the collector's batches) is sent as
// pieces of its rows, halved until each fits, each under an id of its own (proto/batch.ts batchPart, `a` for
// the first half and `b` for the second, as the aggregator's poison isolation names its pieces). The same
// record is always cut the same way, so a replay sends the same pieces and the store's per-batch idempotency
// skips those it has. A single row that cannot fit is refused: no retry could deliver it.

/** Bytes of a record batch besides its records' values: batch header, and per record its framing and header. */
const BATCH_OVERHEAD = 128;
const RECORD_OVERHEAD = 96;

export class UndeliverableError extends Error {
  override readonly name = "UndeliverableError";
}

export interface Message {
  value: Buffer;
  sequence: number;
}

/**
 * `records` as groups of messages, each group within `maxMessageBytes` as one record batch with keys of
 * `keyBytes`; a record with a row that cannot fit is left out and told to `onUndeliverable`.
 */
export function fitMessages(
  records: BatchRecord[],
  maxMessageBytes: number,
  keyBytes: number,
  onUndeliverable: (err: UndeliverableError) => void,
): Message[][] {
  const room = maxMessageBytes - BATCH_OVERHEAD;
  const perRecord = RECORD_OVERHEAD + keyBytes;
  const groups: Message[][] = [];
  let group: Message[] = [];
  let bytes = 0;
  for (const record of records) {
    let pieces = [record.payload];
    if (record.payload.length + perRecord > room) {
      try {
        pieces = splitPayload(record.payload, room - perRecord);
      } catch (err) {
        if (!(err instanceof UndeliverableError)) throw err;
        onUndeliverable(err);
        continue;
      }
    }
    for (const value of pieces) {
      if (group.length > 0 && bytes + value.length + perRecord > room) {
        groups.push(group);
        group = [];
        bytes = 0;
      }
      group.push({ value, sequence: record.sequence });
      bytes += value.length + perRecord;
    }
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** A batch frame as frames of pieces of its rows, each at most `maxBytes`. */
export function splitPayload(payload: Buffer, maxBytes: number): Buffer[] {
  const batch = decodeBatch(payload);
  const out: Buffer[] = [];
  const cut = (rows: Rows, path: string): void => {
    const frame = encodeBatch(batchPart(batch, path, rows));
    if (frame.length <= maxBytes) {
      out.push(frame);
      return;
    }
    const halves = halve(rows);
    if (halves === undefined)
      throw new UndeliverableError(
        `batch ${batch.tenant}/${batch.nodeId}:${batch.sequence} has a row of ${frame.length} bytes as a message, more than the topic's max.message.bytes allows`,
      );
    cut(halves[0], `${path}a`);
    cut(halves[1], `${path}b`);
  };
  const halves = halve(batch);
  if (halves === undefined) cut(batch, "");
  else {
    cut(halves[0], "a");
    cut(halves[1], "b");
  }
  return out;
}

type Rows = Pick<Batch, "streams" | "series" | "metadata">;

/** The rows in two halves by count (log entries and samples alike), metadata with the first; undefined for one row. */
function halve(rows: Rows): [Rows, Rows] | undefined {
  const entries = rows.streams.reduce((n, s) => n + s.entries.length, 0);
  const points = rows.series.reduce((n, s) => n + s.points.length, 0);
  if (entries + points <= 1) return undefined;
  let left = Math.ceil((entries + points) / 2);
  const first: Rows = { streams: [], series: [], ...(rows.metadata ? { metadata: rows.metadata } : {}) };
  const second: Rows = { streams: [], series: [] };
  for (const stream of rows.streams) {
    const take = Math.min(left, stream.entries.length);
    left -= take;
    pushStream(first.streams, stream, 0, take);
    pushStream(second.streams, stream, take, stream.entries.length);
  }
  for (const series of rows.series) {
    const take = Math.min(left, series.points.length);
    left -= take;
    pushSeries(first.series, series, 0, take);
    pushSeries(second.series, series, take, series.points.length);
  }
  return [first, second];
}

function pushStream(into: LogStream[], stream: LogStream, from: number, to: number): void {
  if (to > from) into.push({ labels: stream.labels, entries: stream.entries.slice(from, to) });
}

/** Points [from, to) of a series; a later piece's previous sample is the point before it, for counter increases. */
function pushSeries(into: Series[], series: Series, from: number, to: number): void {
  if (to <= from) return;
  const previous = from === 0 ? series.previous : series.points[from - 1];
  const piece: Series = {
    name: series.name,
    labels: series.labels,
    kind: series.kind,
    points: series.points.slice(from, to),
  };
  if (previous !== undefined) piece.previous = previous;
  into.push(piece);
}
