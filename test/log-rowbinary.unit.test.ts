import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { labelsOf } from "../proto/labels.js";
import { fingerprint } from "../storage/fingerprint.js";
import { encodeLogBatch } from "../storage/log-rowbinary.js";
import type { LogBatch } from "../storage/store.js";

/** Reads RowBinary rows of the logs columns back, as ClickHouse would parse them. */
function readRows(bytes: Uint8Array) {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = 0;
  const varUInt = () => {
    let value = 0;
    for (let shift = 1; ; shift *= 128) {
      const byte = buf[at++]!;
      value += (byte & 0x7f) * shift;
      if (byte < 0x80) return value;
    }
  };
  const string = () => {
    const n = varUInt();
    at += n;
    return buf.toString("utf8", at - n, at);
  };
  const rows = [];
  while (at < buf.length) {
    const tenant = string();
    const fp = buf.readBigUInt64LE(at).toString();
    const ns = buf.readBigInt64LE(at + 8);
    at += 16;
    const line = string();
    const metadata: [string, string][] = [];
    for (let n = varUInt(); n > 0; n--) metadata.push([string(), string()]);
    const batchId = string();
    const arrival = buf.readBigInt64LE(at);
    const entry = buf.readUInt32LE(at + 8);
    at += 12;
    rows.push({ tenant, fp, ns, line, metadata, batchId, arrival, entry });
  }
  return rows;
}

const DAY_NS = 86_400_000_000_000n;
const MIDNIGHT = 20_000n * DAY_NS;

describe("encodeLogBatch", () => {
  const web = labelsOf([["job", "web"]]);
  const db = labelsOf([["job", "db"]]);
  const long = "é".repeat(300) + "🙂";
  const batch: LogBatch = {
    id: "edge-1:7",
    tenant: "fleet-ä",
    createdUnixNano: 1_700_000_000_123_456_789n,
    streams: [
      {
        labels: web,
        entries: [
          { timeUnixNano: MIDNIGHT - 2n, line: "before midnight", metadata: labelsOf([]) },
          {
            timeUnixNano: MIDNIGHT + 5n,
            line: long,
            metadata: labelsOf([
              ["trace_id", "t1"],
              ["user", "ü"],
            ]),
          },
        ],
      },
      { labels: db, entries: [{ timeUnixNano: MIDNIGHT - 1_000_000_000n, line: "", metadata: labelsOf([]) }] },
    ],
  };
  const encoded = encodeLogBatch(batch);

  it("writes one part per day, in day order, each with its rows, time range and streams", () => {
    assert.equal(encoded.rows, 3);
    assert.deepEqual(
      encoded.parts.map((p) => [p.day, p.rows, p.minNs, p.maxNs, p.streams.map((s) => s.fingerprint)]),
      [
        ["2024-10-03", 2, MIDNIGHT - 1_000_000_000n, MIDNIGHT - 2n, [fingerprint(web), fingerprint(db)]],
        ["2024-10-04", 1, MIDNIGHT + 5n, MIDNIGHT + 5n, [fingerprint(web)]],
      ],
    );
    assert.deepEqual(encoded.parts[0]!.streams[1], {
      fingerprint: fingerprint(db),
      labels: db,
      minMs: 20_000 * 86_400_000 - 1000,
      maxMs: 20_000 * 86_400_000 - 1000,
    });
  });

  it("encodes every row as RowBinary that reads back to the entry, multi-byte and long text included", () => {
    const [first, second] = encoded.parts.map((p) => readRows(encoded.buffer.subarray(p.offset, p.offset + p.length)));
    // Each row's arrival order: the batch's creation time and the entry's place in the batch, over all streams.
    const row = (labels: typeof web, ns: bigint, line: string, metadata: [string, string][], entry: number) => ({
      tenant: "fleet-ä",
      fp: fingerprint(labels),
      ns,
      line,
      metadata,
      batchId: "edge-1:7",
      arrival: 1_700_000_000_123_456_789n,
      entry,
    });
    assert.deepEqual(first, [
      row(web, MIDNIGHT - 2n, "before midnight", [], 0),
      row(db, MIDNIGHT - 1_000_000_000n, "", [], 2),
    ]);
    assert.deepEqual(second, [
      row(
        web,
        MIDNIGHT + 5n,
        long,
        [
          ["trace_id", "t1"],
          ["user", "ü"],
        ],
        1,
      ),
    ]);
  });
});
