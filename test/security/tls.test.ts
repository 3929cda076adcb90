/**
 * TLS on the bus: a country broker whose client port is mutual TLS, and two federated brokers
 * whose client ports and leafnode link are mutual TLS (verify on), all from
 * `countryServerConfig`'s `tls`. A client with the CA and a client certificate works; a
 * plaintext client, one that does not trust the CA and one without a certificate are refused;
 * a referral crosses the TLS link into the partner's stream.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, nkeyAuthenticator, type ConnectionOptions } from "@nats-io/transport-node";
import {
  createCountry,
  startFederation,
  startServer,
  waitForValue,
  type Country,
  type Federation,
  type NatsServer,
} from "@stafett/devkit";
import {
  countryServerConfig,
  createBrokerUsers,
  generateSigningKey,
  inboxPrefixOf,
  provisionCountry,
  PROVISIONER,
  type BrokerUsers,
} from "@stafett/shared";
// Not re-exported from @stafett/devkit's barrel (mod.ts) yet.
import { createTestCa, type TestCa } from "../../services/devkit/src/tls.js";

let caDir: string;
let ca: TestCa;
let broker: NatsServer;
let fed: Federation;
let users: BrokerUsers;
let sweden: Country;
let norway: Country;

beforeAll(async () => {
  caDir = mkdtempSync(join(tmpdir(), "stafett-tls-test-"));
  ca = createTestCa(caDir);
  const [seAnchor, noAnchor] = await Promise.all([generateSigningKey(), generateSigningKey()]);
  [sweden, norway] = await Promise.all([
    createCountry({
      code: "se",
      municipalities: ["0180"],
      anchor: seAnchor,
      partnerAnchors: [{ country: "no", anchors: [noAnchor.publicJwk] }],
    }),
    createCountry({
      code: "no",
      municipalities: [],
      anchor: noAnchor,
      partnerAnchors: [{ country: "se", anchors: [seAnchor.publicJwk] }],
    }),
  ]);
  users = createBrokerUsers(sweden.trustList);
  const config = countryServerConfig({
    country: "se",
    storeDir: "",
    trustList: sweden.trustList,
    nkeys: users.nkeys,
    port: -1,
    tls: ca.server,
  });
  delete (config.jetstream as Record<string, unknown>).store_dir; // the launcher's temp dir
  [broker, fed] = await Promise.all([
    startServer({ name: "stafett-se-tls", jetstream: { domain: "se" }, config }),
    startFederation("no", ["se"], { se: sweden.trustList, no: norway.trustList }, { tls: true }),
  ]);
}, 30_000);

afterAll(async () => {
  await broker?.stop();
  await fed?.stop();
  if (caDir !== undefined) rmSync(caDir, { recursive: true, force: true });
});

/** The provisioner's nkey login (the STAFETT account) from a set of broker users. */
const login = (u: BrokerUsers, id = PROVISIONER): Partial<ConnectionOptions> => ({
  authenticator: nkeyAuthenticator(u.seeds.get(id) ?? new Uint8Array()),
});

/** Every line a server has logged so far (its stderr). */
const logOf = (server: NatsServer): string[] =>
  server.stderrTail(Number.MAX_SAFE_INTEGER).split("\n");

/**
 * Waits for `server` to log a line matching `pattern` after its first `from` lines, and returns
 * it: the broker's own account of why it ended a connection (a dead broker logs nothing).
 */
async function loggedAfter(server: NatsServer, from: number, pattern: RegExp): Promise<string> {
  try {
    return await waitForValue(
      () =>
        logOf(server)
          .slice(from)
          .find((line) => pattern.test(line)),
      { timeoutMs: 5_000, message: `${server.name ?? "the broker"} to log ${String(pattern)}` },
    );
  } catch (err) {
    const lines = logOf(server).slice(from).join("\n");
    throw new Error(`${(err as Error).message}; it logged:\n${lines}`, { cause: err });
  }
}

