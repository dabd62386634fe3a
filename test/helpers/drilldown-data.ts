// The data the Logs Drilldown tests push, as a Loki push body: logfmt, JSON, access-log and plain lines, streams
// with and without a service label, a level label, structured metadata, and level words in several spellings.
// The expected answers in test/loki-drilldown.test.ts were recorded from Grafana Loki (main of 2026-08, single
// binary, pattern ingester on) after this same body was pushed to it with the same `t0Ns`.

const SEC = 1_000_000_000n;
const USERS = ["alice", "bob", "carol"];
const PATHS = ["/api/users", "/api/orders", "/api/cart"];

type Entry = [string, string] | [string, string, Record<string, string>];

export interface PushStream {
  stream: Record<string, string>;
  values: Entry[];
}

/** Seconds after t0 as a Loki push timestamp (nanoseconds as a string). */
const ts = (t0Ns: bigint, seconds: number) => String(t0Ns + BigInt(seconds) * SEC);

export function drilldownStreams(t0Ns: bigint): PushStream[] {
  const api: Entry[] = [];
  const checkout: Entry[] = [];
  const nginx: Entry[] = [];
  const worker: Entry[] = [];
  const plain: Entry[] = [];
  const web: Entry[] = [];
  const apiLevels = ["info", "info", "error", "WARN", "debug", "info"];
  const jsonLevels = ["INFO", "warning", "ERROR", "critical"];
  const workerLines = ["WARN slow batch of 42 items", "[info] connected to queue after 3 attempts", "trace: polling"];
  for (let i = 0; i < 96; i++) {
    const at = 30 + i * 6;
    api.push([
      ts(t0Ns, at),
      `level=${apiLevels[i % apiLevels.length]} msg="request served" path=${PATHS[i % 3]} status=${[200, 201, 404, 500][i % 4]} duration=${(i * 37) % 900}ms size=${(i % 5) + 1}KB user=${USERS[i % 3]} ok=${i % 2 === 0}`,
    ]);
    if (i % 4 === 0) {
      checkout.push([
        ts(t0Ns, at + 1),
        JSON.stringify({
          level: jsonLevels[(i / 4) % jsonLevels.length],
          msg: `order ${1000 + i} placed`,
          user: { name: USERS[i % 3], id: i },
          latency: i / 8,
          retry: i % 3,
          paid: i % 8 === 0,
        }),
        { trace_id: `t${(i * 7919).toString(16).padStart(6, "0")}` },
      ]);
    }
    nginx.push([
      ts(t0Ns, at + 2),
      `10.0.0.${(i % 4) + 1} - - "GET ${PATHS[i % 3]} HTTP/1.1" ${[200, 304, 404][i % 3]} ${100 + i * 13} "-" "curl/8.${i % 3}"`,
    ]);
    if (i % 2 === 1) {
      const line =
        i % 3 === 0 ? workerLines[(i - 1) % workerLines.length]! : `ERROR failed to connect to db host=db${i % 5}`;
      worker.push([ts(t0Ns, at + 3), line]);
    }
    if (i % 3 === 0) plain.push([ts(t0Ns, at + 4), `plain line number ${i} with nothing to say`]);
    if (i % 8 === 0) web.push([ts(t0Ns, at + 5), `served ${PATHS[i % 3]} in ${i}ms`]);
  }
  return [
    { stream: { app: "api", env: "prod", cluster: "c1" }, values: api },
    { stream: { service_name: "checkout", env: "prod", namespace: "shop" }, values: checkout },
    { stream: { job: "nginx", env: "dev" }, values: nginx },
    { stream: { container: "worker", env: "dev" }, values: worker },
    { stream: { foo: "bar" }, values: plain },
    { stream: { app: "web", env: "dev", level: "warn" }, values: web },
  ];
}
