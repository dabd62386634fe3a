import {
  type Batch,
  batchId,
  batchPart,
  type LogStream,
  type MetricMetadata,
  type Series,
  withRows,
} from "../proto/batch.js";
import { encodeBatch } from "../proto/codec.js";
import type { BatchLimits } from "../proto/validate.js";
import type { AppendResult, Store } from "../storage/store.js";
import { StoreError } from "../storage/values.js";
import { type DeadLetter, STORE_REJECTED } from "./dead-letters.js";
import { rollupBatch } from "./rollup.js";
import { validRows } from "./worker.js";
import { appendPart, type WritePart, type WriteSource } from "./write-part.js";

// Poison isolation: a store that refuses some rows for good (a constraint, a value it cannot hold) must not
// block the rows, batches and tenants written with them. When a write fails that way, its batches are written
// again by halves, and a batch that fails alone by halves of its rows, down to the rows the store refuses, which
// become dead letters with the store's reason; everything else is written. Each signal (logs, samples) is
// isolated on its own, as each is written on its own. A piece of a batch is written under an id of its own
// (proto/batch.ts batchPart: the batch's node id suffixed with the piece's path, `a` for the first half, `b`
// for the second), which the same failure produces the same way every time: a replay after a crash writes the
// same pieces and the stores' per-batch idempotency skips those already there. Rollups are written under the
// batch's id from the samples that were written, metric family metadata after them. Transient failures and failures that are not the rows' fault
// (a missing table) are thrown, to be retried as before.

/** Whether a store error means these rows can never be written, while others can. */
export function rejectsRows(err: unknown): err is StoreError {
  return err instanceof StoreError && err.rowsRejected;
}

export interface IsolationOptions {
  store: Store;
  maxBatchBytes: number;
  limits: BatchLimits;
  /** Rollup partials the store refused for good: derived from stored samples, they are counted and logged, not dead letters. */
  onRollupsLeftOut: (partials: number, error: string) => void;
}

export interface Written {
  logs: AppendResult;
  samples: AppendResult;
  rollups: AppendResult;
}

const NONE: AppendResult = { written: 0, duplicates: 0, rows: 0 };

function sum(a: AppendResult, b: AppendResult): AppendResult {
  return { written: a.written + b.written, duplicates: a.duplicates + b.duplicates, rows: a.rows + b.rows };
}

/**
 * Writes `part` as appendPart does; when the store refuses rows of it for good, writes everything else of
 * `sources` (the part's batches as received) and returns the refused rows as dead letters. The caller makes the
 * dead letters durable before it acknowledges the batches.
 */
export async function appendIsolating(
  options: IsolationOptions,
  part: WritePart,
  sources: WriteSource[],
): Promise<{ written: Written; dead: DeadLetter[] }> {
  try {
    return { written: await appendPart(options.store, part), dead: [] };
  } catch (err) {
    if (!rejectsRows(err)) throw err;
  }
  return writeByPieces(options, sources);
}

interface Piece<Rows> {
  base: Batch;
  source: WriteSource;
  /** "" for the batch itself, else the halves taken to reach it. */
  path: string;
  rows: Rows[];
}

function pieceBatch(piece: Piece<unknown>, rows: Pick<Batch, "streams" | "series" | "metadata">): Batch {
  return piece.path === "" ? withRows(piece.base, rows) : batchPart(piece.base, piece.path, rows);
}

/** Log rows: one entry with its stream's labels. */
type LogRow = { labels: LogStream["labels"]; entry: LogStream["entries"][number] };
/** Sample rows: one point with its series. */
type SampleRow = { series: Series; point: Series["points"][number] };

function streamsOf(rows: LogRow[]): LogStream[] {
  const streams: LogStream[] = [];
  for (const { labels, entry } of rows) {
    const last = streams[streams.length - 1];
    if (last?.labels === labels) last.entries.push(entry);
    else streams.push({ labels, entries: [entry] });
  }
  return streams;
}

/** Points regrouped into their series, in order; a later piece of a series keeps the series' previous sample. */
function seriesOf(rows: SampleRow[]): Series[] {
  const series: Series[] = [];
  let from: Series | undefined;
  for (const { series: s, point } of rows) {
    const last = series[series.length - 1];
    if (last !== undefined && from === s) last.points.push(point);
    else series.push({ ...s, points: [point] });
    from = s;
  }
  return series;
}

/**
 * Writes `sources` (batches as received) piece by piece: what the store takes is written, the rows it refuses
 * for good are returned as dead letters.
 */
