/**
 * Four countries joined through the federation's routing hub (docs/contract.md, "Federation"):
 * Sweden, Norway, Finland and Germany, each broker linked once to a hub without JetStream, with
 * the partnerships se–no, se–fi, no–fi and fi–de, and neither se–de nor no–de. Referrals cross
 * between Sweden and its partners through the real services; every other pair publishes into its
 * partner's stream through its link, as a liaison does. A pair that is not partnered exchanges
 * nothing, and a third country sees nothing of a pair's traffic, through any credentials it has.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type PubAck } from "@nats-io/jetstream";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { referAbroad } from "../support/flow.js";
import {
  startCountries,
  startServer,
  waitFor,
  waitForValue,
  type Countries,
  type NatsServer,
} from "@stafett/devkit";
import {
  createLogger,
  hubAccountOf,
  liaisonId,
  quarantineStreamName,
  streamName,
} from "@stafett/shared";

const log = createLogger({ service: "e2e", level: process.env.LOG_LEVEL ?? "silent" });
const PARTNERSHIPS = [
  ["se", "no"],
  ["se", "fi"],
  ["no", "fi"],
  ["fi", "de"],
] as const;
const NOT_PARTNERS = [
  ["se", "de"],
  ["no", "de"],
] as const;
const MALMO = "1280";
let fed: Countries;
const liaisons = new Map<string, NatsConnection>();

/** A connection as a country's liaison: the only account that reaches the link. */
async function liaisonConnection(cc: string): Promise<NatsConnection> {
  const known = liaisons.get(cc);
  if (known !== undefined) return known;
  const local = fed.of(cc);
  const nc = await connect({
    servers: local.natsUrl,
    name: `test-${cc}-liaison`,
    ...local.connectionOf(liaisonId(cc)),
  });
  liaisons.set(cc, nc);
  return nc;
}

/** What the liaison of `from` publishes into `to`'s inbound subjects, as a JetStream publish. */
async function publishAcross(
  from: string,
  to: string,
  msgID: string,
  timeout = 2_000,
): Promise<PubAck> {
  const js = jetstream(await liaisonConnection(from));
  return js.publish(`stafett.${to}.in.${from}.opened`, new TextEncoder().encode("synthetic"), {
    msgID,
    timeout,
  });
}

/** The last sequence of a country's stream: it grows with every message the stream stores. */
async function lastSeq(cc: string): Promise<number> {
  return fed.of(cc).withAdmin(async (bus) => {
    const jsm = await jetstreamManager(bus.nc);
    return (await jsm.streams.info(streamName(cc))).state.last_seq;
  });
}

beforeAll(async () => {
  fed = await startCountries({
    log,
    countries: ["se", "no", "fi", "de"],
    partnerships: PARTNERSHIPS,
    viaHub: true,
    municipalities: [MALMO],
  });
}, 60_000);

afterAll(async () => {
  await Promise.all([...liaisons.values()].map((nc) => nc.close()));
  await fed?.stop();
});

