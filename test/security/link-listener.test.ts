/**
 * A country's leafnode listener for direct links (`countryServerConfig` with `accepts`): Sweden
 * accepts Denmark's link. What reaches the port besides Denmark's one link: a broker giving no
 * credentials, and Denmark opening link after link with its own. (The hub's listener:
 * hub-member-attacks.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, nkeyAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { createCountry, startServer, type NatsServer } from "@stafett/devkit";
import {
  countryServerConfig,
  createBrokerUsers,
  generateSigningKey,
  HUB_LINKS_PER_MEMBER,
  liaisonId,
} from "@stafett/shared";

const secret = "dk-link-secret";
const servers: NatsServer[] = [];
let seServer: NatsServer;
let liaison: NatsConnection;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const leafAccounts = async () =>
  ((await seServer.monitor<{ leafs?: { account: string }[] }>("/leafz")).leafs ?? []).map(
    (l) => l.account,
  );

async function dkBroker(name: string, credentials: boolean): Promise<NatsServer> {
  const auth = credentials ? `link-dk:${secret}@` : "";
  const s = await startServer({
    name,
    jetstream: false,
    config: {
      accounts: { C: { users: [{ user: "c", password: "c" }] } },
      leafnodes: {
        remotes: [
          { url: `nats-leaf://${auth}127.0.0.1:${await seServer.leafPort()}`, account: "C" },
        ],
      },
    },
  });
  servers.push(s);
  return s;
}

beforeAll(async () => {
  const dkAnchor = await generateSigningKey();
  const country = await createCountry({
    code: "se",
    municipalities: ["1480"],
    partnerAnchors: [{ country: "dk", anchors: [dkAnchor.publicJwk] }],
  });
  const users = createBrokerUsers(country.trustList);
  const config = countryServerConfig({
    country: "se",
    storeDir: "",
    trustList: country.trustList,
    nkeys: users.nkeys,
    port: -1,
    leafPort: -1,
    accepts: [{ partner: "dk", credentials: { user: "link-dk", password: secret } }],
  });
  delete (config.jetstream as Record<string, unknown>).store_dir;
  seServer = await startServer({ name: "stafett-se", jetstream: { domain: "se" }, config });
  const seed = users.seeds.get(liaisonId("se"));
  if (seed === undefined) throw new Error("no liaison seed");
  liaison = await connect({ servers: seServer.url, authenticator: nkeyAuthenticator(seed) });
}, 30_000);

afterAll(async () => {
  await liaison?.close();
  for (const s of servers) await s.stop();
  await seServer?.stop();
});

describe("Sweden's leafnode listener for direct links", () => {
  it("takes no link that gives no credentials", async () => {
    const anon = await dkBroker("no-credentials", false);
    await sleep(1_500);
    expect((await leafAccounts()).filter((a) => a !== "link-dk")).toEqual([]);
    await anon.stop();
  });

  it(`carries Denmark's traffic on at most ${HUB_LINKS_PER_MEMBER} of its links`, async () => {
    const heard = new Set<number>();
    const conns: NatsConnection[] = [];
    for (let i = 0; i < HUB_LINKS_PER_MEMBER + 2; i++) {
      const b = await dkBroker(`dk-${i}`, true);
      const nc = await connect({ servers: b.url, user: "c", pass: "c" });
      conns.push(nc);
      nc.subscribe("stafett.dk.in.se.>", { callback: () => void heard.add(i) });
      await nc.flush();
    }
    await sleep(1_500);
    for (let i = 0; i < 5; i++) liaison.publish("stafett.dk.in.se.opened", "x");
    await liaison.flush();
    await sleep(1_000);
    for (const nc of conns) await nc.close();
    expect(heard.size).toBeGreaterThan(0);
    expect(heard.size).toBeLessThanOrEqual(HUB_LINKS_PER_MEMBER);
  }, 30_000);
});
