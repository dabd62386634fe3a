import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Wal, type WalDrop, type WalOptions } from "../collector/wal.js";

// Recovery of a damaged disk buffer with exact counts: every record that survives is read back intact, and
// batches_dropped_total{reason="corrupt_segment"} (fed by onDrop) grows by exactly the records lost.

const RECORDS = 100;
const payload = (i: number) => Buffer.from(`batch-${i}-`.padEnd(100 + (i % 7), "x"));

interface Located {
  file: string;
  offset: number;
  length: number;
}

/** A buffer of RECORDS records over several segments, and where each record lies (by sequence). */
function filledBuffer(): { options: WalOptions; drops: WalDrop[]; truncated: object[]; records: Map<number, Located> } {
  const drops: WalDrop[] = [];
  const truncated: object[] = [];
  const options: WalOptions = {
    dir: mkdtempSync(join(tmpdir(), "bifrost-wal-recovery-")),
    maxBytes: 1 << 20,
    segmentBytes: 4096,
    fsync: "always",
    whenFull: "block",
    onDrop: (e) => drops.push(e),
    onTruncated: (e) => truncated.push(e),
  };
  const wal = Wal.open(options);
  for (let i = 1; i <= RECORDS; i++) assert.equal(wal.append(payload(i)), i);
  wal.close();
  return { options, drops, truncated, records: locate(options.dir) };
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".wal"))
    .sort()
    .map((f) => join(dir, f));
}

function locate(dir: string): Map<number, Located> {
  const out = new Map<number, Located>();
  for (const file of segmentFiles(dir)) {
    const buf = readFileSync(file);
    for (let pos = 0; pos < buf.length;) {
      const length = buf.readUInt32LE(pos);
      out.set(Number(buf.readBigUInt64LE(pos + 8)), { file, offset: pos, length });
      pos += 16 + length;
    }
  }
  return out;
}

/** Sequences of segment `index` (negative from the end), in order. */
function sequencesOf(records: Map<number, Located>, dir: string, index: number): number[] {
  const file = segmentFiles(dir).at(index)!;
  return [...records].filter(([, r]) => r.file === file).map(([s]) => s);
}

/** Flips one byte of a record: `at` bytes into it (0-3 length, 4-7 CRC, 8-15 sequence, 16.. payload). */
function damage(records: Map<number, Located>, sequence: number, at = 20): void {
  const record = records.get(sequence)!;
  const buf = readFileSync(record.file);
  buf[record.offset + at]! ^= 0x5a;
  writeFileSync(record.file, buf);
}

/**
 * Reopens the buffer and checks that exactly `lost` are counted and gone, and `torn` (never acknowledged) gone
 * uncounted: the rest is read back whole, in order.
 */
function recoverExactly(
  buffer: ReturnType<typeof filledBuffer>,
  lost: number[],
  torn: number[] = [],
): { wal: Wal; corruptDrops: number } {
  const wal = Wal.open(buffer.options);
  const read = wal.read(1000);
  const expected = Array.from({ length: RECORDS }, (_, i) => i + 1).filter(
    (s) => !lost.includes(s) && !torn.includes(s),
  );
  assert.deepEqual(
    read.map((r) => r.sequence),
    expected,
  );
  for (const record of read) assert.ok(record.payload.equals(payload(record.sequence)), `record ${record.sequence}`);
  assert.equal(wal.pending(), expected.length);
  const corrupt = buffer.drops.filter((d) => d.reason === "corrupt_segment");
  const corruptDrops = corrupt.reduce((n, d) => n + d.records, 0);
  assert.equal(corruptDrops, lost.length, "batches_dropped_total{reason=corrupt_segment} counts every lost record");
  assert.deepEqual(
    corrupt.flatMap((d) =>
      d.sequences!.flatMap(([from, to]) => Array.from({ length: to - from + 1 }, (_, i) => from + i)),
    ),
    lost,
  );
  return { wal, corruptDrops };
}

/** Reopens once more: nothing is counted again, and the same records are there. */
function reopenedUnchanged(buffer: ReturnType<typeof filledBuffer>, wal: Wal): void {
  const before = wal.read(1000).map((r) => r.sequence);
  wal.close();
  const drops = buffer.drops.length;
  const again = Wal.open(buffer.options);
  assert.equal(buffer.drops.length, drops, "a damaged segment is reported once, not at every start");
  assert.deepEqual(
    again.read(1000).map((r) => r.sequence),
    before,
  );
  again.close();
}

