import { promisify } from "node:util";
import { gunzip, gzipSync } from "node:zlib";
import { upgradeWebSocket } from "@hono/node-server";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Logger } from "../common/log.js";
import { clientIdentity } from "../common/service.js";
import {
  decodeAgentToServer,
  encodeServerToAgent,
  OPAMP_CONTENT_TYPE,
  OPAMP_PATH,
  OpampDecodeError,
  ServerErrorType,
  type ServerToAgent,
  uidText,
  wsFrame,
  wsPayload,
} from "../proto/opamp.js";
import type { Connection, Fleet } from "./fleet.js";

// OpAMP's two transports on one path, /v1/opamp, as the specification has servers accept both: a POST with
// Content-Type application/x-protobuf is the plain HTTP transport (one AgentToServer in, one ServerToAgent out;
// gzip either way), a GET asking for an upgrade is the WebSocket transport (binary messages, each a varint
// header of 0 and the protobuf bytes, in both directions, the server free to push). Messages over the size
// limit are refused (413, WebSocket close 1009) and never decoded.

const gunzipAsync = promisify(gunzip);
const RETRY_AFTER_S = 5;

export interface TransportOptions {
  fleet: () => Fleet | undefined;
  maxMessageBytes: number;
  log: Logger;
}

function errorAnswer(type: ServerErrorType, message: string, instanceUid = new Uint8Array(0)): ServerToAgent {
  return {
    instanceUid,
    errorResponse: {
      type,
      message,
      ...(type === ServerErrorType.Unavailable ? { retryAfterNs: BigInt(RETRY_AFTER_S) * 1_000_000_000n } : {}),
    },
  };
}

/** Adds the routes; returns what closes every open WebSocket connection (at shutdown: they hold the listener open). */
export function opampRoutes(app: Hono, options: TransportOptions): () => void {
  const { maxMessageBytes, log } = options;
  const open = new Set<{ close(code?: number, reason?: string): void }>();

  app.post(
    OPAMP_PATH,
    bodyLimit({
      maxSize: maxMessageBytes,
      onError: (c) => c.text(`an OpAMP message may have at most ${maxMessageBytes} bytes\n`, 413),
    }),
    async (c) => {
      if (c.req.header("Content-Type")?.split(";")[0]?.trim() !== OPAMP_CONTENT_TYPE)
        return c.text(`expected Content-Type: ${OPAMP_CONTENT_TYPE}\n`, 415);
      const fleet = options.fleet();
      if (fleet === undefined)
        return c.text("the fleet's state is still loading from the store\n", 503, {
          "Retry-After": String(RETRY_AFTER_S),
        });
      let body = new Uint8Array(await c.req.arrayBuffer());
      if (c.req.header("Content-Encoding")?.toLowerCase() === "gzip") {
        try {
          body = await gunzipAsync(body, { maxOutputLength: maxMessageBytes });
        } catch (err) {
          const status = (err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE" ? 413 : 400;
          return c.text(`bad gzip body: ${(err as Error).message}\n`, status);
        }
      }
      let answer: ServerToAgent;
      let status: 200 | 400 = 200;
      try {
        answer = fleet.handle(decodeAgentToServer(body), { transport: "http", identity: clientIdentity(c) });
      } catch (err) {
        if (!(err instanceof OpampDecodeError)) throw err;
        answer = errorAnswer(ServerErrorType.BadRequest, err.message);
        status = 400;
      }
      let bytes: Uint8Array = encodeServerToAgent(answer);
      if (bytes.length > maxMessageBytes) {
        log.error(
          { bytes: bytes.length, uid: uidText(answer.instanceUid) },
          "an OpAMP answer is over the size limit; not sent",
        );
        bytes = encodeServerToAgent(errorAnswer(ServerErrorType.Unknown, "the answer is over the server's size limit"));
      }
      const headers: Record<string, string> = { "Content-Type": OPAMP_CONTENT_TYPE };
      if (bytes.length > 1024 && /\bgzip\b/.test(c.req.header("Accept-Encoding") ?? "")) {
        bytes = gzipSync(bytes);
        headers["Content-Encoding"] = "gzip";
      }
      return c.body(bytes as Uint8Array<ArrayBuffer>, status, headers);
    },
  );

  app.get(
    OPAMP_PATH,
    upgradeWebSocket((c) => {
      const identity = clientIdentity(c);
      const uids = new Set<string>();
      let connection: Connection | undefined;
      return {
        onOpen: (_event, ws) => {
          open.add(ws);
          connection = {
            transport: "websocket",
            identity,
            send: (message) => {
              const bytes = encodeServerToAgent(message);
              if (bytes.length + 1 > maxMessageBytes) {
                log.error(
                  { bytes: bytes.length, uid: uidText(message.instanceUid) },
                  "an OpAMP message is over the size limit; not sent",
                );
                return;
              }
              ws.send(wsFrame(bytes) as Uint8Array<ArrayBuffer>);
            },
          };
        },
        onMessage: (event, ws) => {
          if (connection === undefined) return;
          const fleet = options.fleet();
          if (fleet === undefined) {
            // The client disconnects, waits and reconnects, as the specification says for UNAVAILABLE.
            connection.send!(errorAnswer(ServerErrorType.Unavailable, "the fleet's state is still loading"));
            return;
          }
          if (!(event.data instanceof ArrayBuffer)) {
            ws.close(1003, "OpAMP messages are binary");
            return;
          }
          let answer: ServerToAgent;
          try {
            const message = decodeAgentToServer(wsPayload(new Uint8Array(event.data)));
            answer = fleet.handle(message, connection);
            const uid = uidText(answer.agentIdentification?.newInstanceUid ?? message.instanceUid);
            if (message.agentDisconnect) uids.delete(uid);
            else if (answer.errorResponse === undefined) uids.add(uid);
          } catch (err) {
            if (!(err instanceof OpampDecodeError)) {
              log.error({ err }, "an OpAMP message failed");
              return;
            }
            answer = errorAnswer(ServerErrorType.BadRequest, err.message);
          }
          connection.send!(answer);
        },
        onClose: (_event, ws) => {
          open.delete(ws);
          const fleet = options.fleet();
          if (connection !== undefined) for (const uid of uids) fleet?.closed(uid, connection);
        },
        onError: () => {},
      };
    }),
  );
  return () => {
    for (const ws of open) ws.close(1001, "the fleet server is stopping");
  };
}
