import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Wal, WalFullError, type WalOptions } from "../collector/buffer/wal.js";

function options(overrides: Partial<WalOptions> = {}): WalOptions {
  return {
    dir: mkdtempSync(join(tmpdir(), "bifrost-wal-")),
    maxBytes: 1 << 20,
    segmentBytes: 4096,
    fsync: "always",
    whenFull: "block",
    ...overrides,
  };
}

const payload = (i: number, size = 100) => Buffer.from(`batch-${i}-`.padEnd(size, "x"));
const segments = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".wal"))
    .sort();

describe("collector disk buffer (WAL)", () => {
  it("returns appended records in order from the cursor, across segments and restarts", () => {
    const opts = options();
    const wal = Wal.open(opts);
    for (let i = 1; i <= 100; i++) assert.equal(wal.append(payload(i)), i);
    assert.ok(segments(opts.dir).length > 1, "rolled over to several segments");
    assert.deepEqual(
      wal.read(3).map((r) => [r.sequence, r.payload.toString()]),
      [1, 2, 3].map((i) => [i, payload(i).toString()]),
    );
    wal.advance(40);
    wal.close();

    const reopened = Wal.open(opts);
    assert.equal(reopened.pending(), 60);
    const rest = reopened.read(1000);
    assert.deepEqual(
      rest.map((r) => r.sequence),
      Array.from({ length: 60 }, (_, i) => i + 41),
    );
    assert.ok(rest.every((r) => r.payload.equals(payload(r.sequence))));
    assert.equal(reopened.append(payload(101)), 101, "sequences continue after a restart");
    reopened.close();
  });

  it("deletes segments once everything in them is delivered, and keeps the cursor across restarts", () => {
    const opts = options();
    const wal = Wal.open(opts);
    for (let i = 1; i <= 100; i++) wal.append(payload(i));
    const before = segments(opts.dir).length;
    wal.advance(100);
    assert.ok(segments(opts.dir).length < before);
    assert.equal(wal.pending(), 0);
    wal.close();
    assert.equal(readFileSync(join(opts.dir, "cursor"), "utf8").trim(), "100");
    const reopened = Wal.open(opts);
    assert.deepEqual(reopened.read(10), []);
    reopened.close();
  });

  it("truncates a torn last record after a crash and keeps every whole record", () => {
    const opts = options({ segmentBytes: 1 << 20 });
    const wal = Wal.open(opts);
    for (let i = 1; i <= 10; i++) wal.append(payload(i));
    wal.close();
    const file = join(opts.dir, segments(opts.dir).at(-1)!);
    const whole = statSync(file).size;
    appendFileSync(file, Buffer.from([200, 0, 0, 0, 1, 2, 3])); // a record header cut short by the crash
    const reopened = Wal.open(opts);
    assert.deepEqual(
      reopened.read(100).map((r) => r.sequence),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.equal(statSync(file).size, whole, "the torn tail is gone");
    assert.equal(reopened.append(payload(11)), 11);
    reopened.close();

    const newest = join(opts.dir, segments(opts.dir).at(-1)!);
    truncateSync(newest, statSync(newest).size - 5); // record 11's payload cut short
    const again = Wal.open(opts);
    assert.deepEqual(
      again.read(100).map((r) => r.sequence),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    again.close();
  });

  it("recovers every record around a corrupt one, counts that one, and keeps the damaged segment for inspection", () => {
    const drops: { reason: string; records: number }[] = [];
    const opts = options({ onDrop: (e) => drops.push(e) });
    const wal = Wal.open(opts);
    for (let i = 1; i <= 100; i++) wal.append(payload(i));
    wal.close();
    const victim = join(opts.dir, segments(opts.dir)[1]!);
    const bytes = readFileSync(victim);
    bytes[bytes.length >> 1]! ^= 0xff;
    writeFileSync(victim, bytes);
    const reopened = Wal.open(opts);
    assert.equal(drops.length, 1);
    assert.equal(drops[0]!.reason, "corrupt_segment");
    assert.equal(drops[0]!.records, 1);
    assert.ok(readdirSync(opts.dir).some((f) => f.endsWith(".wal.corrupt")));
    const sequences = reopened.read(1000).map((r) => r.sequence);
    assert.equal(sequences.length, 99, "every other record survives");
    assert.equal(new Set(sequences).size, 99);
    reopened.close();
  });

  it("refuses appends when the disk budget is full under policy block, and takes them again after delivery", () => {
    const opts = options({ maxBytes: 8192, segmentBytes: 2048 });
    const wal = Wal.open(opts);
    let accepted = 0;
    assert.throws(() => {
      for (;;) {
        wal.append(payload(accepted + 1, 500));
        accepted++;
      }
    }, WalFullError);
    assert.ok(wal.bytes() <= opts.maxBytes);
    assert.equal(wal.pending(), accepted);
    wal.advance(accepted);
    assert.equal(wal.append(payload(999, 500)), accepted + 1);
    assert.throws(() => wal.append(Buffer.alloc(9000)), WalFullError, "a batch larger than the whole budget");
    wal.close();
  });

  it("drops whole oldest segments under policy drop_oldest, counting what was never delivered", () => {
    const drops: { reason: string; records: number }[] = [];
    const opts = options({ maxBytes: 8192, segmentBytes: 2048, whenFull: "drop_oldest", onDrop: (e) => drops.push(e) });
    const wal = Wal.open(opts);
    for (let i = 1; i <= 100; i++) wal.append(payload(i, 500));
    assert.ok(wal.bytes() <= opts.maxBytes);
    const kept = wal.read(1000).map((r) => r.sequence);
    assert.equal(kept.at(-1), 100, "the newest batches are kept");
    const dropped = drops.reduce((n, d) => n + d.records, 0);
    assert.equal(dropped + kept.length, 100, "every batch is either kept or counted as dropped");
    assert.ok(drops.every((d) => d.reason === "disk_budget"));
    wal.close();
    const reopened = Wal.open(opts);
    assert.equal(reopened.pending(), kept.length, "the dropped batches are not pending after a restart");
    assert.deepEqual(
      reopened.read(1000).map((r) => r.sequence),
      kept,
    );
    reopened.close();
  });

  it("writes under every fsync policy", () => {
    for (const fsync of ["always", "interval", "never"] as const) {
      const opts = options({ fsync, fsyncIntervalMs: 10 });
      const wal = Wal.open(opts);
      for (let i = 1; i <= 5; i++) wal.append(payload(i));
      wal.close();
      const reopened = Wal.open(opts);
      assert.equal(reopened.read(10).length, 5, fsync);
      reopened.close();
    }
  });

  it("makes records durable by group commit under policy always: one fsync at a time, shared by the records appended before it started", async () => {
    const opts = options({ segmentBytes: 1 << 20 });
    const wal = Wal.open(opts);
    for (let i = 1; i <= 5; i++) wal.append(payload(i));
    const first = Array.from({ length: 5 }, () => wal.whenDurable());
    assert.equal(wal.groupCommits, 1, "five waiters, one fsync");
    // The fsync runs off the event loop: its end is seen in a later turn, so these are appended while it runs.
    for (let i = 6; i <= 10; i++) wal.append(payload(i));
    const second = Array.from({ length: 5 }, () => wal.whenDurable());
    assert.equal(wal.groupCommits, 1, "the next fsync waits for the running one");
    await Promise.all(first);
    await Promise.all(second);
    assert.equal(wal.groupCommits, 2, "the records appended meanwhile shared the second fsync");
    await wal.whenDurable();
    assert.equal(wal.groupCommits, 2, "nothing new to make durable");
    wal.close();
    const reopened = Wal.open(opts);
    assert.deepEqual(
      reopened.read(100).map((r) => r.sequence),
      Array.from({ length: 10 }, (_, i) => i + 1),
    );
    reopened.close();
  });

  it("answers whenDurable at once under policies interval and never, whose durability is the write to the OS", async () => {
    for (const fsync of ["interval", "never"] as const) {
      const wal = Wal.open(options({ fsync }));
      wal.append(payload(1));
      await wal.whenDurable();
      assert.equal(wal.groupCommits, 0);
      wal.close();
    }
  });
});