/** The first Node error code (a TLS or socket error) in an error's cause chain. */
function codeOf(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** A refused connection: what the client was told, and the broker's log line about it. */
interface Refusal {
  code: string | undefined;
  log: string;
}

/**
 * Connects to `server`, expecting the TLS handshake to fail; fails the test when the client
 * connects or never reaches the broker. Returns the client's error code and the broker's
 * "TLS handshake error" line for this attempt.
 */
async function refusedByTls(server: NatsServer, options: ConnectionOptions): Promise<Refusal> {
  const from = logOf(server).length;
  let error: unknown;
  try {
    const nc = await connect({ ...options, reconnect: false, timeout: 5_000 });
    await nc.close();
  } catch (err) {
    error = err;
  }
  expect(error, "the connection was refused").toBeInstanceOf(Error);
  // A broker that is down refuses the TCP connection itself: that is not the refusal under test.
  expect(codeOf(error)).not.toBe("ECONNREFUSED");
  return { code: codeOf(error), log: await loggedAfter(server, from, /TLS handshake error/) };
}

/** The positive control: with the CA and its client certificate, the same broker takes us. */
async function expectAccepted(server: NatsServer): Promise<void> {
  const nc = await connect({
    servers: server.url,
    ...login(users),
    tls: ca.client,
    reconnect: false,
    timeout: 5_000,
  });
  await nc.flush();
  await nc.close();
}

/** Node's codes for a server certificate whose issuer the client does not trust. */
const UNTRUSTED_ISSUER = [
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
];

/**
 * Speaks NATS in plaintext to a TLS port, as an old or misconfigured client would: reads INFO,
 * sends CONNECT with valid credentials and a PING, and reports what the server did.
 */
function plaintextAttempt(
  port: number,
  connectLine: string,
): Promise<{ info: Record<string, unknown>; reply: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, "127.0.0.1");
    let text = "";
    let info: Record<string, unknown> | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ info: info ?? {}, reply: text, closed: false });
    }, 5_000);
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      const line = /^INFO (\{.*\}) ?\r\n/.exec(text);
      if (info === undefined && line?.[1] !== undefined) {
        info = JSON.parse(line[1]) as Record<string, unknown>;
        text = text.slice(line[0].length);
        socket.write(`${connectLine}\r\nPING\r\n`);
      }
    });
    socket.on("error", () => undefined); // a reset after the server gives up is the expected end
    socket.on("close", () => {
      clearTimeout(timer);
      if (info === undefined) reject(new Error("no INFO before the connection closed"));
      else resolve({ info, reply: text, closed: true });
    });
  });
}

