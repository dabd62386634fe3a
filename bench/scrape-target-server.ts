import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

// `node dist/bench/scrape-target-server.js <targets> <series>`: the scrape bench's targets in a process of their
// own (so their CPU is not counted to the scrapers), all on one port: GET /t/<n> answers target n's exposition
// of <series> series (counters, gauges, a histogram and a summary, as an application exposes them), its values
// moving from scrape to scrape. Prints the port on stdout once listening.

const targets = Number(process.argv[2] ?? 1000);
const seriesPerTarget = Number(process.argv[3] ?? 500);

const BUCKETS = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"];

/** Target n's exposition at its k-th scrape: seriesPerTarget lines, families of a tenth of it each. */
function exposition(n: number, k: number): string {
  const lines: string[] = [];
  const share = Math.floor(seriesPerTarget / 10);
  lines.push("# HELP bench_requests_total Requests handled.", "# TYPE bench_requests_total counter");
  for (let i = 0; i < 4 * share; i++)
    lines.push(`bench_requests_total{route="/api/r${i}",method="GET",code="200"} ${k * (i + 1) + n}`);
  lines.push("# HELP bench_queue_depth Items waiting.", "# TYPE bench_queue_depth gauge");
  for (let i = 0; i < 2 * share; i++) lines.push(`bench_queue_depth{queue="q${i}"} ${(k * 7 + i) % 100}`);
  lines.push("# HELP bench_latency_seconds Request latency.", "# TYPE bench_latency_seconds histogram");
  for (let h = 0; h < Math.floor((2 * share) / (BUCKETS.length + 2)); h++) {
    BUCKETS.forEach((le, b) => lines.push(`bench_latency_seconds_bucket{handler="h${h}",le="${le}"} ${k * (b + 1)}`));
    lines.push(
      `bench_latency_seconds_sum{handler="h${h}"} ${k * 0.25}`,
      `bench_latency_seconds_count{handler="h${h}"} ${k * BUCKETS.length}`,
    );
  }
  lines.push("# HELP bench_rpc_seconds RPC latency.", "# TYPE bench_rpc_seconds summary");
  for (let m = 0; m < Math.floor(share / 5); m++) {
    for (const q of ["0.5", "0.9", "0.99"])
      lines.push(`bench_rpc_seconds{method="m${m}",quantile="${q}"} ${(k % 10) / 10}`);
    lines.push(`bench_rpc_seconds_sum{method="m${m}"} ${k * 0.1}`, `bench_rpc_seconds_count{method="m${m}"} ${k}`);
  }
  const samples = lines.filter((l) => !l.startsWith("#")).length;
  for (let i = samples; i < seriesPerTarget; i++) lines.push(`bench_info_value{slot="s${i}"} ${k}`);
  return lines.join("\n") + "\n";
}

const scrapes = new Uint32Array(targets);
const server = createServer((req, res) => {
  const n = Number(/^\/t\/(\d+)$/.exec(req.url ?? "")?.[1] ?? -1);
  if (!(n >= 0 && n < targets)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
  res.end(exposition(n, ++scrapes[n]!));
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
