import { createServer } from "node:http";
import { WebSocketServer, type WebSocket } from "ws";
import {
  decodeAgentToServer,
  encodeServerToAgent,
  OPAMP_PATH,
  ServerCapabilities,
  wsFrame,
  wsPayload,
} from "../proto/opamp.js";

// The floor of npm run bench:fleet: the least an OpAMP server on Node.js can do for the same agents — a bare
// WebSocket server (the same ws library) that decodes every message and answers it with an empty ServerToAgent,
// keeps no inventory, persists nothing, and on SIGUSR2 sends one fixed remote configuration to every connection.
// Prints its port on stdout.

const sockets = new Set<WebSocket>();
const server = createServer();
const wss = new WebSocketServer({ server, path: OPAMP_PATH });
wss.on("connection", (ws) => {
  sockets.add(ws);
  ws.on("message", (data: Buffer) => {
    const message = decodeAgentToServer(wsPayload(data));
    ws.send(
      wsFrame(
        encodeServerToAgent({ instanceUid: message.instanceUid, capabilities: ServerCapabilities.AcceptsStatus }),
      ),
    );
  });
  ws.on("close", () => sockets.delete(ws));
});
const body = Buffer.from("collector:\n  batch:\n    max_entries: 2000\n");
process.on("SIGUSR2", () => {
  for (const ws of sockets)
    ws.send(
      wsFrame(
        encodeServerToAgent({
          instanceUid: new Uint8Array(16),
          remoteConfig: {
            config: { "bifrost.yaml": { body, contentType: "text/yaml" } },
            configHash: new Uint8Array(32).fill(7),
          },
        }),
      ),
    );
});
process.on("SIGTERM", () => process.exit(0));
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${typeof address === "object" && address !== null ? address.port : 0}\n`);
});
