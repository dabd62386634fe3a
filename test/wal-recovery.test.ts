import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { Wal, type WalDrop, type WalOptions } from "../collector/buffer/wal.js";
import { decodeBatch } from "../proto/codec.js";
import { CollectorProcess, consumeAll } from "./helpers/collector-process.js";
import { LinePusher } from "./helpers/line-pusher.js";
import { createTopics, deleteTopics, freePort, KAFKA_BROKERS, uniqueName } from "./helpers/services.js";
import { damageRecord, locateRecords, recordPayload, segmentFiles, type WalRecordFile } from "./helpers/wal-files.js";

// Recovery of a damaged disk buffer with exact counts: every record that survives is read back intact, and
// batches_dropped_total{reason="corrupt_segment"} (fed by onDrop) grows by exactly the records lost.

const RECORDS = 100;
const payload = (i: number) => Buffer.from(`batch-${i}-`.padEnd(100 + (i % 7), "x"));

/** A buffer of RECORDS records over several segments, and where each record lies (by sequence). */
function filledBuffer(): {
  options: WalOptions;
  drops: WalDrop[];
  truncated: object[];
  records: Map<number, WalRecordFile>;
} {
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
  return { options, drops, truncated, records: locateRecords(options.dir) };
}

/** Sequences of segment `index` (negative from the end), in order. */
function sequencesOf(records: Map<number, WalRecordFile>, dir: string, index: number): number[] {
  const file = segmentFiles(dir).at(index)!;
  return [...records].filter(([, r]) => r.file === file).map(([s]) => s);
}

function damage(records: Map<number, WalRecordFile>, sequence: number, at = 20): void {
  damageRecord(records.get(sequence)!, at);
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

// The real collector process: batches buffered while Kafka is unreachable, records damaged while it is down, then
// started against the shared broker.
describe("collector process: a damaged disk buffer at start", () => {
  it("ships every valid batch, and batches_dropped_total{reason=corrupt_segment} and the log name exactly the lost ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-wal-process-"));
    const collector = { wal: { segment_bytes: 4096 } };
    // Nothing listens on a port just found free: every batch stays in the disk buffer.
    const offline = await CollectorProcess.configure(dir, {
      nodeId: "edge-wal",
      kafka: { brokers: [`127.0.0.1:${await freePort()}`], topic: "unreachable" },
      collector,
    });
    const pusher = new LinePusher({ app: "walrec" });
    await offline.start();
    for (let i = 0; i < 40; i++) await pusher.push(offline.url, 10, `push=${i}`);
    await offline.stop("SIGKILL");

    const walDir = join(dir, "wal");
    const records = locateRecords(walDir);
    const segments = segmentFiles(walDir);
    assert.ok(segments.length >= 3, `${segments.length} segments`);
    const inSegment = (i: number) => [...records].filter(([, r]) => r.file === segments.at(i)).map(([s]) => s);
    const victims = [inSegment(1)[0]!, inSegment(1)[2]!, inSegment(-1).at(-1)!];
    const linesOf = (sequence: number) =>
      decodeBatch(recordPayload(records.get(sequence)!)).streams.flatMap((s) => s.entries.map((e) => e.line));
    const lost = new Set(victims.flatMap(linesOf));
    assert.ok(lost.size >= victims.length);
    for (const v of victims) damageRecord(records.get(v)!);

    const kafka = new Kafka({ clientId: "wal-recovery-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    const topic = uniqueName("wal_recovery");
    await createTopics(kafka, [{ topic, numPartitions: 1 }]);
    const online = await CollectorProcess.configure(dir, {
      nodeId: "edge-wal",
      kafka: { brokers: KAFKA_BROKERS, topic },
      collector,
    });
    try {
      await online.start();
      assert.equal(
        await online.metric("bifrost_collector_batches_dropped_total", 'reason="corrupt_segment"'),
        victims.length,
      );
      const reported = online.logs().filter((l) => String(l["msg"]).startsWith("corrupt records in a disk buffer"));
      assert.deepEqual(
        reported.flatMap((l) =>
          (l["sequences"] as [number, number][]).flatMap(([from, to]) =>
            Array.from({ length: to - from + 1 }, (_, i) => from + i),
          ),
        ),
        victims,
      );
      await online.drained();
      await online.stop();
      const arrived = (await consumeAll(kafka, topic)).flatMap(({ batch }) =>
        batch.streams.flatMap((s) => s.entries.map((e) => e.line)),
      );
      assert.equal(new Set(arrived).size, arrived.length, "each line once");
      assert.deepEqual(
        arrived.sort(),
        pusher.acknowledged.filter((line) => !lost.has(line)).sort(),
        "every line of an undamaged batch arrived",
      );
    } finally {
      await online.stop("SIGKILL");
      await deleteTopics(kafka, [topic]);
    }
  });
});
