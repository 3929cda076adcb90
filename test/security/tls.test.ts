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
import {
  connect,
  nkeyAuthenticator,
  type ConnectionOptions,
  type NatsConnection,
} from "@nats-io/transport-node";
import {
  startFederation,
  startServer,
  waitForValue,
  type Federation,
  type NatsServer,
} from "@stafett/devkit";
import {
  countryServerConfig,
  createBrokerUsers,
  createCountry,
  generateSigningKey,
  inboxPrefixOf,
  provisionCountry,
  PROVISIONER,
  type BrokerUsers,
  type Country,
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

/** Connects, expecting a refusal; returns the error's name (a connection never established). */
async function refused(options: ConnectionOptions): Promise<string> {
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ ...options, reconnect: false, timeout: 5_000 });
  } catch (err) {
    return (err as Error).name;
  }
  await nc.close();
  return "connected";
}

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
    const attempt = await plaintextAttempt(
      broker.port,
      `CONNECT ${JSON.stringify({ user: "stafett", pass: randomUUID(), verbose: false, pedantic: false, tls_required: false })}`,
    );
    expect(attempt.info.tls_required).toBe(true);
    expect(attempt.closed).toBe(true);
    expect(attempt.reply).not.toContain("PONG");
    expect(attempt.reply).not.toContain("+OK");
  });

  it("a client that does not trust the CA, or has no client certificate, is refused", async () => {
    // nats.js upgrades to TLS when the server requires it; without the CA the server is unknown.
    expect(await refused({ servers: broker.url, ...login(users) })).not.toBe("connected");
    // The CA but no client certificate: the server verifies clients (verify: true).
    expect(
      await refused({ servers: broker.url, ...login(users), tls: { caFile: ca.caFile } }),
    ).not.toBe("connected");
    // A certificate from another CA.
    const otherDir = mkdtempSync(join(tmpdir(), "stafett-tls-other-"));
    try {
      const other = createTestCa(otherDir);
      expect(
        await refused({
          servers: broker.url,
          ...login(users),
          tls: { caFile: ca.caFile, certFile: other.clientCertFile, keyFile: other.clientKeyFile },
        }),
      ).not.toBe("connected");
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
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
    const attempt = await plaintextAttempt(
      await fed.server("no").leafPort(),
      `CONNECT ${JSON.stringify({ user: "link-se", pass: "not-needed-to-be-refused", tls_required: false })}`,
    );
    expect(attempt.info.tls_required).toBe(true);
    expect(attempt.closed).toBe(true);
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
