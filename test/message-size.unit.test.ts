import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fitMessages, splitPayload, UndeliverableError } from "../collector/shipper/message-size.js";
import { batchId, nodeOfPart } from "../proto/batch.js";
import { decodeBatch, encodeBatch } from "../proto/codec.js";
import { makeBatch } from "./helpers/batches.js";

// Batches fitted into a topic's max.message.bytes (collector/shipper/message-size.ts): pieces that together carry
// every row once, in order, each piece within the limit, under ids that are the same on every replay.

describe("fitting batches into max.message.bytes", () => {
  const batch = makeBatch({ streams: 3, entriesPerStream: 40, lineBytes: 300, series: 3, pointsPerSeries: 20 });
  const frame = encodeBatch(batch);

  it("cuts a batch into pieces within the limit that carry every row once, in order, with the series' previous samples", () => {
    const maxBytes = Math.ceil(frame.length / 5);
    const pieces = splitPayload(frame, maxBytes);
    assert.ok(pieces.length >= 5, `${pieces.length} pieces`);
    for (const piece of pieces) assert.ok(piece.length <= maxBytes, `${piece.length} > ${maxBytes}`);
    const decoded = pieces.map((p) => decodeBatch(p));
    assert.equal(new Set(decoded.map((b) => batchId(b))).size, pieces.length, "each piece an id of its own");
    for (const piece of decoded) assert.equal(nodeOfPart(piece.nodeId), batch.nodeId);
    const lines = (b: typeof batch) =>
      b.streams.flatMap((s) => s.entries.map((e) => `${s.labels["service"]} ${e.line}`));
    assert.deepEqual(decoded.flatMap(lines), lines(batch));
    assert.deepEqual(
      decoded.flatMap((b) => b.series.flatMap((s) => s.points.map((p) => `${s.name} ${p.timeUnixMs} ${p.value}`))),
      batch.series.flatMap((s) => s.points.map((p) => `${s.name} ${p.timeUnixMs} ${p.value}`)),
    );
    // A piece that starts inside a series carries the point before it as the series' previous sample.
    const key = (s: { name: string; labels: object }) => `${s.name}${JSON.stringify(s.labels)}`;
    for (const piece of decoded)
      for (const s of piece.series) {
        const whole = batch.series.find((w) => key(w) === key(s))!;
        const at = whole.points.findIndex((p) => p.timeUnixMs === s.points[0]!.timeUnixMs);
        assert.deepEqual(s.previous, at === 0 ? whole.previous : whole.points[at - 1]);
      }
    assert.deepEqual(splitPayload(frame, maxBytes), pieces, "cut the same way every time");
  });

  it("groups records so that each produce request fits, and refuses a row that cannot fit alone", () => {
    const records = [1, 2, 3, 4].map((sequence) => ({ sequence, payload: encodeBatch({ ...batch, sequence }) }));
    const limit = frame.length * 2 + 1024;
    const groups = fitMessages(records, limit, 8, () => assert.fail("nothing undeliverable"));
    assert.deepEqual(
      groups.map((g) => g.map((m) => m.sequence)),
      [
        [1, 2],
        [3, 4],
      ],
    );
    const refused: UndeliverableError[] = [];
    const tiny = fitMessages(records.slice(0, 1), 300, 8, (err) => refused.push(err));
    assert.deepEqual(tiny, []);
    assert.equal(refused.length, 1);
    assert.match(refused[0]!.message, /max\.message\.bytes/);
  });
});
