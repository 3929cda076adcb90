/**
 * A country joins a running federation without a restart of anyone else (docs/operations.md,
 * "Adding a country"): Sweden, Norway and Finland run through the routing hub; Denmark joins as
 * Sweden's partner. The hub's config gains Denmark's account and the pair se–dk and the running
 * hub reloads it; Sweden's coordinator puts a trust list naming Denmark's anchor into Sweden's
 * bucket, with Denmark's list. Then a referral of Malmö's crosses to Denmark and back. The
 * brokers of Sweden, Norway, Finland and the hub keep their processes, and every connection they
 * had, the services' and the links', stays up throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { referAbroad } from "../support/flow.js";
import {
  createCountry,
  LocalCountry,
  startCountries,
  type Countries,
  type NatsServer,
} from "@stafett/devkit";
import {
  createLogger,
  generateSigningKey,
  publishTrustList,
  signTrustList,
  type TrustList,
} from "@stafett/shared";

const log = createLogger({ service: "e2e", level: process.env.LOG_LEVEL ?? "silent" });
const MALMO = "1280";
let fed: Countries;
let dk: LocalCountry | undefined;

beforeAll(async () => {
  fed = await startCountries({
    log,
    countries: ["se", "no", "fi"],
    partnerships: [
      ["se", "no"],
      ["se", "fi"],
      ["no", "fi"],
    ],
    viaHub: true,
    municipalities: [MALMO],
  });
}, 60_000);

afterAll(async () => {
  await dk?.stop();
  await fed?.stop();
});

/** A broker's process and every connection it holds: clients by id, links by port. */
async function processAndConnections(s: NatsServer): Promise<string[]> {
  const connz = await s.monitor<{ connections?: { cid: number; name?: string }[] }>(
    "/connz?limit=1024&sort=cid",
  );
  const leafz = await s.monitor<{ leafs?: { account: string; port: number }[] }>("/leafz");
  return [
    `pid ${s.pid}`,
    ...(connz.connections ?? []).map((c) => `client ${c.cid} ${c.name ?? ""}`),
    ...(leafz.leafs ?? []).map((l) => `leaf ${l.account} ${l.port}`).sort(),
  ];
}

/** A referral of Malmö's to `cc`, accepted by its liaison. */
async function referralTo(cc: string, partner: LocalCountry): Promise<void> {
  const liaison = partner.liaison?.liaison;
  if (liaison === undefined) throw new Error(`no liaison in ${cc}`);
  expect(await referAbroad(fed.of("se").gateway(MALMO).gateway, cc, liaison)).toContain("accepted");
}

describe("a country joins the federation", () => {
  it("Denmark joins as Sweden's partner and exchanges a referral with it; no other broker or service restarts, no connection drops", async () => {
    const hub = fed.fed.hub;
    if (hub === undefined) throw new Error("no hub");
    const brokers = [hub, ...["se", "no", "fi"].map((cc) => fed.fed.server(cc))];
    const before = await Promise.all(brokers.map(processAndConnections));
    expect(before[0]?.filter((c) => c.startsWith("leaf"))).toHaveLength(3);

    // Denmark: its keys and trust list (naming Sweden's anchor), its account and the pair on
    // the hub (a reload), its broker linked to the hub, its services.
    const dkAnchor = await generateSigningKey();
    const seAnchor = fed.anchors.get("se");
    const se = fed.countries.get("se");
    if (seAnchor === undefined || se === undefined) throw new Error("no Sweden");
    const dkCountry = await createCountry({
      code: "dk",
      municipalities: [],
      anchor: dkAnchor,
      partnerAnchors: [{ country: "se", anchors: [seAnchor.publicJwk] }],
    });
    const dkServer = await fed.fed.addCountry("dk", dkCountry.trustList, ["se"]);
    dk = await LocalCountry.start({
      municipalities: [],
      country: dkCountry,
      natsUrl: dkServer.url,
      nkeys: fed.fed.seeds("dk"),
      partnerTrust: { se: se.trustListJws },
      log,
    });

    // Sweden's coordinator signs a list naming Denmark's anchor; Sweden's bucket gets it and
    // Denmark's list (`stafett provision --trust … --partner-trust dk=…`).
    const v2: TrustList = {
      ...se.trustList,
      version: se.trustList.version + 1,
      partners: [
        ...(se.trustList.partners ?? []),
        { country: "dk", anchors: [dkAnchor.publicJwk] },
      ],
    };
    const v2Jws = await signTrustList(v2, se.anchor);
    await fed.of("se").withAdmin(async (bus) => {
      await publishTrustList(bus.nc, "se", v2Jws);
      await publishTrustList(bus.nc, "dk", dkCountry.trustListJws);
    });

    await referralTo("dk", dk);
    // The pairs that were there still work after the reload.
    await referralTo("no", fed.of("no"));

    const after = await Promise.all(brokers.map(processAndConnections));
    // The hub has one more link (Denmark's), and everything it had before.
    expect(after[0]).toEqual(expect.arrayContaining(before[0] ?? []));
    expect(after[0]?.filter((c) => c.startsWith("leaf"))).toHaveLength(4);
    // Sweden's, Norway's and Finland's brokers: the same process and the same connections.
    expect(after.slice(1)).toEqual(before.slice(1));
  });
});
