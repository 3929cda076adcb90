/**
 * A hostile operator of the federation's hub, at the other end of Sweden's one link to it: the
 * "hub" is a broker the attacker configured (Sweden's link lands in an account with no limits),
 * Sweden runs `countryServerConfig` with the hub link unchanged. From there the attacker
 * publishes into domestic subjects, the JetStream API in every spelling, the trust bucket and the
 * quarantine, directly and as the reply of what the link lets through, and listens to
 * everything. An observer in Sweden's streams' account records what lands there. (The same
 * attacks on a direct link: test/security/attacks.test.ts.)
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import {
  createCountry,
  LocalCountry,
  startServer,
  waitFor,
  type NatsServer,
} from "@stafett/devkit";
import { addStreamsObserver, observeStreams } from "../support/observer.js";
import {
  countryServerConfig,
  createBrokerUsers,
  createLogger,
  generateSigningKey,
  quarantineStreamName,
  streamName,
  VIA_HUB,
} from "@stafett/shared";

const log = createLogger({ service: "attacks", level: process.env.LOG_LEVEL ?? "silent" });
const S = streamName("se");
const Q = quarantineStreamName("se");
const KV = "KV_stafett-trust";
const linkSecret = randomUUID();
const evilPassword = randomUUID();
const observerPassword = randomUUID();
let hub: NatsServer;
let seServer: NatsServer;
let se: LocalCountry;
let admin: NatsConnection;
let jsm: JetStreamManager;
let observer: NatsConnection;
/** Everything that landed in Sweden's STAFETT account: subject, and how it starts. */
const landed: { subject: string; text: string }[] = [];

beforeAll(async () => {
  const noAnchor = await generateSigningKey();
  const country = await createCountry({
    code: "se",
    municipalities: ["1480"],
    partnerAnchors: [{ country: "no", anchors: [noAnchor.publicJwk] }],
  });
  const users = createBrokerUsers(country.trustList);
  hub = await startServer({
    name: "hostile-hub",
    jetstream: false,
    config: {
      // The attacker's hub takes its own client's big messages.
      max_payload: 8 * 1024 * 1024,
      leafnodes: { host: "127.0.0.1", port: -1 },
      accounts: {
        EVIL: {
          users: [
            { user: "link-se", password: linkSecret },
            { user: "evil", password: evilPassword },
          ],
        },
      },
    },
  });
  const config = countryServerConfig({
    country: "se",
    storeDir: "",
    trustList: country.trustList,
    nkeys: users.nkeys,
    port: -1,
    connects: [
      {
        partner: VIA_HUB,
        url: `nats-leaf://127.0.0.1:${await hub.leafPort()}`,
        credentials: { user: "link-se", password: linkSecret },
      },
    ],
  });
  delete (config.jetstream as Record<string, unknown>).store_dir;
  addStreamsObserver(config, observerPassword);
  seServer = await startServer({ name: "stafett-se", jetstream: { domain: "se" }, config });
  se = await LocalCountry.start({
    country,
    municipalities: [],
    natsUrl: seServer.url,
    nkeys: users.seeds,
    log,
    servicesOff: true,
  });
  admin = await connect({ servers: seServer.url, ...se.admin });
  jsm = await jetstreamManager(admin);
  observer = await observeStreams(seServer, observerPassword, (m) => {
    landed.push({ subject: m.subject, text: new TextDecoder().decode(m.data.subarray(0, 48)) });
  });
  await waitFor(
    async () => (await seServer.monitor<{ leafnodes: number }>("/leafz")).leafnodes === 1,
    { timeoutMs: 10_000, message: "Sweden's link to the hub" },
  );
}, 60_000);

afterAll(async () => {
  await observer?.close();
  await admin?.close();
  await se?.stop();
  await seServer?.stop();
  await hub?.stop();
});

/** Damaging JetStream verbs in every spelling, the bucket, the quarantine, domestic subjects. */
const TARGETS = [
  ...[
    `STREAM.DELETE.${S}`,
    `STREAM.PURGE.${S}`,
    `STREAM.DELETE.${Q}`,
    `STREAM.DELETE.${KV}`,
    `CONSUMER.DELETE.${S}.se-liaison-in`,
    `CONSUMER.CREATE.${S}`,
    "INFO",
  ].flatMap((v) => [`$JS.API.${v}`, `$JS.se.API.${v}`, `JS.API.${v}`]),
  "$KV.stafett-trust.se",
  "stafett-quarantine.se.se-liaison-in.ERR_FORGED",
  "stafett.se.vast.hub.opened",
  "stafett.se.vast.1480.forwarded",
  "stafett.se.out.no.opened",
  "stafett.se.national.coordinator.escalated",
];

async function state() {
  const consumers: string[] = [];
  for await (const c of jsm.consumers.list(S)) consumers.push(c.name);
  const trust = await jsm.streams.getMessage(KV, { last_by_subj: "$KV.stafett-trust.se" });
  return {
    configs: [
      (await jsm.streams.info(S)).config,
      (await jsm.streams.info(Q)).config,
      (await jsm.streams.info(KV)).config,
    ],
    consumers: consumers.sort(),
    trust: trust?.seq,
    quarantined: (await jsm.streams.info(Q)).state.messages,
  };
}

