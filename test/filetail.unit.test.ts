import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Batcher } from "../collector/buffer/batcher.js";
import { FileTail, type FileSource } from "../collector/receivers/files/receiver.js";
import { utf8Prefix } from "../collector/receivers/files/tailed-file.js";
import { Wal } from "../collector/buffer/wal.js";
import { labelsOf } from "../proto/labels.js";
import { decodeBatch } from "../proto/codec.js";
import { waitFor } from "./helpers/wait.js";

interface Got {
  filename: string;
  line: string;
  ns: bigint;
  labels: Record<string, string>;
}

interface Setup {
  dir: string;
  wal: Wal;
  start: (source?: Partial<FileSource>) => FileTail;
  /** Every entry in the disk buffer after its cursor, in the order written. */
  got: () => Got[];
  lines: () => string[];
  events: { rotations: string[]; truncated: number; watched: number; pauses: boolean[]; lines: number };
}

function setup(
  overrides: {
    walBytes?: number;
    segmentBytes?: number;
    maxLineBytes?: number;
    maxReadBytes?: number;
    rotateWaitMs?: number;
  } = {},
): Setup {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-tail-"));
  const logs = join(dir, "logs");
  mkdirSync(logs);
  const wal = Wal.open({
    dir: join(dir, "wal"),
    maxBytes: overrides.walBytes ?? 64 << 20,
    segmentBytes: overrides.segmentBytes ?? 1 << 20,
    fsync: "never",
    whenFull: "block",
  });
  const batcher = new Batcher({
    node: { id: "edge-1", site: "", region: "" },
    wal,
    maxEntries: 10_000,
    maxBytes: 1 << 20,
    maxAgeMs: 5,
    maxBatchBytes: 3 << 20,
  });
  const events = { rotations: [] as string[], truncated: 0, watched: 0, pauses: [] as boolean[], lines: 0 };
  const start = (source: Partial<FileSource> = {}) => {
    const tail = new FileTail({
      sources: [
        {
          paths: [join(logs, "*.log")],
          exclude: [],
          labels: labelsOf([["job", "app"]]),
          tenant: "acme",
          encoding: "utf8",
          ...source,
        },
      ],
      batcher,
      positionsFile: join(dir, "wal", "file-positions.json"),
      pollMs: 20,
      syncMs: 50,
      rotateWaitMs: overrides.rotateWaitMs ?? 300,
      maxLineBytes: overrides.maxLineBytes ?? 1024,
      maxReadBytes: overrides.maxReadBytes ?? 1 << 20,
      onRotation: (kind) => events.rotations.push(kind),
      onTruncatedLine: () => events.truncated++,
      onWatched: (n) => (events.watched = n),
      onPaused: (paused) => events.pauses.push(paused),
      onLines: (_, n) => (events.lines += n),
    });
    tail.start();
    return tail;
  };
  const got = () =>
    wal.read(1_000_000).flatMap((record) =>
      decodeBatch(record.payload).streams.flatMap((stream) =>
        stream.entries.map((entry) => ({
          filename: stream.labels["filename"]!,
          line: entry.line,
          ns: entry.timeUnixNano,
          labels: { ...stream.labels },
        })),
      ),
    );
  return { dir: logs, wal, start, got, lines: () => got().map((g) => g.line), events };
}