describe("a country broker with mutual TLS on its client port", () => {
  it("a client with the CA and a client certificate connects, and a JetStream publish is stored", async () => {
    const nc = await connect({ servers: broker.url, ...login(users), tls: ca.client });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({
        name: "TLS_PROBE",
        subjects: ["stafett.se.probe.>"],
        max_bytes: 1024 * 1024,
      });
      const ack = await jetstream(nc).publish("stafett.se.probe.one", new Uint8Array([1, 2, 3]), {
        msgID: randomUUID(),
      });
      expect(ack).toMatchObject({ stream: "TLS_PROBE", seq: 1, domain: "se" });
      // The server sees this connection as TLS.
      const connz = await broker.monitor<{
        connections: { name?: string; tls_version?: string }[];
      }>("/connz");
      expect(connz.connections.length).toBeGreaterThan(0);
      for (const c of connz.connections) expect(c.tls_version).toMatch(/^1\.[23]$/);
    } finally {
      await nc.close();
    }
  });

  it("a plaintext client is refused, valid credentials notwithstanding", async () => {
    const from = logOf(broker).length;
    const attempt = await plaintextAttempt(
      broker.port,
      `CONNECT ${JSON.stringify({ user: "stafett", pass: randomUUID(), verbose: false, pedantic: false, tls_required: false })}`,
    );
    expect(attempt.info.tls_required).toBe(true);
    expect(attempt.closed).toBe(true);
    expect(attempt.reply).not.toContain("PONG");
    expect(attempt.reply).not.toContain("+OK");
    // The broker ended it for want of TLS, not for the credentials.
    expect(await loggedAfter(broker, from, /TLS handshake error/)).toMatch(
      /does not look like a TLS handshake/,
    );
    await expectAccepted(broker);
  });

  it("a client that does not trust the CA, or has no client certificate, is refused", async () => {
    // nats.js upgrades to TLS when the server requires it; without the CA the client cannot
    // verify the broker's certificate and ends the handshake itself.
    const noCa = await refusedByTls(broker, { servers: broker.url, ...login(users) });
    expect(UNTRUSTED_ISSUER).toContain(noCa.code);
    await expectAccepted(broker);
    // The CA but no client certificate: the broker verifies clients (verify: true).
    const noCert = await refusedByTls(broker, {
      servers: broker.url,
      ...login(users),
      tls: { caFile: ca.caFile },
    });
    expect(noCert.log).toMatch(/TLS handshake error: tls: client didn't provide a certificate/);
    await expectAccepted(broker);
    // A client certificate from another CA.
    const otherDir = mkdtempSync(join(tmpdir(), "stafett-tls-other-"));
    try {
      const other = createTestCa(otherDir);
      const otherCa = await refusedByTls(broker, {
        servers: broker.url,
        ...login(users),
        tls: { caFile: ca.caFile, certFile: other.clientCertFile, keyFile: other.clientKeyFile },
      });
      expect(otherCa.log).toMatch(
        /TLS handshake error: .*client'?s? certificate: x509: certificate signed by unknown authority/,
      );
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
    await expectAccepted(broker);
  });

  it("the generated config names the TLS files and turns verify on", () => {
    expect(broker.config.tls).toEqual({
      cert_file: ca.serverCertFile,
      key_file: ca.serverKeyFile,
      ca_file: ca.caFile,
      verify: true,
    });
  });
});

describe("two federated brokers with TLS on client ports and on the leafnode link", () => {
  it("the link is TLS on both ends, and a plaintext leafnode is refused at the partner's leafnode port", async () => {
    const tls = fed.tls;
    if (tls === undefined) throw new Error("the federation has no TLS");
    expect((fed.server("no").config.leafnodes as Record<string, unknown>).tls).toEqual(tls.server);
    const remotes = (fed.server("se").config.leafnodes as { remotes: { tls?: unknown }[] }).remotes;
    expect(remotes.map((r) => r.tls)).toEqual([
      { cert_file: tls.serverCertFile, key_file: tls.serverKeyFile, ca_file: tls.caFile },
    ]);
    await waitForValue(
      async () =>
        (await fed.server("no").monitor<{ leafnodes: number }>("/leafz")).leafnodes === 1
          ? true
          : undefined,
      { timeoutMs: 10_000, message: "the Swedish link to be up" },
    );
    const from = logOf(fed.server("no")).length;
    const attempt = await plaintextAttempt(
      await fed.server("no").leafPort(),
      `CONNECT ${JSON.stringify({ user: "link-se", pass: "not-needed-to-be-refused", tls_required: false })}`,
    );
    expect(attempt.info.tls_required).toBe(true);
    expect(attempt.closed).toBe(true);
    expect(attempt.reply).not.toContain("PONG");
    // Norway's broker ended it for want of TLS, and the TLS link from Sweden stays up.
    expect(await loggedAfter(fed.server("no"), from, /TLS leafnode handshake error/)).toMatch(
      /does not look like a TLS handshake/,
    );
    expect((await fed.server("no").monitor<{ leafnodes: number }>("/leafz")).leafnodes).toBe(1);
  });

  it("a referral published in Sweden crosses the TLS link into Norway's stream", async () => {
    const tls = fed.tls;
    const seUsers = fed.users.get("se");
    const noUsers = fed.users.get("no");
    if (tls === undefined || seUsers === undefined || noUsers === undefined)
      throw new Error("federation incomplete");
    const noNc = await connect({
      servers: fed.server("no").url,
      ...login(noUsers),
      tls: tls.client,
    });
    // As Sweden's liaison, the only Swedish party whose account reaches the link.
    const seNc = await connect({
      servers: fed.server("se").url,
      ...login(seUsers, "se:liaison"),
      tls: tls.client,
      inboxPrefix: inboxPrefixOf("se:liaison"),
    });
    try {
      await provisionCountry(
        noNc,
        await jetstreamManager(noNc),
        norway.trustList,
        norway.trustListJws,
      );
      const id = randomUUID();
      const bytes = new TextEncoder().encode(`referral ${id}`);
      // Until the link's interest has propagated there are no responders: retry with the same id.
      const ack = await waitForValue(
        () =>
          jetstream(seNc)
            .publish("stafett.no.in.se.opened", bytes, { msgID: id, timeout: 2_000 })
            .catch(() => undefined),
        {
          timeoutMs: 15_000,
          intervalMs: 200,
          message: "a PubAck from Norway's stream over the link",
        },
      );
      expect(ack).toMatchObject({ stream: "STAFETT_NO", domain: "no" });
      const consumer = await jetstream(noNc).consumers.get("STAFETT_NO", "no-liaison-in");
      const msg = await consumer.next({ expires: 5_000 });
      expect(msg?.subject).toBe("stafett.no.in.se.opened");
      expect(msg?.headers?.get("Nats-Msg-Id")).toBe(id);
      expect(new TextDecoder().decode(msg?.data)).toBe(`referral ${id}`);
      msg?.ack();
    } finally {
      await seNc.close();
      await noNc.close();
    }
  });
});
