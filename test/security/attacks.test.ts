/**
 * The broker layer under attack, by whoever holds one organisation's credentials, and by a
 * partner country that controls its own broker, on both ends of a link: Sweden's broker connects
 * out to a hostile Norway and accepts a hostile Denmark, each configured by the attacker (its
 * link lands in an account with no limits at all). Sweden runs `countryServerConfig` unchanged.
 *
 * Each attacker tries every JetStream reply carrier it has (a pull's status, a PubAck, API
 * answers, the trust bucket's direct get, acks) with a reply subject naming every damaging API
 * verb (in the plain, the organisation's `JS.API` and the domain's `$JS.se.API` spelling), writes
 * into the trust bucket and the quarantine, forged events; publishes and requests everything it
 * may not, directly; listens to everything; and fills the disk. An observer in the streams'
 * account records everything that lands there: no request of any damaging verb may arrive, and
 * no reply may land on an event, bucket or quarantine subject. Meanwhile referrals flow, and
 * referrals left pending before the attacks are delivered after them.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import {
  connect,
  headers as natsHeaders,
  nkeyAuthenticator,
  type Msg,
  type NatsConnection,
} from "@nats-io/transport-node";
import {
  createCountry,
  LocalCountry,
  startServer,
  waitFor,
  waitForValue,
  type Country,
  type NatsServer,
} from "@stafett/devkit";
import {
  consumersOf,
  countryServerConfig,
  createBrokerUsers,
  createLogger,
  EVENT_TYPES,
  generateSigningKey,
  inboxPrefixOf,
  ORG_API_PREFIX,
  publishSubjects,
  quarantineStreamName,
  streamName,
  subjectFor,
  type BrokerUsers,
} from "@stafett/shared";
import { caseKeys, openTo, sendReferrals } from "../support/flow.js";
import { addStreamsObserver, observeStreams } from "../support/observer.js";

/** An answer of the organisation's own JetStream: an error (nothing done), or its own limits. */
function isOwnAccountAnswer(text: string): boolean {
  try {
    const a = JSON.parse(text) as {
      type?: string;
      error?: unknown;
      limits?: { max_memory?: number };
    };
    if (a.error !== undefined) return true;
    return (
      a.type === "io.nats.jetstream.api.v1.account_info_response" && a.limits?.max_memory === 65_536
    );
  } catch {
    return false;
  }
}

const log = createLogger({ service: "attacks", level: process.env.LOG_LEVEL ?? "silent" });
const S = streamName("se");
const Q = quarantineStreamName("se");
const KV = "KV_stafett-trust";
/** Small enough that filling the stream takes a second. */
const STREAM_MAX_BYTES = 4 * 1024 * 1024;
/** Larger than the stream, so a full stream's junk copied there evicts nothing older. */
const QUARANTINE_MAX_BYTES = 64 * 1024 * 1024;
const linkSecret = { no: randomUUID(), dk: randomUUID() };
const observerPassword = randomUUID();
const evilPassword = randomUUID();

let country: Country;
let users: BrokerUsers;
let se: LocalCountry;
let seServer: NatsServer;
let hostileNo: NatsServer;
let hostileDk: NatsServer;
let admin: NatsConnection;
let jsm: JetStreamManager;
let observer: NatsConnection;
/** Everything that landed in the STAFETT account: subject, a reply or not, and how it starts. */
const landed: { subject: string; reply: boolean; text: string }[] = [];

/** Attackers holding an organisation's credentials: one of each role. */
const ORG_ATTACKERS = [
  "se:municipality:1880",
  "se:hub:stockholm",
  "se:coordinator",
  "se:liaison",
] as const;
const durables = (): string[] =>
  country.trustList.organisations.flatMap((o) => consumersOf(o.id).map((c) => c.durable));