describe("a hostile hub, at the other end of Sweden's one link", () => {
  it("reaches no JetStream API of Sweden's and only Sweden's inbound subjects; hears nothing domestic", async () => {
    const before = await state();
    const evil = await connect({ servers: hub.url, user: "evil", pass: evilPassword });
    try {
      const seen: string[] = [];
      /** The API audit advisories the link account's (refused) API requests raise. */
      const audited: string[] = [];
      evil.subscribe(">", {
        callback: (_e, m) => {
          if (m.subject === "$JS.EVENT.ADVISORY.API")
            audited.push((m.json() as { subject?: string }).subject ?? "");
          else seen.push(m.subject);
        },
      });
      await evil.flush();
      const inbound = "stafett.se.in.no.received";
      /** Once the link carries a marker, it has carried what was published before it. */
      const barrier = async (): Promise<void> => {
        const marker = `marker-${randomUUID()}`;
        await waitFor(
          () => {
            evil.publish(inbound, marker);
            return landed.some((l) => l.text === marker);
          },
          { timeoutMs: 10_000, intervalMs: 100, message: "the inbound subject to cross" },
        );
      };
      await barrier();
      const junk = `junk-${randomUUID()}`;
      const failing = natsHeaders();
      failing.set("Nats-Expected-Stream", "NOT_THIS_ONE");
      for (const target of TARGETS) {
        evil.publish(target, junk);
        // As the reply of what the link lets through: the stream's answer goes to `target`.
        evil.publish(inbound, junk, { reply: target, headers: failing });
      }
      // Under another sender's name, and to a third country: also only inbound subjects of ours.
      evil.publish("stafett.se.in.dk.opened", junk);
      await evil.flush();
      // Domestic traffic meanwhile, as a hub would send it: nothing of it reaches the link.
      const domestic = `domestic-${randomUUID()}`;
      admin.publish("stafett.se.vast.hub.opened", domestic);
      await admin.flush();
      await barrier();

      // What it sent reached Sweden only on its inbound subjects.
      expect(
        [...new Set(landed.filter((l) => l.text === junk).map((l) => l.subject))].sort(),
      ).toEqual(["stafett.se.in.dk.opened", inbound].sort());
      expect(landed.some((l) => l.text === domestic)).toBe(true);
      // All it heard is what it sent itself and the answers to it, never Sweden's own traffic.
      const own = new Set([...TARGETS, inbound, "stafett.se.in.dk.opened"]);
      expect(seen.filter((s) => !own.has(s) && !s.startsWith("_INBOX."))).toEqual([]);
      // Sweden's broker refuses the API requests in the link account (it has no JetStream) and
      // audits them there: the audit names the attacker's own requests only.
      expect(audited.filter((s) => !own.has(s))).toEqual([]);
      expect(await state()).toEqual(before);
    } finally {
      await evil.close();
    }
  });

  it("a municipality of Sweden reaches through the wildcards only its own liaison's out subjects", async () => {
    // Through the hub, a domestic party's `out` subjects and trust keys are wildcards (any
    // partner): it stores `out.<any>` for the liaison, whose outbound policy takes only partners
    // the list names (`unknown_partner`). The link account stays out of its reach.
    const muni = await connect({
      servers: seServer.url,
      ...se.connectionOf("se:municipality:1480"),
    });
    const evil = await connect({ servers: hub.url, user: "evil", pass: evilPassword });
    try {
      const heard: string[] = [];
      evil.subscribe(">", { callback: (_e, m) => void heard.push(m.subject) });
      await evil.flush();
      const tag = `muni-${randomUUID()}`;
      const answers: Record<string, string> = {};
      for (const subject of [
        "stafett.no.in.se.opened",
        "stafett.se.in.no.opened",
        "stafett.se.out.zz.opened",
        "stafett.se.out.se.opened",
      ]) {
        answers[subject] = await muni.request(subject, tag, { timeout: 1_000 }).then(
          (m) => (m.string().includes('"stream"') ? "stored" : "refused"),
          () => "no route",
        );
      }
      expect(answers).toEqual({
        "stafett.no.in.se.opened": "no route",
        "stafett.se.in.no.opened": "no route",
        "stafett.se.out.zz.opened": "stored",
        "stafett.se.out.se.opened": "stored",
      });
      // A trust list it can read (any key), not write.
      const put = await muni.request("$KV.stafett-trust.zz", "forged", { timeout: 1_000 }).then(
        () => "answered",
        () => "no route",
      );
      expect(put).toBe("no route");
      await muni.flush();
      await new Promise((r) => setTimeout(r, 300));
      expect(heard).toEqual([]);
    } finally {
      await muni.close();
      await evil.close();
    }
  });

  it("sends a message far over max_payload: the link carries it, Sweden's stream stores none of it", async () => {
    // nats-server 2.9.10 holds no leafnode to a max_payload (the link account's 320 KiB included):
    // the stream's max_msg_size is what refuses it (docs/security.md).
    const evil = await connect({ servers: hub.url, user: "evil", pass: evilPassword });
    try {
      const inbound = "stafett.se.in.no.received";
      const bytes = async () => (await jsm.streams.info(S)).state.bytes;
      const before = await bytes();
      const big = new Uint8Array(2 * 1024 * 1024).fill(0x41);
      big.set(new TextEncoder().encode(`big-${randomUUID()}`));
      const bigMarker = new TextDecoder().decode(big.subarray(0, 40));
      evil.publish(inbound, big);
      const marker = `after-${randomUUID()}`;
      evil.publish(inbound, marker);
      await evil.flush();
      // Both crossed the link (in order), so the big one reached the stream and was refused.
      await waitFor(() => landed.some((l) => l.text === marker), {
        timeoutMs: 10_000,
        message: "the marker after the big message",
      });
      expect(landed.some((l) => l.text.startsWith(bigMarker))).toBe(true);
      expect((await bytes()) - before).toBeLessThan(64 * 1024);
      expect((await seServer.monitor<{ leafnodes: number }>("/leafz")).leafnodes).toBe(1);
    } finally {
      await evil.close();
    }
  });
});