describe("disk buffer recovery counts exactly", () => {
  for (const [segment, index] of [
    ["first", 0],
    ["middle", 1],
    ["last", -1],
  ] as const) {
    for (const where of ["start", "middle", "end"] as const) {
      it(`a corrupt record at the ${where} of the ${segment} segment: that record counted, every other recovered`, () => {
        const buffer = filledBuffer();
        assert.ok(segmentFiles(buffer.options.dir).length >= 3);
        const inSegment = sequencesOf(buffer.records, buffer.options.dir, index);
        const victim =
          where === "start" ? inSegment[0]! : where === "end" ? inSegment.at(-1)! : inSegment[inSegment.length >> 1]!;
        damage(buffer.records, victim);
        const { wal } = recoverExactly(buffer, [victim]);
        assert.equal(buffer.truncated.length, 0, "corruption is not a torn tail");
        assert.ok(
          readdirSync(buffer.options.dir).some((f) => f.endsWith(".wal.corrupt")),
          "the original kept for inspection",
        );
        reopenedUnchanged(buffer, wal);
      });
    }
  }

  it("several bad records, adjacent and apart, in every segment: each counted once", () => {
    const buffer = filledBuffer();
    const { dir } = buffer.options;
    const first = sequencesOf(buffer.records, dir, 0);
    const middle = sequencesOf(buffer.records, dir, 1);
    const last = sequencesOf(buffer.records, dir, -1);
    const victims = [first.at(-1)!, middle[3]!, middle[4]!, middle[5]!, last[0]!, last.at(-2)!, last.at(-1)!];
    for (const v of victims) damage(buffer.records, v);
    const { wal } = recoverExactly(buffer, victims);
    reopenedUnchanged(buffer, wal);
  });

  it("a damaged length, CRC or sequence field: the scan finds the next record again", () => {
    const buffer = filledBuffer();
    const middle = sequencesOf(buffer.records, buffer.options.dir, 1);
    // A length grown past the end of the file, a CRC and a sequence that no longer match.
    damage(buffer.records, middle[2]!, 3);
    damage(buffer.records, middle[6]!, 5);
    damage(buffer.records, middle[9]!, 9);
    const { wal } = recoverExactly(buffer, [middle[2]!, middle[6]!, middle[9]!]);
    reopenedUnchanged(buffer, wal);
  });

  it("a whole segment of garbage: all of its records counted", () => {
    const buffer = filledBuffer();
    const { dir } = buffer.options;
    const middle = sequencesOf(buffer.records, dir, 1);
    const file = segmentFiles(dir)[1]!;
    writeFileSync(file, Buffer.alloc(statSync(file).size, 0xab));
    const { wal } = recoverExactly(buffer, middle);
    reopenedUnchanged(buffer, wal);
  });

  it("a torn last record is cut away and logged, not counted; a corrupt one before it is counted", () => {
    const buffer = filledBuffer();
    const last = buffer.records.get(RECORDS)!;
    const buf = readFileSync(last.file);
    writeFileSync(last.file, buf.subarray(0, last.offset + 16 + (last.length >> 1)));
    const corrupt = RECORDS - 3;
    damage(buffer.records, corrupt);
    const { wal } = recoverExactly(buffer, [corrupt], [RECORDS]);
    assert.deepEqual(buffer.truncated, [{ file: last.file, offset: last.offset, bytes: 16 + (last.length >> 1) }]);
    reopenedUnchanged(buffer, wal);
  });

  it("a torn tail alone: every whole record kept, nothing counted, new records continue after it", () => {
    const buffer = filledBuffer();
    const last = buffer.records.get(RECORDS)!;
    // The crash extended the file with zeros that were never written (some file systems do): a header of zeros.
    writeFileSync(last.file, Buffer.concat([readFileSync(last.file), Buffer.alloc(40)]));
    const wal = Wal.open(buffer.options);
    assert.equal(wal.read(1000).length, RECORDS);
    assert.equal(buffer.drops.length, 0);
    assert.equal(buffer.truncated.length, 1);
    assert.equal(wal.append(payload(RECORDS + 1)), RECORDS + 1);
    wal.close();
  });

  it("records lost at the end of the buffer: their sequences are not handed out again", () => {
    const buffer = filledBuffer();
    damage(buffer.records, RECORDS - 1);
    damage(buffer.records, RECORDS);
    const { wal } = recoverExactly(buffer, [RECORDS - 1, RECORDS]);
    assert.equal(wal.append(payload(RECORDS + 1)), RECORDS + 1);
    assert.equal(wal.pending(), RECORDS - 1);
    wal.close();
    const again = Wal.open(buffer.options);
    assert.deepEqual(
      again.read(1000).map((r) => r.sequence),
      [...Array.from({ length: RECORDS - 2 }, (_, i) => i + 1), RECORDS + 1],
    );
    again.close();
  });

  it("damage among records already delivered is reported but loses nothing", () => {
    const buffer = filledBuffer();
    const middle = sequencesOf(buffer.records, buffer.options.dir, 1);
    const wal = Wal.open(buffer.options);
    wal.advance(middle[5]!);
    wal.close();
    damage(buffer.records, middle[2]!);
    damage(buffer.records, middle[8]!);
    const reopened = Wal.open(buffer.options);
    assert.deepEqual(
      reopened.read(1000).map((r) => r.sequence),
      Array.from({ length: RECORDS - middle[5]! }, (_, i) => middle[5]! + 1 + i).filter((s) => s !== middle[8]),
    );
    const corrupt = buffer.drops.filter((d) => d.reason === "corrupt_segment");
    assert.equal(corrupt.length, 1);
    assert.equal(corrupt[0]!.records, 1, "only the undelivered record counts");
    assert.deepEqual(corrupt[0]!.sequences, [[middle[8]!, middle[8]!]]);
    reopened.close();
  });
});
