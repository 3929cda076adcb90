/**
 * A throwaway certificate authority for tests and the demo, made with the `openssl` CLI: a CA,
 * a server certificate for 127.0.0.1 and localhost (subjectAltName; RFC 6125 and Go's TLS
 * ignore the CN), and a client certificate for mutual TLS. The server certificate carries both
 * serverAuth and clientAuth, because a broker presents it as the client certificate of its
 * outgoing leafnode links too. P-256 keys: quick to make, accepted by Go and Node alike.
 * Private keys are 0600. Nothing here is fit for production: the CA key sits next to its
 * certificate and everything expires in two days.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { ServerTls } from "@stafett/shared";

export interface TestCa {
  dir: string;
  caFile: string;
  caKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** The nats-server `tls` block (countryServerConfig's `tls`), verify on. */
  server: ServerTls;
  /** nats.js connect options' `tls` for a client with a client certificate. */
  client: { caFile: string; certFile: string; keyFile: string };
}

const DAYS = "2";
const CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function openssl(args: readonly string[]): void {
  try {
    execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString("utf8").trim() ?? "";
    throw new Error(`openssl ${args[0] ?? ""} failed${stderr === "" ? "" : `: ${stderr}`}`, {
      cause: err,
    });
  }
}

/** A key pair and a certificate signed by the CA, with the given X.509v3 extensions. */
function issueCert(
  dir: string,
  name: string,
  cn: string,
  extensions: string,
  ca: { cert: string; key: string },
): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  openssl(["req", ...CURVE, "-keyout", key, "-out", csr, "-subj", `/CN=${cn}`]);
  chmodSync(key, 0o600);
  writeFileSync(ext, extensions);
  openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-set_serial",
    `0x${randomBytes(16).toString("hex")}`,
    "-days",
    DAYS,
    "-sha256",
    "-extfile",
    ext,
    "-out",
    cert,
  ]);
  rmSync(csr);
  rmSync(ext);
  return { cert, key };
}

/** Makes a CA, a server and a client certificate in `dir` (created if missing, 0700). */
export function createTestCa(dir: string): TestCa {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = { cert: join(dir, "ca.pem"), key: join(dir, "ca.key") };
  openssl([
    "req",
    "-x509",
    ...CURVE,
    "-keyout",
    ca.key,
    "-out",
    ca.cert,
    "-days",
    DAYS,
    "-sha256",
    "-subj",
    "/CN=Stafett test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  chmodSync(ca.key, 0o600);
  const leaf = (eku: string, san?: string) =>
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      `extendedKeyUsage=${eku}`,
      ...(san === undefined ? [] : [`subjectAltName=${san}`]),
      "",
    ].join("\n");
  const server = issueCert(
    dir,
    "server",
    "localhost",
    leaf("serverAuth,clientAuth", "IP:127.0.0.1,DNS:localhost"),
    ca,
  );
  const client = issueCert(dir, "client", "stafett-test-client", leaf("clientAuth"), ca);
  return {
    dir,
    caFile: ca.cert,
    caKeyFile: ca.key,
    serverCertFile: server.cert,
    serverKeyFile: server.key,
    clientCertFile: client.cert,
    clientKeyFile: client.key,
    server: { cert_file: server.cert, key_file: server.key, ca_file: ca.cert, verify: true },
    client: { caFile: ca.cert, certFile: client.cert, keyFile: client.key },
  };
}