describe("four countries through a routing hub", () => {
  it("the hub has no JetStream and holds one link per country, each in its own account", async () => {
    const hub = fed.fed.hub;
    if (hub === undefined) throw new Error("no hub");
    expect((await hub.varz()).jetstream).toEqual({});
    const leafz = await hub.monitor<{ leafs: { account: string }[] }>("/leafz");
    expect(leafz.leafs.map((l) => l.account).sort()).toEqual(
      ["de", "fi", "no", "se"].map(hubAccountOf),
    );
  });

  it.each(["no", "fi"])(
    "Malmö's referral reaches %s's liaison through the hub, and the receipt and acceptance come back",
    async (cc) => {
      const partner = fed.of(cc).liaison?.liaison;
      if (partner === undefined) throw new Error(`no liaison in ${cc}`);
      expect(await referAbroad(fed.of("se").gateway(MALMO).gateway, cc, partner)).toEqual([
        "opened",
        "forwarded",
        "received",
        "accepted",
        "closed",
      ]);
      // Arrived once: nothing refused at the partner (a second copy would be a refused replay).
      const refused = await fed.of(cc).withAdmin(async (bus) => {
        const jsm = await jetstreamManager(bus.nc);
        return (await jsm.streams.info(quarantineStreamName(cc))).state.messages;
      });
      expect(refused).toBe(0);
    },
  );

  it.each(PARTNERSHIPS.flatMap(([a, b]) => [[a, b] as const, [b, a] as const]))(
    "%s -> %s: stored by the partner's stream, once",
    async (from, to) => {
      const id = randomUUID();
      const ack = await publishAcross(from, to, id);
      expect(ack).toMatchObject({ stream: streamName(to), domain: to, duplicate: false });
      const again = await publishAcross(from, to, id);
      expect(again).toMatchObject({ stream: streamName(to), seq: ack.seq, duplicate: true });
    },
  );

  it.each(NOT_PARTNERS.flatMap(([a, b]) => [[a, b] as const, [b, a] as const]))(
    "%s -> %s (not partners): refused, and the stream stores nothing",
    async (from, to) => {
      const before = await lastSeq(to);
      await expect(publishAcross(from, to, randomUUID(), 500)).rejects.toThrow();
      // The same link is up, and carries the sender's traffic to a partner (each has Finland).
      expect((await publishAcross(from, "fi", randomUUID())).domain).toBe("fi");
      expect(await lastSeq(to)).toBe(before);
    },
  );

  it("a third country sees nothing of a pair's traffic, through its link user as a client or as a leafnode", async () => {
    const hub = fed.fed.hub;
    if (hub === undefined) throw new Error("no hub");
    const de = fed.fed.links.get("de");
    if (de === undefined) throw new Error("no link user for de");
    // As a client on the hub's client port: the link user may only be a leafnode.
    await expect(
      connect({ servers: hub.url, user: de.user, pass: de.password, reconnect: false }),
    ).rejects.toThrow(/Authorization Violation/i);

    // As a leafnode of a broker of its own, listening to everything it can name.
    let spyServer: NatsServer | undefined;
    let spy: NatsConnection | undefined;
    try {
      const leafUrl = new URL(`nats-leaf://127.0.0.1:${await hub.leafPort()}`);
      leafUrl.username = de.user;
      leafUrl.password = de.password;
      spyServer = await startServer({
        jetstream: false,
        config: {
          accounts: { SPY: { users: [{ user: "spy", password: "spy" }] } },
          leafnodes: { remotes: [{ url: leafUrl.toString(), account: "SPY" }] },
        },
      });
      // noEcho: its own forged publish below is not "seen".
      spy = await connect({ servers: spyServer.url, user: "spy", pass: "spy", noEcho: true });
      const seen: Msg[] = [];
      const subjects = ["stafett.>", "stafett.no.in.se.>", "stafett.se.in.no.>", "_R_.>", ">"];
      for (const s of subjects) spy.subscribe(s, { callback: (_e, m) => void seen.push(m) });
      await spy.flush();
      // The hub refuses the subscriptions to others' subjects (a bare `>` it takes as interest,
      // but each message is checked against the permissions before it goes down the link).
      const spyLeaf = await waitForValue(
        async () => {
          const z = await hub.monitor<{
            leafs: { account: string; subscriptions_list?: string[] }[];
          }>("/leafz?subs=1");
          const mine = z.leafs.filter((l) => l.account === hubAccountOf("de"));
          return mine.length === 2 ? mine : undefined;
        },
        { timeoutMs: 5_000, message: "the spy's leafnode connection at the hub" },
      );
      for (const leaf of spyLeaf)
        for (const s of ["stafett.>", "stafett.no.in.se.>", "stafett.se.in.no.>"])
          expect(leaf.subscriptions_list ?? []).not.toContain(s);
      // The spy's leaf publishes as another sender: refused by its permissions.
      const seBefore = await lastSeq("se");
      spy.publish("stafett.se.in.no.opened", new TextEncoder().encode("forged"));
      await spy.flush();

      // The pairs' traffic flows meanwhile...
      await publishAcross("se", "no", randomUUID());
      await publishAcross("no", "se", randomUUID());
      await publishAcross("no", "fi", randomUUID());
      // ...and the spy's link is alive: it receives Germany's own inbound traffic.
      await publishAcross("fi", "de", randomUUID());
      await waitFor(() => seen.some((m) => m.subject === "stafett.de.in.fi.opened"), {
        timeoutMs: 5_000,
        message: "Germany's inbound traffic at the spy",
      });
      // Nothing but Germany's inbound events, and the answers to them (PubAcks of its stream).
      const foreign = seen.filter(
        (m) =>
          !m.subject.startsWith("stafett.de.in.") &&
          !(m.subject.startsWith("_R_.") && m.string().includes(`"domain":"de"`)),
      );
      expect(foreign.map((m) => m.subject)).toEqual([]);
      expect(await lastSeq("se")).toBe(seBefore + 1); // no's one publish, not the forged one
    } finally {
      await spy?.close();
      await spyServer?.stop();
    }
  });
});
