import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { startRsyslogd } from "../test/helpers/rsyslog.js";
import { createTopics, deleteTopics, freePort, KAFKA_BROKERS, uniqueName } from "../test/helpers/services.js";
import {
  kafka,
  linesInBatches,
  messagesIn,
  procStats,
  type ProcStats,
  sleep,
  startCollector,
  until,
} from "./collector-processes.js";

// bench:collector's syslog phase (d): the input lines as RFC 3164 syslog over one TCP connection into the
// collector's listener and on to Kafka, and beside it rsyslogd's imtcp -> omkafka on the same input.

/** The phase's figures from the measured process's CPU and memory before and after. */
export type Figures<T> = (seconds: number, before: ProcStats, after: ProcStats) => T;

/**
 * The input as RFC 3164 syslog messages over one TCP connection (newline framing), as rsyslog's omfwd and
 * logger send them, written as fast as the receiver reads (the socket's backpressure respected).
 */
async function sendSyslog(port: number, lines: string[]): Promise<void> {
  // The syslog listener binds after the HTTP listener that said ready: try until it is there.
  let socket: Socket | undefined;
  for (let attempt = 0; !socket; attempt++) {
    const trying = connect(port, "127.0.0.1");
    socket = await new Promise<Socket | undefined>((resolve, reject) =>
      trying
        .once("connect", () => resolve(trying))
        .once("error", (err) => (attempt < 100 ? resolve(undefined) : reject(err))),
    );
    if (!socket) await sleep(100);
  }
  const chunk = 1000;
  for (let from = 0; from < lines.length; from += chunk) {
    const text = lines
      .slice(from, from + chunk)
      .map((line) => `<14>Dec  7 16:00:00 edge-1 bench[42]: ${line}\n`)
      .join("");
    if (!socket.write(text)) await new Promise((resolve) => socket.once("drain", resolve));
  }
  await new Promise<void>((resolve) => socket.end(resolve));
}

/** Syslog over TCP into the collector's listener and on to Kafka, until the broker holds every batch. */
export async function syslogToKafka<T>(root: string, lines: string[], figures: Figures<T>): Promise<T> {
  const LINES = lines.length;
  const topic = uniqueName("bench_syslog");
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const port = await freePort();
  const collector = await startCollector(join(root, "syslog-kafka"), "syslog-kafka", KAFKA_BROKERS, topic, false, port);
  const [before, t0] = [procStats(collector.pid), performance.now()];
  await sendSyslog(port, lines);
  await until(
    "every syslog message in the disk buffer",
    async () => (await collector.metric("bifrost_collector_syslog_messages_accepted_total")) >= LINES,
  );
  const batches = await collector.metric("bifrost_collector_batches_written_total");
  await until("every syslog batch in Kafka", async () => (await messagesIn(topic)) >= batches);
  const seconds = (performance.now() - t0) / 1000;
  const after = procStats(collector.pid);
  await collector.stop();
  const inKafka = await linesInBatches(topic);
  await deleteTopics(kafka, [topic]);
  if (inKafka !== LINES) throw new Error(`Kafka holds ${inKafka} of ${LINES} syslog messages from the collector`);
  const result = figures(seconds, before, after);
  return result;
}

/** The peer on the same input: rsyslogd's imtcp -> omkafka, until the broker holds every message. */
export async function rsyslogTcpToKafka<T>(root: string, lines: string[], figures: Figures<T>): Promise<T> {
  const LINES = lines.length;
  const topic = uniqueName("bench_rsyslog_tcp");
  await createTopics(kafka, [{ topic, numPartitions: 1 }]);
  const port = await freePort();
  const rsyslog = await startRsyslogd(join(root, "rsyslog-imtcp"), [
    `module(load="imtcp")`,
    `module(load="omkafka")`,
    `template(name="line" type="string" string="%msg%")`,
    `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="ship")`,
    `ruleset(name="ship") {`,
    `  action(type="omkafka" broker=[${KAFKA_BROKERS.map((b) => `"${b}"`).join(",")}] topic="${topic}" template="line"`,
    `         confParam=["compression.codec=lz4"] topicConfParam=["request.required.acks=-1"])`,
    `}`,
  ]);
  await sleep(500);
  const [before, t0] = [procStats(rsyslog.pid), performance.now()];
  await sendSyslog(port, lines);
  await until("all syslog messages through rsyslogd", async () => (await messagesIn(topic)) >= LINES);
  const seconds = (performance.now() - t0) / 1000;
  const after = procStats(rsyslog.pid);
  await rsyslog.stop();
  await deleteTopics(kafka, [topic]);
  const result = figures(seconds, before, after);
  return result;
}