export async function writeByPieces(
  options: IsolationOptions,
  sources: WriteSource[],
): Promise<{ written: Written; dead: DeadLetter[] }> {
  const { store, maxBatchBytes, limits } = options;
  const batches = sources.map((source) => ({ source, batch: validRows(source.frame, maxBatchBytes, limits) }));
  const dead: DeadLetter[] = [];
  const refused = (piece: Piece<unknown>, rows: Pick<Batch, "streams" | "series" | "metadata">, err: StoreError) => {
    dead.push({
      reason: STORE_REJECTED,
      error: err.message,
      source: piece.source.origin,
      frame: encodeBatch(pieceBatch(piece, rows), { maxBatchBytes }),
      ...(piece.source.key !== undefined ? { key: piece.source.key } : {}),
      ...(piece.source.headers ? { headers: piece.source.headers } : {}),
    });
  };

  const logs = await bisect<LogRow>(
    batches
      .filter(({ batch }) => batch.streams.length > 0)
      .map(({ batch, source }) => ({
        base: batch,
        source,
        path: "",
        rows: batch.streams.flatMap((s) => s.entries.map((entry) => ({ labels: s.labels, entry }))),
      })),
    (pieces) =>
      store.appendLogs(
        pieces.map((p) => {
          const batch = pieceBatch(p, { streams: streamsOf(p.rows), series: [] });
          return { id: batchId(batch), tenant: batch.tenant, streams: batch.streams };
        }),
      ),
    (piece, err) => refused(piece, { streams: streamsOf(piece.rows), series: [] }, err),
  );

  const deadPoints = new Set<Series["points"][number]>();
  const samples = await bisect<SampleRow>(
    batches
      .filter(({ batch }) => batch.series.length > 0)
      .map(({ batch, source }) => ({
        base: batch,
        source,
        path: "",
        rows: batch.series.flatMap((series) => series.points.map((point) => ({ series, point }))),
      })),
    (pieces) =>
      store.appendSamples(
        pieces.map((p) => {
          const batch = pieceBatch(p, { streams: [], series: seriesOf(p.rows) });
          return { id: batchId(batch), tenant: batch.tenant, series: batch.series };
        }),
      ),
    (piece, err) => {
      for (const row of piece.rows) deadPoints.add(row.point);
      refused(piece, { streams: [], series: seriesOf(piece.rows) }, err);
    },
  );

  // Rollups of what was written, under each batch's own id; a partial the store refuses is left out (the samples
  // it sums are stored, and queries read them where rollups are missing).
  const rollups = await bisect<ReturnType<typeof rollupBatch>[number]>(
    batches
      .filter(({ batch }) => batch.series.length > 0)
      .map(({ batch, source }) => ({
        base: batch,
        source,
        path: "",
        rows: rollupBatch(batch.series.map((s) => ({ ...s, points: s.points.filter((p) => !deadPoints.has(p)) }))),
      })),
    (pieces) =>
      store.appendRollups(
        pieces.map((p) => ({
          id: p.path === "" ? batchId(p.base) : `${batchId(p.base)}~${p.path}`,
          tenant: p.base.tenant,
          partials: p.rows,
        })),
      ),
    (piece, err) => options.onRollupsLeftOut(piece.rows.length, `batch ${batchId(piece.base)}: ${err.message}`),
  );

  // Metric family metadata last, as in a whole write; what the store refuses of it becomes dead letters too.
  await bisect<MetricMetadata>(
    batches
      .filter(({ batch }) => (batch.metadata ?? []).length > 0)
      .map(({ batch, source }) => ({ base: batch, source, path: "", rows: batch.metadata! })),
    async (pieces) => {
      await store.appendMetadata(
        pieces.map((p) => ({
          tenant: p.base.tenant,
          seenMs: Number(p.base.createdUnixNano / 1_000_000n),
          metadata: p.rows,
        })),
      );
      return NONE;
    },
    (piece, err) => refused(piece, { streams: [], series: [], metadata: piece.rows }, err),
  );
  return { written: { logs, samples, rollups }, dead };
}

/**
 * Writes `pieces` together; when the store refuses rows for good, writes each half of them alone, and a piece
 * alone by halves of its rows, down to single rows, which go to `dead`.
 */
async function bisect<Row>(
  pieces: Piece<Row>[],
  write: (pieces: Piece<Row>[]) => Promise<AppendResult>,
  dead: (piece: Piece<Row>, err: StoreError) => void,
): Promise<AppendResult> {
  if (pieces.length === 0) return NONE;
  try {
    return await write(pieces);
  } catch (err) {
    if (!rejectsRows(err)) throw err;
    if (pieces.length > 1) {
      const middle = pieces.length >> 1;
      return sum(await bisect(pieces.slice(0, middle), write, dead), await bisect(pieces.slice(middle), write, dead));
    }
    const piece = pieces[0]!;
    if (piece.rows.length <= 1) {
      dead(piece, err);
      return NONE;
    }
    const middle = piece.rows.length >> 1;
    const half = (path: string, rows: Row[]): Piece<Row>[] => [{ ...piece, path: piece.path + path, rows }];
    return sum(
      await bisect(half("a", piece.rows.slice(0, middle)), write, dead),
      await bisect(half("b", piece.rows.slice(middle)), write, dead),
    );
  }
}
