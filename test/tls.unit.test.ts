import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { after, before, describe, it } from "node:test";
import { configSchema } from "../config.js";
import { createLogger } from "../common/log.js";
import { createRegistry } from "../common/metrics.js";
import { clientIdentity, HttpService } from "../common/service.js";
import { testPki, type TestPki } from "./helpers/certs.js";

// TLS and mutual TLS on Bifrost's listeners, with certificates generated for the run.

function get(
  url: string,
  ca: string,
  client?: { cert: string; key: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { ca: readFileSync(ca), ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) },
      (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("TLS listeners", () => {
  let pki: TestPki;
  let server: { cert: string; key: string };
  let node: { cert: string; key: string };
  const services: HttpService[] = [];

  before(() => {
    pki = testPki();
    server = pki.issue("server", { commonName: "query.bifrost.test", dns: ["localhost"], ips: ["127.0.0.1"] });
    node = pki.issue("node", { commonName: "store-042-gw1", uris: ["spiffe://fleet.example/node/store-042-gw1"] });
  });
  after(async () => {
    for (const service of services) await service.close();
  });

  async function start(tls: Record<string, unknown>): Promise<string> {
    const service = new HttpService("query", createRegistry(), createLogger("silent"));
    service.app.get("/whoami", (c) => c.json(clientIdentity(c) ?? null));
    services.push(service);
    return (await service.listen("127.0.0.1:0", configSchema().parse({ query: { tls } }).query.tls)).url;
  }

  it("serves HTTPS with the configured certificate", async () => {
    const url = await start({ enabled: true, cert_file: server.cert, key_file: server.key });
    assert.match(url, /^https:\/\//);
    assert.deepEqual(await get(`${url}/ready`, pki.caCert), { status: 200, body: "ready\n" });
    await assert.rejects(get(`${url}/ready`, node.cert), /self[- ]signed|unable to (get|verify)/i);
  });

  it("requires a client certificate from the CA with client_auth require, and exposes its identity", async () => {
    const url = await start({
      enabled: true,
      cert_file: server.cert,
      key_file: server.key,
      client_ca_file: pki.caCert,
    });
    const whoami = await get(`${url}/whoami`, pki.caCert, node);
    assert.equal(whoami.status, 200);
    assert.deepEqual(JSON.parse(whoami.body), {
      commonName: "store-042-gw1",
      uris: ["spiffe://fleet.example/node/store-042-gw1"],
    });
    await assert.rejects(get(`${url}/whoami`, pki.caCert), /certificate|socket hang up|ECONNRESET/i);
    const stranger = testPki();
    const foreign = stranger.issue("foreign", { commonName: "store-042-gw1" });
    await assert.rejects(
      get(`${url}/whoami`, pki.caCert, foreign),
      /certificate|socket hang up|ECONNRESET|unknown ca/i,
    );
  });

  it("with client_auth request, serves clients without a certificate but gives them no identity", async () => {
    const url = await start({
      enabled: true,
      cert_file: server.cert,
      key_file: server.key,
      client_ca_file: pki.caCert,
      client_auth: "request",
    });
    assert.deepEqual(await get(`${url}/whoami`, pki.caCert), { status: 200, body: "null" });
    assert.equal(JSON.parse((await get(`${url}/whoami`, pki.caCert, node)).body).commonName, "store-042-gw1");
  });

  it("refuses a TLS listener without a certificate in the configuration", () => {
    assert.throws(() => configSchema().parse({ query: { tls: { enabled: true } } }), /cert_file and key_file/);
  });
});
