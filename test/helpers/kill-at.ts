// Preloaded (`node --import`) into a collector process by the crash tests: SIGKILLs the process at one chosen
// point of the disk buffer's file operations, which a kill from outside hits only by chance. The point is
// BIFROST_TEST_KILL_AT=<point>:<n>, the n-th time the process gets there:
//   torn-record       half of a record written to a segment
//   segment-opened    a new segment file just created (the previous one closed)
//   cursor-written    the new cursor in cursor.tmp, not yet renamed over the cursor
//   cursor-renamed    the new cursor in place, the delivered segments not yet deleted
//   acknowledged      a 2xx answer to a push handed to the OS (the client gets it), nothing after it done
import fs from "node:fs";
import { ServerResponse } from "node:http";
import { syncBuiltinESMExports } from "node:module";

const [point = "", nth = "1"] = (process.env.BIFROST_TEST_KILL_AT ?? "").split(":");
let reached = 0;
const due = () => ++reached === Number(nth);
const die = (): never => {
  process.kill(process.pid, "SIGKILL");
  throw new Error("SIGKILL did not end the process");
};

const { openSync, closeSync, writeSync, writevSync, renameSync } = fs;
const segmentFds = new Set<number>();

fs.openSync = ((path: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
  const fd = openSync(path, flags ?? "r", mode);
  if (String(path).endsWith(".wal")) {
    segmentFds.add(fd);
    if (point === "segment-opened" && flags === "a" && due()) die();
  }
  return fd;
}) as typeof fs.openSync;

fs.closeSync = (fd: number) => {
  segmentFds.delete(fd);
  closeSync(fd);
};

// The disk buffer writes a record's header and batch with one writev; half of their bytes make the torn record.
fs.writevSync = ((fd: number, buffers: readonly NodeJS.ArrayBufferView[], position?: number) => {
  if (point === "torn-record" && segmentFds.has(fd) && due()) {
    const record = Buffer.concat(buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
    writeSync(fd, record.subarray(0, record.length >> 1));
    die();
  }
  return writevSync(fd, buffers, position);
}) as typeof fs.writevSync;

fs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
  const cursor = String(from).endsWith("cursor.tmp");
  if (point === "cursor-written" && cursor && due()) die();
  renameSync(from, to);
  if (point === "cursor-renamed" && cursor && due()) die();
}) as typeof fs.renameSync;

// An answer's bytes are in the socket once `finish` fires; the kernel still delivers them after the kill, since
// a client waiting for its answer has sent nothing more on that connection.
const { end } = ServerResponse.prototype;
ServerResponse.prototype.end = function (this: ServerResponse, ...args: unknown[]) {
  if (
    point === "acknowledged" &&
    this.statusCode >= 200 &&
    this.statusCode < 300 &&
    /push|v1\/logs/.test(this.req.url ?? "")
  )
    this.once("finish", () => {
      if (due()) die();
    });
  return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
} as typeof end;

syncBuiltinESMExports();
