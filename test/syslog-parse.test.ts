import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { describe, it } from "node:test";
import { FrameDecoder, FramingError } from "../collector/receivers/syslog/framing.js";
import { syslogEntry } from "../collector/receivers/syslog/message.js";
import { parseSyslog } from "../collector/receivers/syslog/parse.js";
import { rfc3339Nanos } from "../common/rfc3339.js";

const ns = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;

describe("syslog messages", () => {
  it("reads RFC 5424's examples: header fields, NILVALUEs, structured data, BOM", () => {
    const m1 = parseSyslog(
      "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \uFEFF'su root' failed for lonvick on /dev/pts/8",
    );
    assert.deepEqual(
      { ...m1, timeUnixNano: m1.timeUnixNano },
      {
        format: "rfc5424",
        facility: 4,
        severity: 2,
        timeUnixNano: ns("2003-10-11T22:14:15.003Z"),
        hostname: "mymachine.example.com",
        appName: "su",
        procId: undefined,
        msgId: "ID47",
        structuredData: [],
        message: "'su root' failed for lonvick on /dev/pts/8",
      },
    );
    const m2 = parseSyslog(
      "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    );
    assert.equal(m2.timeUnixNano, ns("2003-08-24T12:14:15.000Z") + 3000n);
    assert.equal(m2.procId, "8710");
    assert.equal(m2.msgId, undefined);
    assert.equal(m2.message, "%% It's time to make the do-nuts.");
    const m3 = parseSyslog(
      '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',
    );
    assert.deepEqual(m3.structuredData, [
      ["exampleSDID@32473", "iut", "3"],
      ["exampleSDID@32473", "eventSource", "Application"],
      ["exampleSDID@32473", "eventID", "1011"],
      ["examplePriority@32473", "class", "high"],
    ]);
    assert.equal(m3.message, "");
  });

  it('unescapes \\" \\\\ and \\] in structured data and keeps a ] at the end of the text in the text', () => {
    const m = parseSyslog('<14>1 - host app - - [a@1 x="q\\"uote\\] back\\\\slash \\n" y=""] text ends with [x]');
    assert.deepEqual(m.structuredData, [
      ["a@1", "x", 'q"uote] back\\slash \\n'],
      ["a@1", "y", ""],
    ]);
    assert.equal(m.message, "text ends with [x]");
    assert.equal(m.timeUnixNano, undefined);
  });

  it("reads RFC 3164 as senders write it: with and without hostname, tag and pid, year, RFC 3339 time", () => {
    const now = new Date(2024, 5, 15, 12, 0, 0);
    const local = (y: number, mo: number, d: number, h: number, mi: number, s: number) =>
      BigInt(new Date(y, mo, d, h, mi, s).getTime()) * 1_000_000n;
    const a = parseSyslog("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick", { now });
    assert.deepEqual(
      [a.format, a.facility, a.severity, a.hostname, a.appName, a.procId, a.message],
      ["rfc3164", 4, 2, "mymachine", "su", undefined, "'su root' failed for lonvick"],
    );
    assert.equal(a.timeUnixNano, local(2023, 9, 11, 22, 14, 15), "October is last year's in June");
    const b = parseSyslog("<13>Jun  5 09:01:02 gateway sshd[4121]: Accepted publickey", { now });
    assert.deepEqual([b.hostname, b.appName, b.procId, b.message], ["gateway", "sshd", "4121", "Accepted publickey"]);
    assert.equal(b.timeUnixNano, local(2024, 5, 5, 9, 1, 2));
    const c = parseSyslog("<13>Jun  5 09:01:02 cron[7]: no hostname from a local sender", { now });
    assert.deepEqual([c.hostname, c.appName, c.procId], [undefined, "cron", "7"]);
    const d = parseSyslog("<86>2024-06-15T11:59:58.123456+02:00 edge-7 kernel: rsyslog forward format", { now });
    assert.deepEqual([d.hostname, d.appName, d.message], ["edge-7", "kernel", "rsyslog forward format"]);
    assert.equal(d.timeUnixNano, ns("2024-06-15T09:59:58.123Z") + 456_000n);
    const e = parseSyslog("<13>Jun 15 2023 09:01:02 host app: with a year", { now });
    assert.equal(e.timeUnixNano, local(2023, 5, 15, 9, 1, 2));
  });

  it("keeps what does not parse as the text, with the priority it has or user.notice", () => {
    for (const [text, facility, severity, message] of [
      ["no priority at all", 1, 5, "no priority at all"],
      ["<999>too large a priority", 1, 5, "<999>too large a priority"],
      ["<11>not a timestamp here", 1, 3, "not a timestamp here"],
      ["<11>1 2024-13-45T99:00:00Z host app - - - bad date", 1, 3, "1 2024-13-45T99:00:00Z host app - - - bad date"],
      ['<11>1 - host app - - [broken sd="x] text', 1, 3, '1 - host app - - [broken sd="x] text'],
    ] as const) {
      const m = parseSyslog(text);
      assert.deepEqual([m.facility, m.severity, m.message], [facility, severity, message], text);
    }
  });

  it("RFC 3339 timestamps to the nanosecond, and refuses impossible ones", () => {
    assert.equal(rfc3339Nanos("1985-04-12T23:20:50.52Z"), ns("1985-04-12T23:20:50.520Z"));
    assert.equal(rfc3339Nanos("2024-01-01T00:00:00.123456789+00:00"), ns("2024-01-01T00:00:00.123Z") + 456_789n);
    assert.equal(rfc3339Nanos("2024-01-01T25:00:00Z"), undefined);
    assert.equal(rfc3339Nanos("2024-01-01 00:00:00Z"), undefined);
  });

  it("as an entry: chosen header fields as labels, the rest and structured data as structured metadata", () => {
    const settings = {
      format: "auto" as const,
      timestamp: "message" as const,
      line: "message" as const,
      labels: { job: "syslog" },
      messageLabels: new Set(["facility", "severity", "hostname", "app_name"]),
    };
    const text = '<190>1 2024-01-01T00:00:00Z gw-1 nginx 42 ACCESS [req@1 path="/a b" status="200"] GET /a b';
    const { labels, entry } = syslogEntry(text, 7n, settings);
    assert.deepEqual(
      { ...labels },
      { job: "syslog", facility: "local7", severity: "info", hostname: "gw-1", app_name: "nginx" },
    );
    assert.deepEqual(
      { ...entry.metadata },
      { proc_id: "42", msg_id: "ACCESS", sd_req_1_path: "/a b", sd_req_1_status: "200" },
    );
    assert.equal(entry.line, "GET /a b");
    assert.equal(entry.timeUnixNano, ns("2024-01-01T00:00:00Z"));
    const received = syslogEntry(text, 7n, { ...settings, timestamp: "received", line: "full" });
    assert.equal(received.entry.timeUnixNano, 7n);
    assert.equal(received.entry.line, text);
    assert.equal(syslogEntry("<13>no time", 9n, settings).entry.timeUnixNano, 9n, "no time of its own: received");
  });

  it("fuzz: any bytes parse without throwing, and a generated RFC 5424 message reads back as written", () => {
    for (let i = 0; i < 20_000; i++) {
      const bytes = randomBytes(randomInt(0, 200));
      if (i % 2 === 0) bytes.write(["<13>1 ", "<34>", "<191>Jan  1 ", "<0>1 - - - - - ["][i % 4]!, 0);
      parseSyslog(bytes.toString("latin1"));
      parseSyslog(bytes.toString("utf8"), { format: "rfc5424" });
    }
    const printable = () => randomBytes(randomInt(1, 12)).toString("base64url").replace(/[-_]/g, "x");
    const value = () => Array.from({ length: randomInt(0, 12) }, () => 'a"]\\ é€x='[randomInt(0, 10)]).join("");
    for (let i = 0; i < 2000; i++) {
      const sd: [string, string, string][] = Array.from({ length: randomInt(0, 4) }, () => [
        `${printable()}@${randomInt(1, 99999)}`,
        printable(),
        value(),
      ]);
      const elements = sd.map(([id, name, v]) => `[${id} ${name}="${v.replace(/(["\\\]])/g, "\\$1")}"]`).join("");
      const message = `${value()} ${value()}`;
      const pri = randomInt(0, 192);
      const text = `<${pri}>1 2024-02-29T12:34:56.789012Z ${printable()} ${printable()} ${randomInt(1, 1e6)} ${printable()} ${elements || "-"} ${message}`;
      const parsed = parseSyslog(text);
      assert.equal(parsed.format, "rfc5424", text);
      assert.deepEqual(parsed.structuredData, sd, text);
      assert.equal(parsed.message, message, text);
      assert.deepEqual([parsed.facility, parsed.severity], [pri >> 3, pri & 7]);
    }
  });
});

describe("RFC 6587 framing", () => {
  const decode = (decoder: FrameDecoder, chunks: string[]) =>
    chunks.flatMap((chunk) => decoder.push(Buffer.from(chunk))).map((f) => [f.bytes.toString(), f.truncated]);

  it("octet counting and newline framing, told apart per frame, across any chunk boundary", () => {
    const stream = "11 <13>1 - - -\n<13>plain line\r\n\n5 <1>ab<14>last\n";
    const expected = [
      ["<13>1 - - -", false],
      ["<13>plain line", false],
      ["<1>ab", false],
      ["<14>last", false],
    ];
    for (let cut = 0; cut <= stream.length; cut++)
      assert.deepEqual(decode(new FrameDecoder(1024), [stream.slice(0, cut), stream.slice(cut)]), expected, `${cut}`);
    const bytewise = new FrameDecoder(1024);
    assert.deepEqual(decode(bytewise, [...stream]), expected);
  });

  it("cuts messages at the limit, skips the rest without holding it, and reads on", () => {
    const decoder = new FrameDecoder(8);
    assert.deepEqual(decode(decoder, ["20 0123456789", "abcdefghij", "3 xyz", "a long newline frame\nok\n"]), [
      ["01234567", true],
      ["xyz", false],
      ["a long n", true],
      ["ok", false],
    ]);
    assert.ok(decoder.buffered <= 8);
  });

  it("a broken octet count closes the stream; an unterminated last line is a message", () => {
    assert.throws(() => new FrameDecoder(100).push(Buffer.from("12x <13>hello")), FramingError);
    assert.throws(() => new FrameDecoder(100).push(Buffer.from("99999999999 x")), FramingError);
    const decoder = new FrameDecoder(100);
    assert.deepEqual(decode(decoder, ["<13>no newline"]), []);
    assert.equal(decoder.end()?.bytes.toString(), "<13>no newline");
  });

  it("fuzz: random streams never throw anything but FramingError, and no frame exceeds the limit", () => {
    for (let i = 0; i < 5000; i++) {
      const decoder = new FrameDecoder(64);
      const bytes = randomBytes(randomInt(1, 600));
      for (let j = 0; j < bytes.length; j += 17) if (randomInt(0, 3) === 0) bytes[j] = 0x0a;
      try {
        for (let from = 0; from < bytes.length;) {
          const to = from + randomInt(1, 100);
          for (const frame of decoder.push(bytes.subarray(from, to))) assert.ok(frame.bytes.length <= 64);
          from = to;
        }
      } catch (err) {
        assert.ok(err instanceof FramingError, String(err));
      }
      assert.ok(decoder.buffered <= 64);
    }
  });
});
