import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Certificates made for one test run with the openssl CLI, so that no private key is ever checked in.

export interface TestPki {
  dir: string;
  caCert: string;
  /** Paths of a leaf certificate and key signed by the CA. */
  issue(
    name: string,
    options: { commonName: string; dns?: string[]; ips?: string[]; uris?: string[] },
  ): { cert: string; key: string };
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: "pipe" });
}

export function testPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-pki-"));
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=bifrost test CA",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
    ],
    dir,
  );
  return {
    dir,
    caCert: join(dir, "ca.pem"),
    issue(name, options) {
      const names = [
        ...(options.dns ?? []).map((d) => `DNS:${d}`),
        ...(options.ips ?? []).map((ip) => `IP:${ip}`),
        ...(options.uris ?? []).map((uri) => `URI:${uri}`),
      ];
      writeFileSync(join(dir, `${name}.ext`), names.length > 0 ? `subjectAltName=${names.join(",")}\n` : "");
      openssl(
        [
          "req",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-subj",
          `/CN=${options.commonName}`,
          "-keyout",
          `${name}.key`,
          "-out",
          `${name}.csr`,
        ],
        dir,
      );
      openssl(
        [
          "x509",
          "-req",
          "-in",
          `${name}.csr`,
          "-CA",
          "ca.pem",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-days",
          "2",
          "-extfile",
          `${name}.ext`,
          "-out",
          `${name}.pem`,
        ],
        dir,
      );
      return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    },
  };
}