/** What would do damage if it reached the streams' account, without a prefix. */
function verbs(): string[] {
  return [
    `STREAM.DELETE.${S}`,
    `STREAM.PURGE.${S}`,
    `STREAM.UPDATE.${S}`,
    `STREAM.MSG.DELETE.${S}`,
    `STREAM.DELETE.${Q}`,
    `STREAM.PURGE.${Q}`,
    `STREAM.DELETE.${KV}`,
    `STREAM.PURGE.${KV}`,
    `STREAM.MSG.DELETE.${KV}`,
    `STREAM.CREATE.SNEAKY`,
    `CONSUMER.CREATE.${S}`,
    `CONSUMER.DURABLE.CREATE.${S}.sneaky`,
    `CONSUMER.CREATE.${KV}`,
    ...durables().map((d) => `CONSUMER.DELETE.${S}.${d}`),
    `CONSUMER.DELETE.${KV}.sneaky`,
    `INFO`,
  ];
}

/** Every spelling of every damaging verb, and the writes to the bucket and quarantine. */
function targets(): string[] {
  return [
    ...verbs().flatMap((v) => [`$JS.API.${v}`, `${ORG_API_PREFIX}.${v}`, `$JS.se.API.${v}`]),
    "$KV.stafett-trust.se",
    "stafett-quarantine.se.se-hub-vast.ERR_FORGED",
  ];
}

/** An entry quarantined before the attacks (by the provisioner), which must still be there after. */
const MARKER = "stafett-quarantine.se.se-hub-vast.ERR_MARKER";

/** A damaging API request in STAFETT: a verb the services never use. */
const DAMAGING =
  /^\$JS\.API\.(STREAM\.(DELETE|PURGE|UPDATE|MSG\.DELETE|CREATE)|CONSUMER\.(CREATE|DURABLE|DELETE))/;

beforeAll(async () => {
  const [anchor, noAnchor, dkAnchor] = await Promise.all([
    generateSigningKey(),
    generateSigningKey(),
    generateSigningKey(),
  ]);
  country = await createCountry({
    code: "se",
    municipalities: ["0180", "1480", "1490", "1880"],
    anchor,
    partnerAnchors: [
      { country: "no", anchors: [noAnchor.publicJwk] },
      { country: "dk", anchors: [dkAnchor.publicJwk] },
    ],
  });
  users = createBrokerUsers(country.trustList);
  // The hostile partners: whatever comes over the link lands in an account with no limits.
  const evilAccount = (linkUser: string, password: string) => ({
    EVIL: {
      users: [
        { user: linkUser, password },
        { user: "evil", password: evilPassword },
      ],
    },
  });
  hostileNo = await startServer({
    name: "hostile-no",
    jetstream: { domain: "no" },
    config: {
      leafnodes: { host: "127.0.0.1", port: -1 },
      accounts: evilAccount("link-se", linkSecret.no),
    },
  });
  const config = countryServerConfig({
    country: "se",
    storeDir: "",
    trustList: country.trustList,
    nkeys: users.nkeys,
    port: -1,
    leafPort: -1,
    accepts: [{ partner: "dk", credentials: { user: "link-dk", password: linkSecret.dk } }],
    connects: [
      {
        partner: "no",
        url: `nats-leaf://127.0.0.1:${await hostileNo.leafPort()}`,
        credentials: { user: "link-se", password: linkSecret.no },
      },
    ],
  });
  delete (config.jetstream as Record<string, unknown>).store_dir;
  // The test's observer: a second user in the streams' account that only listens.
  addStreamsObserver(config, observerPassword);
  seServer = await startServer({ name: "stafett-se", jetstream: { domain: "se" }, config });
  hostileDk = await startServer({
    name: "hostile-dk",
    jetstream: { domain: "dk" },
    config: {
      leafnodes: {
        remotes: [
          {
            url: `nats-leaf://link-dk:${linkSecret.dk}@127.0.0.1:${await seServer.leafPort()}`,
            account: "EVIL",
          },
        ],
      },
      accounts: { EVIL: { users: [{ user: "evil", password: evilPassword }] } },
    },
  });
  se = await LocalCountry.start({
    country,
    municipalities: [],
    natsUrl: seServer.url,
    nkeys: users.seeds,
    log,
    servicesOff: true,
    tickMs: 250,
    provision: { maxBytes: STREAM_MAX_BYTES, quarantineMaxBytes: QUARANTINE_MAX_BYTES },
  });
  // Every service but Borås's gateway: what is forwarded to Borås waits in the stream.
  await Promise.all([
    ...["se:hub:stockholm", "se:hub:vast", "se:hub:bergslagen"].map((id) => se.startHub(id)),
    ...["0180", "1480", "1880"].map((c) => se.startGateway(`se:municipality:${c}`)),
    se.startCoordinator(),
    se.startLiaison(),
  ]);
  admin = await connect({ servers: seServer.url, ...se.admin });
  jsm = await jetstreamManager(admin);
  observer = await observeStreams(seServer, observerPassword, (m) => {
    landed.push({
      subject: m.subject,
      reply: looksLikeReply(m),
      text: new TextDecoder().decode(m.data.subarray(0, 48)),
    });
  });
  await waitForValue(
    async () =>
      (await seServer.monitor<{ leafnodes: number }>("/leafz")).leafnodes === 2 ? true : undefined,
    { timeoutMs: 10_000, message: "both links up" },
  );
}, 60_000);