const numbered = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}-${from + i}`);
const text = (lines: string[]) => lines.map((line) => `${line}\n`).join("");

function assertExactlyOnce(got: string[], expected: string[]): void {
  const counts = new Map<string, number>();
  for (const line of got) counts.set(line, (counts.get(line) ?? 0) + 1);
  assert.deepEqual(
    [...counts].filter(([, n]) => n > 1),
    [],
    "no line twice",
  );
  assert.deepEqual(
    expected.filter((line) => !counts.has(line)),
    [],
    "no line lost",
  );
  assert.equal(got.length, expected.length);
}

describe("file tail", () => {
  it("reads appended lines with filename and configured labels, waits for a line's newline, and finds new files matching the glob", async () => {
    const t = setup();
    const a = join(t.dir, "a.log");
    writeFileSync(a, "one\ntwo\r\n");
    const tail = t.start({ exclude: [join(t.dir, "skip-*.log")] });
    await waitFor("the first lines", () => t.lines().length === 2);
    appendFileSync(a, "three\nfou");
    await waitFor("the third line", () => t.lines().includes("three"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(!t.lines().some((line) => line.startsWith("fou")), "an unterminated line is not a line yet");
    appendFileSync(a, "r\n");
    writeFileSync(join(t.dir, "b.log"), "bee\n");
    writeFileSync(join(t.dir, "c.txt"), "not matched\n");
    writeFileSync(join(t.dir, "skip-me.log"), "excluded\n");
    await waitFor("the new file", () => t.lines().includes("bee") && t.lines().includes("four"));
    await tail.stop();
    const got = t.got();
    assert.deepEqual(
      got.filter((g) => g.filename === a).map((g) => g.line),
      ["one", "two", "three", "four"],
    );
    assert.deepEqual(got.find((g) => g.line === "bee")!.labels, {
      job: "app",
      filename: join(t.dir, "b.log"),
      node: "edge-1",
    });
    assert.ok(!t.lines().includes("not matched") && !t.lines().includes("excluded"));
    const stamps = got.filter((g) => g.filename === a).map((g) => g.ns);
    assert.ok(
      stamps.every((ns, i) => i === 0 || ns > stamps[i - 1]!),
      "read times increase within a file",
    );
    assert.ok(
      Math.abs(Number(stamps[0]! / 1_000_000n) - Date.now()) < 60_000,
      "stamped with the read time in nanoseconds",
    );
    assert.equal(t.events.lines, 5);
  });

  it("follows a rename rotation: reads the old file to its end, then the new one, with no line lost or doubled", async () => {
    const t = setup();
    const app = join(t.dir, "app.log");
    writeFileSync(app, text(numbered("old", 1, 100)));
    const tail = t.start();
    await waitFor("the first 100 lines", () => t.lines().length === 100);
    renameSync(app, join(t.dir, "app.log.1"));
    appendFileSync(join(t.dir, "app.log.1"), text(numbered("old", 101, 150))); // the writer still has the old file open
    writeFileSync(app, text(numbered("new", 1, 50)));
    appendFileSync(join(t.dir, "app.log.1"), text(numbered("old", 151, 160)));
    await waitFor("every line", () => t.lines().length >= 210);
    await waitFor("the rotated file closed", () => t.events.watched === 1);
    appendFileSync(app, text(numbered("new", 51, 60)));
    await waitFor("lines after the rotation", () => t.lines().length >= 220);
    await tail.stop();
    assertExactlyOnce(t.lines(), [...numbered("old", 1, 160), ...numbered("new", 1, 60)]);
    assert.deepEqual(
      t.lines().filter((l) => l.startsWith("old")),
      numbered("old", 1, 160),
      "in order",
    );
    assert.ok(
      t.got().every((g) => g.filename === app),
      "the rotated file's lines keep the stream of its first name",
    );
    assert.ok(t.events.rotations.includes("rename"));
  });

  it("keeps tailing a rotated file under a name the glob matches too, without reading it again", async () => {
    const t = setup();
    const app = join(t.dir, "app.log");
    writeFileSync(app, text(numbered("old", 1, 20)));
    const tail = t.start({ paths: [join(t.dir, "app.log*")] });
    await waitFor("the first lines", () => t.lines().length === 20);
    renameSync(app, join(t.dir, "app.log.1"));
    writeFileSync(app, text(numbered("new", 1, 5)));
    appendFileSync(join(t.dir, "app.log.1"), text(numbered("old", 21, 25)));
    await waitFor("every line", () => t.lines().length >= 30);
    await new Promise((resolve) => setTimeout(resolve, 500)); // several polls and glob expansions later
    await tail.stop();
    assertExactlyOnce(t.lines(), [...numbered("old", 1, 25), ...numbered("new", 1, 5)]);
  });

  it("starts again at offset 0 after a copy-truncate, also when the file is rewritten past the old offset between two polls", async () => {
    const t = setup();
    const app = join(t.dir, "app.log");
    writeFileSync(app, text(numbered("before", 1, 10)));
    const tail = t.start();
    await waitFor("the first lines", () => t.lines().length === 10);
    truncateSync(app, 0);
    await waitFor("the truncation noticed", () => t.events.rotations.includes("truncate"));
    appendFileSync(app, text(numbered("after", 1, 3)));
    await waitFor("lines after the truncation", () => t.lines().length === 13);
    // Truncated and refilled beyond the old size before the next poll: the first bytes tell.
    writeFileSync(app, text(numbered("rewritten", 1, 20)));
    await waitFor("the rewritten file", () => t.lines().length === 33);
    await tail.stop();
    assertExactlyOnce(t.lines(), [
      ...numbered("before", 1, 10),
      ...numbered("after", 1, 3),
      ...numbered("rewritten", 1, 20),
    ]);
    assert.equal(t.events.rotations.filter((k) => k === "truncate").length, 2);
  });

  it("resumes from the saved positions after a restart, including a file rotated while it was stopped, with no loss and no duplicates", async () => {
    const t = setup();
    const app = join(t.dir, "app.log");
    const other = join(t.dir, "other.log");
    writeFileSync(app, text(numbered("a", 1, 50)));
    writeFileSync(other, text(numbered("o", 1, 5)));
    let tail = t.start();
    await waitFor("the first lines", () => t.lines().length === 55);
    appendFileSync(app, "a-51 partial");
    await new Promise((resolve) => setTimeout(resolve, 100));
    await tail.stop();
    appendFileSync(app, " and its end\n" + text(numbered("a", 52, 60)));
    appendFileSync(other, text(numbered("o", 6, 10)));
    tail = t.start();
    await waitFor("the lines written while stopped", () => t.lines().length >= 70);
    await tail.stop();
    // Stopped again, the file is rotated and both old and new file are written.
    appendFileSync(app, text(numbered("a", 61, 70)));
    renameSync(app, join(t.dir, "app.log.1"));
    appendFileSync(join(t.dir, "app.log.1"), text(numbered("a", 71, 75)));
    writeFileSync(app, text(numbered("b", 1, 10)));
    tail = t.start();
    await waitFor("the rest of the rotated file and the new one", () => t.lines().length >= 95);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await tail.stop();
    const expected = [
      ...numbered("a", 1, 50),
      "a-51 partial and its end",
      ...numbered("a", 52, 75),
      ...numbered("o", 1, 10),
      ...numbered("b", 1, 10),
    ];
    assertExactlyOnce(t.lines(), expected);
  });

  it("reads a file from its start when its inode was reused: the saved position's fingerprint does not match", async () => {
    const t = setup();
    const app = join(t.dir, "app.log");
    writeFileSync(app, text(numbered("new", 1, 3)));
    const { dev, ino } = statSync(app, { bigint: true });
    const position = { path: app, filename: app, dev: String(dev), ino: String(ino), offset: 6 };
    const positionsFile = join(t.dir, "..", "wal", "file-positions.json");
    // A deleted file that had this inode, read up to offset 6, with other first bytes.
    writeFileSync(
      positionsFile,
      JSON.stringify({ version: 1, files: [{ ...position, fingerprint: "deadbeef", fingerprintBytes: 6 }] }),
    );
    let tail = t.start();
    await waitFor("the lines", () => t.lines().length >= 3);
    await tail.stop();
    assert.deepEqual(t.lines(), numbered("new", 1, 3));
    // The same inode with the same first bytes is the same file: resumed where it was.
    appendFileSync(app, "new-4\n");
    tail = t.start();
    await waitFor("the appended line", () => t.lines().length >= 4);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await tail.stop();
    assert.deepEqual(t.lines(), numbered("new", 1, 4));
  });

  it("joins multi-line events such as Java stack traces, and flushes the last one after the timeout", async () => {
    const t = setup();
    const app = join(t.dir, "app.log");
    const multiline = { startPattern: /^\d{4}-\d\d-\d\d /, maxLines: 4, timeoutMs: 300 };
    writeFileSync(
      app,
      "orphan continuation\n2026-11-28 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.acme.Api.handle(Api.java:42)\n",
    );
    const tail = t.start({ multiline });
    appendFileSync(app, "\tat com.acme.Server.run(Server.java:7)\n2026-11-28 INFO next request\n");
    await waitFor("the stack trace joined", () => t.lines().length >= 2);
    assert.deepEqual(t.lines().slice(0, 2), [
      "orphan continuation",
      "2026-11-28 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.acme.Api.handle(Api.java:42)\n\tat com.acme.Server.run(Server.java:7)",
    ]);
    await waitFor("the last event after the timeout", () => t.lines().length === 3);
    assert.equal(t.lines()[2], "2026-11-28 INFO next request");
    appendFileSync(app, text(["2026-11-28 WARN long", "c1", "c2", "c3", "c4", "c5"]));
    await waitFor("an event cut at max_lines", () => t.lines().length === 5);
    await tail.stop();
    assert.deepEqual(t.lines().slice(3), ["2026-11-28 WARN long\nc1\nc2\nc3", "c4\nc5"]);
  });

  it("truncates long lines to the limit at a character boundary and counts them", async () => {
    const t = setup({ maxLineBytes: 100 });
    const app = join(t.dir, "app.log");
    const long = "x".repeat(250_000);
    writeFileSync(app, `${long}\nshort\n${"y".repeat(99)}é and more\n${"z".repeat(100)}\n`);
    const tail = t.start({ multiline: undefined });
    await waitFor("every line", () => t.lines().length === 4);
    await tail.stop();
    assert.deepEqual(t.lines(), ["x".repeat(100), "short", "y".repeat(99), "z".repeat(100)]);
    assert.equal(t.events.truncated, 2);
    assert.equal(utf8Prefix(Buffer.from("ab€"), 4).toString(), "ab");
    assert.equal(utf8Prefix(Buffer.from("ab€"), 5).toString(), "ab€");
    assert.equal(utf8Prefix(Buffer.from("a😀"), 4).toString(), "a");
    assert.equal(utf8Prefix(Buffer.from("a😀").subarray(0, 3), 10).toString(), "a", "a character cut before the limit");
  });

  it("pauses while the disk buffer is full under `block`, and resumes without loss once the shipper frees it", async () => {
    const t = setup({ walBytes: 16 << 10, segmentBytes: 2 << 10, maxReadBytes: 1 << 10 });
    const app = join(t.dir, "app.log");
    const expected = Array.from(
      { length: 400 },
      (_, i) => `${String(i).padStart(3, "0")} ${randomBytes(20).toString("hex")}`,
    );
    writeFileSync(app, text(expected));
    const tail = t.start();
    await waitFor("the tail paused", () => tail.isPaused);
    const buffered = t.lines().length;
    assert.ok(buffered > 0 && buffered < 400, `${buffered} lines fit`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(t.lines().length, buffered, "nothing more is read while paused");
    // Play the shipper: deliver what is buffered, advance the cursor, and the tail goes on.
    const delivered: string[] = [];
    await waitFor(
      "every line delivered",
      () => {
        const records = t.wal.read(1000);
        for (const record of records)
          for (const stream of decodeBatch(record.payload).streams)
            delivered.push(...stream.entries.map((e) => e.line));
        if (records.length > 0) t.wal.advance(records.at(-1)!.sequence);
        return delivered.length >= 400;
      },
      30_000,
    );
    await waitFor("the tail resumed", () => !tail.isPaused);
    await tail.stop();
    assert.deepEqual(delivered, expected, "every line once, in order");
    assert.deepEqual(t.events.pauses.slice(0, 2), [true, false]);
  });

  it("forgets the position of a deleted file after reading it to its end", async () => {
    const t = setup({ rotateWaitMs: 100 });
    const app = join(t.dir, "gone.log");
    writeFileSync(app, text(numbered("g", 1, 3)));
    const tail = t.start();
    await waitFor("the lines", () => t.lines().length === 3);
    appendFileSync(app, "last words\n");
    rmSync(app);
    await waitFor("the file closed", () => t.events.watched === 0);
    await tail.stop();
    assert.deepEqual(t.lines(), [...numbered("g", 1, 3), "last words"]);
  });
});
