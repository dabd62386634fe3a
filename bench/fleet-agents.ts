import { parentPort, workerData } from "node:worker_threads";
import WebSocket from "ws";
import {
  AgentCapabilities,
  decodeServerToAgent,
  encodeAgentToServer,
  RemoteConfigStatus,
  uuidV7,
  wsFrame,
  wsPayload,
} from "../proto/opamp.js";

// One worker thread of npm run bench:fleet: `count` light-weight OpAMP agents, each a WebSocket connection that
// says what a Bifrost collector says (description, health), heartbeats every `heartbeatMs` (spread over the
// interval), and on a remote configuration reports it applied at once, noting when it arrived. Messages:
// "connected" once every connection is open; on "report", the arrival times of configurations since the last one.

interface Options {
  url: string;
  count: number;
  first: number;
  heartbeatMs: number;
  connectSpreadMs: number;
}

const options = workerData as Options;
const REGIONS = ["eu-west", "eu-central", "us-east", "ap-south"];
const capabilities =
  AgentCapabilities.ReportsStatus |
  AgentCapabilities.AcceptsRemoteConfig |
  AgentCapabilities.ReportsEffectiveConfig |
  AgentCapabilities.ReportsHealth |
  AgentCapabilities.ReportsRemoteConfig |
  AgentCapabilities.ReportsHeartbeat;
const arrivals: number[] = [];
let open = 0;
const sockets: WebSocket[] = [];

function agent(index: number): void {
  const uid = uuidV7();
  const node = `sim-${String(index).padStart(5, "0")}`;
  let sequence = 0;
  const socket = new WebSocket(options.url, { perMessageDeflate: false });
  sockets.push(socket);
  const send = (
    message: Omit<Parameters<typeof encodeAgentToServer>[0], "instanceUid" | "sequenceNum" | "capabilities">,
  ) =>
    socket.send(wsFrame(encodeAgentToServer({ instanceUid: uid, sequenceNum: ++sequence, capabilities, ...message })));
  let timer: NodeJS.Timeout | undefined;
  socket.on("open", () => {
    open++;
    if (open === options.count) parentPort!.postMessage({ type: "connected" });
    send({
      agentDescription: {
        identifying: { "service.name": "bifrost-collector", "service.version": "0.1.0", "bifrost.node.id": node },
        nonIdentifying: {
          "bifrost.region": REGIONS[index % REGIONS.length]!,
          "host.arch": "amd64",
          "os.type": "linux",
        },
      },
      health: { healthy: true, attributes: { entries_accepted: 0, requests_rejected: 0 } },
    });
    // Spread the heartbeats over the interval, as real agents started at different times would be.
    setTimeout(() => {
      send({});
      timer = setInterval(() => send({}), options.heartbeatMs);
    }, Math.random() * options.heartbeatMs);
  });
  socket.on("message", (data: Buffer) => {
    const message = decodeServerToAgent(wsPayload(data));
    if (message.remoteConfig === undefined) return;
    arrivals.push(Date.now());
    send({
      remoteConfigStatus: {
        lastRemoteConfigHash: message.remoteConfig.configHash,
        status: RemoteConfigStatus.Applied,
        errorMessage: "",
      },
    });
  });
  socket.on("close", () => clearInterval(timer));
  socket.on("error", () => {});
}

for (let i = 0; i < options.count; i++)
  setTimeout(() => agent(options.first + i), (i / options.count) * options.connectSpreadMs);

parentPort!.on("message", (message: { type: string }) => {
  if (message.type === "report") parentPort!.postMessage({ type: "arrivals", arrivals: arrivals.splice(0) });
  if (message.type === "close") {
    for (const socket of sockets) socket.terminate();
    parentPort!.postMessage({ type: "closed" });
  }
});