afterAll(async () => {
  await observer?.close();
  await admin?.close();
  await se?.stop();
  await hostileDk?.stop();
  await seServer?.stop();
  await hostileNo?.stop();
});

/** A JetStream answer (API JSON, PubAck, status) rather than an event or a trust list. */
function looksLikeReply(m: Msg): boolean {
  if (m.headers?.code !== undefined && m.headers.code !== 0) return true;
  const text = new TextDecoder().decode(m.data.subarray(0, 64));
  return /^\{"(type|stream|error|domain)"/.test(text);
}

/** The state that must be intact after every attack. */
async function snapshot() {
  const stream = await jsm.streams.info(S);
  const quarantine = await jsm.streams.info(Q);
  const bucket = await jsm.streams.info(KV);
  const consumers: Record<string, unknown> = {};
  for await (const c of jsm.consumers.list(S)) consumers[c.name] = c.config;
  const trust = await jsm.streams.getMessage(KV, { last_by_subj: "$KV.stafett-trust.se" });
  return {
    configs: [stream.config, quarantine.config, bucket.config],
    consumers,
    trust: { seq: trust?.seq, data: trust?.string() },
    quarantineFirst: quarantine.state.first_seq,
    marker: (await jsm.streams.getMessage(Q, { last_by_subj: MARKER }))?.seq,
  };
}

async function expectIntact(before: Awaited<ReturnType<typeof snapshot>>): Promise<void> {
  const after = await snapshot();
  expect(after.configs).toEqual(before.configs);
  expect(after.consumers).toEqual(before.consumers);
  expect(after.trust).toEqual(before.trust);
  // Not purged, nothing deleted: the entry there before the attacks is still the first one.
  expect(after.quarantineFirst).toBe(before.quarantineFirst);
  expect(after.marker).toBe(before.marker);
  // Nothing reached the streams' account as a damaging request or as a reply on a data subject.
  expect(landed.filter((l) => DAMAGING.test(l.subject)).map((l) => l.subject)).toEqual([]);
  expect(
    landed
      .filter((l) => l.reply && /^(stafett\.|stafett-quarantine\.|\$KV\.)/.test(l.subject))
      .map((l) => l.subject),
  ).toEqual([]);
  const forged = await jsm.streams.info(Q, {
    subjects_filter: "stafett-quarantine.se.*.ERR_FORGED",
  });
  expect(forged.state.subjects ?? {}).toEqual({});
}

const login = (org: string) => ({
  servers: seServer.url,
  authenticator: nkeyAuthenticator(users.seeds.get(org) ?? new Uint8Array()),
});

/**
 * Sends `carrier` with reply `target` and waits (deadline 5 s) until its answer lands on `target`
 * in `nc`'s own account: where the answer went, not into the streams' account.
 */
async function injectVia(
  nc: NatsConnection,
  target: string,
  carrier: (reply: string) => void,
  answered = true,
): Promise<void> {
  // A broker with a JetStream domain maps `$JS.<domain>.API.>` to `$JS.API.>` in every account:
  // an answer sent there arrives, still in the attacker's account, on the plain spelling.
  const where = [target, target.replace(/^\$JS\.se\.API\./, "$JS.API.")];
  let got: string | undefined;
  const arrived = new Promise<void>((resolve) => {
    const subs = [...new Set(where)].map((subject) =>
      nc.subscribe(subject, {
        max: 1,
        callback: (_e, m) => {
          got = m.subject;
          for (const s of subs) s.unsubscribe();
          resolve();
        },
      }),
    );
    if (!answered)
      setImmediate(() => {
        for (const s of subs) s.unsubscribe();
        resolve();
      });
  });
  await nc.flush();
  carrier(target);
  await nc.flush();
  if (!answered) return;
  await waitFor(() => got !== undefined, {
    timeoutMs: 5_000,
    message: `the answer to a carrier aimed at ${target}, in the attacker's own account`,
  });
  await arrived;
  expect(where).toContain(got);
}

describe("attacks on the broker, as every role and as a partner on both ends of a link", () => {
  const pending: string[] = [];
  const flow: string[] = [];
  let flowing: Promise<void>;
  let before: Awaited<ReturnType<typeof snapshot>>;

  it("referrals to Borås wait in the stream; the handoff from Stockholm to Göteborg runs", async () => {
    const stockholm = se.gateway("0180").gateway;
    for (const i of [0, 1, 2]) pending.push(await openTo(stockholm, "1490", i));
    await waitFor(
      async () =>
        (await jsm.consumers.info(S, "se-municipality-1490")).num_pending === pending.length,
      { timeoutMs: 10_000, message: "the forwards to Borås pending in the stream" },
    );
    await jetstream(admin).publish(MARKER, "before the attacks");
    before = await snapshot();
    expect(before.marker).toBe(before.quarantineFirst);
    // Runs through every attack below.
    flowing = sendReferrals(stockholm, caseKeys(12), flow).then(() => undefined);
  });

  it.each(ORG_ATTACKERS)(
    "%s: every reply carrier, aimed at every damaging verb, answers into its own account",
    async (org) => {
      const nc = await connect(login(org));
      try {
        const own = consumersOf(org)[0]?.durable ?? "";
        const allowed = publishSubjects(org, country.trustList)[0] ?? "";
        const js = jetstream(nc);
        const failing = natsHeaders();
        failing.set("Nats-Expected-Stream", "NOT_THIS_ONE");
        for (const target of targets()) {
          // A pull's status (no message waiting, or one: either way an answer to the reply).
          await injectVia(nc, target, (reply) =>
            nc.publish(
              `${ORG_API_PREFIX}.CONSUMER.MSG.NEXT.${S}.${own}`,
              JSON.stringify({ batch: 1, no_wait: true }),
              { reply },
            ),
          );
          // An API answer about its own consumer, and the trust bucket's direct get.
          await injectVia(nc, target, (reply) =>
            nc.publish(`${ORG_API_PREFIX}.CONSUMER.INFO.${S}.${own}`, "", { reply }),
          );
          await injectVia(nc, target, (reply) =>
            nc.publish(`${ORG_API_PREFIX}.DIRECT.GET.${KV}.$KV.stafett-trust.se`, "", { reply }),
          );
          // PubAcks: an error one (nothing stored), and from its own quarantine subject.
          await injectVia(nc, target, (reply) =>
            nc.publish(allowed, "junk", { reply, headers: failing }),
          );
          await injectVia(nc, target, (reply) =>
            nc.publish(`stafett-quarantine.se.${own}.ERR_PROBE`, "", { reply, headers: failing }),
          );
          // An ack (no answer is promised).
          await injectVia(
            nc,
            target,
            (reply) => nc.publish(`$JS.ACK.${S}.${own}.1.1.1.1.0`, "+ACK", { reply }),
            false,
          );
          if (org.startsWith("se:municipality:"))
            await injectVia(nc, target, (reply) =>
              nc.publish(`${ORG_API_PREFIX}.STREAM.INFO.${S}`, "", { reply }),
            );
        }
        // A PubAck of a stored message too (the junk is its addressee's to quarantine).
        for (const target of [`$JS.API.STREAM.DELETE.${S}`, `$JS.API.STREAM.PURGE.${S}`])
          await injectVia(nc, target, (reply) => nc.publish(allowed, "junk", { reply }));
        // The positive control: what it may do, it can.
        expect((await js.publish(`stafett-quarantine.se.${own}.ERR_PROBE`, "")).stream).toBe(Q);
      } finally {
        await nc.close();
      }
      await expectIntact(before);
    },
  );

  it.each(ORG_ATTACKERS)(
    "%s: every publish and request outside its allowance goes nowhere",
    async (org) => {
      const nc = await connect(login(org));
      try {
        const allowed = new Set(publishSubjects(org, country.trustList));
        const js = jetstream(nc);
        // Every event subject of every address in the list, and addresses that do not exist.
        const everything = new Set<string>();
        for (const to of country.trustList.organisations)
          for (const type of EVENT_TYPES)
            for (const from of country.trustList.organisations)
              if (from.id !== to.id)
                everything.add(
                  subjectFor({ type, source: from.id, addressee: to.id, partnerCountry: "no" }),
                );
        for (const s of [
          // Addresses the list does not name: in a region an import covers with a wildcard
          // (receipts), the stream stores nothing for them.
          "stafett.se.vast.9999.received",
          "stafett.se.bergslagen.0000.rejected",
          "stafett.se.vast.9999.opened",
          "stafett.se.atlantis.hub.opened",
          "stafett.se.out.zz.opened",
          "stafett.se.in.no.opened",
          "stafett.se.in.se.opened",
          "stafett.se.national.hub.opened",
          "stafett.no.in.se.opened",
        ])
          everything.add(s);
        let refused = 0;
        for (const subject of everything) {
          if (allowed.has(subject)) continue;
          if (org === "se:liaison" && /^stafett\.(no|dk)\.in\.se\./.test(subject)) continue;
          // A publish that reached a stream would get a PubAck; here nothing answers.
          const stored = await js.publish(subject, "junk", { timeout: 2_000 }).then(
            () => true,
            () => false,
          );
          expect({ subject, stored }).toEqual({ subject, stored: false });
          refused++;
        }
        expect(refused).toBeGreaterThan(50);
        // Requests to every target, others' consumers and others' quarantine subjects: fired all
        // at once with one reply subject; then requests it may make, which are answered.
        const own = consumersOf(org).map((c) => c.durable);
        const forbidden = [
          ...targets(),
          ...durables()
            .filter((d) => !own.includes(d))
            .flatMap((d) => [
              `${ORG_API_PREFIX}.CONSUMER.MSG.NEXT.${S}.${d}`,
              `$JS.API.CONSUMER.MSG.NEXT.${S}.${d}`,
              `${ORG_API_PREFIX}.CONSUMER.INFO.${S}.${d}`,
              `stafett-quarantine.se.${d}.ERR_FORGED`,
            ]),
        ];
        const answers: string[] = [];
        const inbox = `${inboxPrefixOf(org)}.attack.${randomUUID()}`;
        nc.subscribe(inbox, {
          callback: (_e, m) => {
            // "No responders" is the answer of an account where nothing listens. $JS.API.> in
            // the organisation's own account reaches its own small JetStream (its clock
            // stream), which holds none of the targets: it answers each with an error, and
            // $JS.API.INFO with its own account's 64 KiB. Anything else came from STAFETT.
            if (m.headers?.code === 503 || isOwnAccountAnswer(m.string())) return;
            answers.push(`${m.headers?.code ?? ""} ${m.string().slice(0, 80)}`);
          },
        });
        for (const subject of forbidden)
          nc.publish(subject, JSON.stringify({ batch: 1, no_wait: true }), { reply: inbox });
        await nc.flush();
        expect(
          (await nc.request(`${ORG_API_PREFIX}.CONSUMER.INFO.${S}.${own[0] ?? ""}`)).json<{
            name: string;
          }>().name,
        ).toBe(own[0]);
        await nc.request(
          `${ORG_API_PREFIX}.CONSUMER.MSG.NEXT.${S}.${own[0] ?? ""}`,
          JSON.stringify({ batch: 1, no_wait: true }),
        );
        expect(answers).toEqual([]);
      } finally {
        await nc.close();
      }
      await expectIntact(before);
    },
  );

  it("a party's deliveries are not lost to empty messages others send it", async () => {
    // Anyone who may address the hub can send it an empty message; nats-server 2.9 ends a
    // streamed response across an import at such a message. One message per pull loses nothing.
    const nc = await connect(login("se:municipality:1880"));
    try {
      const before = (await jsm.consumers.info(S, "se-hub-vast")).num_redelivered;
      const ids: string[] = [];
      const sending = sendReferrals(se.gateway("0180").gateway, caseKeys(6), ids);
      for (let i = 0; i < 30; i++) {
        nc.publish("stafett.se.vast.hub.received", new Uint8Array(0));
        await nc.flush();
      }
      await sending;
      await waitFor(
        () => ids.every((id) => se.gateway("1480").gateway.inboxItem(id) !== undefined),
        { timeoutMs: 4_000, message: "the referrals at Göteborg, before any ack wait ran out" },
      );
      expect((await jsm.consumers.info(S, "se-hub-vast")).num_redelivered).toBe(before);
    } finally {
      await nc.close();
    }
  });

  it.each([
    ["no", "Sweden connects out to it"],
    ["dk", "it connects in to Sweden"],
  ] as const)(
    "partner %s (%s) reaches no JetStream API of Sweden's and only Sweden's inbound subjects",
    async (cc, _how) => {
      const server = cc === "no" ? hostileNo : hostileDk;
      const evil = await connect({ servers: server.url, user: "evil", pass: evilPassword });
      try {
        const seen: string[] = [];
        evil.subscribe(">", {
          callback: (_e, m) => {
            seen.push(m.subject);
          },
        });
        const inbound = `stafett.se.in.${cc}.received`;
        // Once the link carries this, it carries what was published before it too (in order).
        const barrier = async (): Promise<void> => {
          const marker = randomUUID();
          await waitFor(
            () => {
              evil.publish(inbound, marker);
              return landed.some((l) => l.subject === inbound);
            },
            { timeoutMs: 10_000, intervalMs: 100, message: "the inbound subject to cross" },
          );
          const count = landed.filter((l) => l.subject === inbound).length;
          evil.publish(inbound, marker);
          await evil.flush();
          await waitFor(() => landed.filter((l) => l.subject === inbound).length > count, {
            timeoutMs: 5_000,
            message: "the barrier to cross",
          });
        };
        await barrier();
        const failing = natsHeaders();
        failing.set("Nats-Expected-Stream", "NOT_THIS_ONE");
        for (const target of targets()) {
          // Directly, in every spelling, and as the reply of what the link lets through.
          evil.publish(target, "{}");
          evil.publish(inbound, "junk", { reply: target, headers: failing });
        }
        const mine = new Set([...targets(), inbound]);
        const junk = `junk-${randomUUID()}`;
        for (const s of [
          "stafett.se.vast.1480.opened",
          "stafett.se.vast.hub.opened",
          `stafett.se.out.${cc}.opened`,
          "stafett-quarantine.se.se-hub-vast.ERR_FORGED",
          `$JS.ACK.${S}.se-hub-vast.1.1.1.1.0`,
        ]) {
          mine.add(s);
          evil.publish(s, junk);
        }
        await evil.flush();
        await barrier();
        // Domestic traffic meanwhile: nothing of it reaches the partner.
        const ids = await sendReferrals(se.gateway("0180").gateway, caseKeys(2));
        await waitFor(
          () => ids.every((id) => se.gateway("1480").gateway.inboxItem(id) !== undefined),
          { timeoutMs: 10_000, message: "domestic traffic during the attack" },
        );
        await barrier();
        // All it heard is what it sent itself, and the answers to it (replies, on its own subjects).
        expect(seen.filter((s) => !mine.has(s) && !s.startsWith("_INBOX."))).toEqual([]);
        // Nothing it published outside Sweden's inbound subjects reached Sweden's streams' account.
        expect(landed.filter((l) => l.text === junk).map((l) => l.subject)).toEqual([]);
      } finally {
        await evil.close();
      }
      await expectIntact(before);
    },
  );

  it("an organisation listening to everything in its account hears nothing of others", async () => {
    const spies = await Promise.all(
      ORG_ATTACKERS.map(async (org) => {
        const nc = await connect(login(org));
        const heard: string[] = [];
        nc.subscribe(">", {
          callback: (_e, m) => {
            heard.push(m.subject);
          },
        });
        await nc.flush();
        return { org, nc, heard };
      }),
    );
    try {
      const ids = await sendReferrals(se.gateway("0180").gateway, caseKeys(3));
      await waitFor(
        () => ids.every((id) => se.gateway("1480").gateway.inboxItem(id) !== undefined),
        {
          timeoutMs: 10_000,
          message: "three referrals through Väst",
        },
      );
      for (const spy of spies) {
        // Its own organisation's traffic (its service's deliveries and replies) is its own.
        const own = consumersOf(spy.org);
        const mine = (s: string): boolean =>
          own.some(
            (c) =>
              s.startsWith(c.filter.slice(0, -1)) || s.startsWith(`$JS.ACK.${S}.${c.durable}.`),
          ) || s.startsWith(`${inboxPrefixOf(spy.org)}.`);
        const foreign = spy.heard.filter(
          (s) =>
            !mine(s) &&
            (s.startsWith("stafett.") ||
              s.startsWith("$JS.ACK.") ||
              s.startsWith("_INBOX") ||
              s.startsWith("$JS.API.")),
        );
        expect({ org: spy.org, foreign }).toEqual({ org: spy.org, foreign: [] });
      }
    } finally {
      await Promise.all(spies.map((s) => s.nc.close()));
    }
  });

  it("filling the broker's disk stops at the stream's limits; the handoff resumes", async () => {
    const nc = await connect(login("se:municipality:1880"));
    try {
      // The broker tells each connection the account's payload limit, and the client keeps to it.
      expect(nc.info?.max_payload).toBe(320 * 1024);
      const js = jetstream(nc);
      await expect(
        js.publish("stafett.se.bergslagen.hub.opened", new Uint8Array(400 * 1024)),
      ).rejects.toThrow();
      // Larger than any event the receivers accept: the stream refuses it.
      await expect(
        js.publish("stafett.se.bergslagen.hub.opened", new Uint8Array(300 * 1024)),
      ).rejects.toThrow(/message size exceeds/i);
      // Flood until the stream refuses (the hub drains what it refuses as fast as it can).
      let full = 0;
      const junk = new Uint8Array(256 * 1024).fill(7);
      for (let round = 0; round < 10 && full === 0; round++) {
        await Promise.all(
          Array.from({ length: 32 }, () =>
            js.publish("stafett.se.bergslagen.hub.opened", junk).catch((err: unknown) => {
              if (/maximum bytes exceeded/i.test(String(err))) full++;
              else throw err;
            }),
          ),
        );
      }
      expect(full).toBeGreaterThan(0);
      const info = await jsm.streams.info(S);
      expect(info.state.bytes).toBeLessThanOrEqual(STREAM_MAX_BYTES);
      expect((await jsm.getAccountInfo()).storage).toBeLessThan(
        STREAM_MAX_BYTES + QUARANTINE_MAX_BYTES + 64 * 1024 * 1024,
      );
    } finally {
      await nc.close();
    }
    // The hub quarantines the junk, the stream drains, and the flow goes on.
    await waitFor(
      async () => (await jsm.consumers.info(S, "se-hub-bergslagen")).num_pending === 0,
      { timeoutMs: 20_000, message: "the junk drained" },
    );
    await expectIntact(before);
  });

  it("afterwards every referral is delivered: those pending before, and those sent during the attacks", async () => {
    await flowing;
    const stockholm = se.gateway("0180").gateway;
    const types = (id: string) => stockholm.referral(id)?.timeline.map((e) => e.type) ?? [];
    await waitFor(
      () =>
        flow.every(
          (id) =>
            se.gateway("1480").gateway.inboxItem(id) !== undefined &&
            types(id).includes("received") &&
            types(id).includes("forwarded"),
        ),
      { timeoutMs: 60_000, message: "every referral sent during the attacks, delivered" },
    );
    for (const id of flow)
      expect({ id, received: types(id).filter((t) => t === "received").length }).toEqual({
        id,
        received: 1,
      });
    await se.startGateway("se:municipality:1490");
    await waitFor(
      () => pending.every((id) => se.gateway("1490").gateway.inboxItem(id) !== undefined),
      { timeoutMs: 20_000, message: "the referrals that waited for Borås" },
    );
    await expectIntact(before);
  }, 90_000);
});
