/**
 * A hostile member country at the real hub (`federationHubConfig`): members se, no and de, the
 * partnerships se–no and no–de. Each country's broker is here a plain nats-server whose account
 * `C` is its link to the hub, with the member's link user (a hostile member runs its broker as
 * it likes, so this is all it has); `R` publishes through `C` by a service import, as a liaison
 * does through `link-hub` (so a request's reply is an `_R_` subject). Germany, hostile, tries
 * what its link user lets it do. (A hostile hub: hub-attacks.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { startServer, waitFor, type NatsServer } from "@stafett/devkit";
import {
  BROKER_LIMITS,
  federationHubConfig,
  HUB_LINKS_PER_MEMBER,
  hubAccountOf,
} from "@stafett/shared";

const MEMBERS = ["se", "no", "de"] as const;
const cred = (cc: string) => ({ user: `link-${cc}`, password: `pw-${cc}-secret` });
let hub: NatsServer;
const servers: NatsServer[] = [];
/** A connection in each country's link account `C`, and one in `R` that sends through it. */
const links = new Map<string, NatsConnection>();
const senders = new Map<string, NatsConnection>();

async function memberBroker(cc: string, name = cc): Promise<NatsServer> {
  const leafUrl = new URL(`nats-leaf://127.0.0.1:${await hub.leafPort()}`);
  leafUrl.username = cred(cc).user;
  leafUrl.password = cred(cc).password;
  const s = await startServer({
    name: `country-${name}`,
    jetstream: false,
    config: {
      accounts: {
        C: {
          users: [{ user: "c", password: "c" }],
          exports: [{ service: `stafett.*.in.${cc}.>`, accounts: ["R"] }],
          limits: { max_payload: 1024 * 1024 },
        },
        R: {
          users: [{ user: "r", password: "r" }],
          imports: [{ service: { account: "C", subject: `stafett.*.in.${cc}.>` } }],
          limits: { max_payload: 1024 * 1024 },
        },
      },
      leafnodes: { remotes: [{ url: leafUrl.toString(), account: "C" }] },
    },
  });
  servers.push(s);
  return s;
}

const leafsOf = async (cc: string) =>
  (
    (await hub.monitor<{ leafs?: { account: string; subscriptions: number }[] }>("/leafz")).leafs ??
    []
  ).filter((l) => l.account === hubAccountOf(cc));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  hub = await startServer({
    name: "stafett-hub",
    jetstream: false,
    config: federationHubConfig({
      members: MEMBERS.map((country) => ({ country, credentials: cred(country) })),
      partnerships: [
        ["se", "no"],
        ["no", "de"],
      ],
      port: -1,
      leafPort: -1,
    }),
  });
  for (const cc of MEMBERS) {
    const b = await memberBroker(cc);
    links.set(cc, await connect({ servers: b.url, user: "c", pass: "c" }));
    senders.set(cc, await connect({ servers: b.url, user: "r", pass: "r" }));
  }
  for (const cc of MEMBERS)
    await waitFor(async () => (await leafsOf(cc)).length === 1, { timeoutMs: 10_000 });
}, 30_000);

afterAll(async () => {
  for (const nc of [...links.values(), ...senders.values()]) await nc.close();
  for (const s of servers) await s.stop();
  await hub?.stop();
});

describe("a hostile member at the federation's hub", () => {
  it("cannot answer, on its reply subject, a request another member sent to its partner", async () => {
    const se = links.get("se")!;
    const de = links.get("de")!;
    let reply = "";
    // Sweden answers slowly; Germany is given the reply subject and answers first, many times.
    const sub = se.subscribe("stafett.se.in.no.>", {
      callback: (_e, m: Msg) => {
        reply = m.reply ?? "";
        setTimeout(() => m.respond("from-se"), 300);
      },
    });
    await se.flush();
    await sleep(300);
    const pending = senders.get("no")!.request("stafett.se.in.no.opened", "x", { timeout: 3_000 });
    await waitFor(() => reply !== "", { timeoutMs: 3_000 });
    expect(reply).toMatch(/^_R_\./);
    for (let i = 0; i < 5; i++) de.publish(reply, "forged-by-de");
    await de.flush();
    expect((await pending).string()).toBe("from-se");
    sub.unsubscribe();
  });

  it("reaches no other pair with a wildcard in the subject it publishes", async () => {
    const seen: string[] = [];
    for (const cc of ["se", "no"]) {
      const nc = links.get(cc)!;
      nc.subscribe(">", { callback: (_e, m) => void seen.push(`${cc}:${m.subject}`) });
      await nc.flush();
    }
    await sleep(300);
    const de = senders.get("de")!;
    for (const s of ["stafett.*.in.de.opened", "stafett.se.in.*.opened", "stafett.se.in.no.opened"])
      de.publish(s, "x");
    await de.flush();
    await sleep(500);
    // Only Norway, Germany's partner, hears the literal `*` (its own inbound subjects' shape).
    expect(seen.filter((s) => !s.startsWith("no:stafett.*.in.de."))).toEqual([]);
  });

  it("keeps no more than a few subscriptions at the hub on one link", async () => {
    const nc = links.get("de")!;
    for (let i = 0; i < 400; i++) nc.subscribe(`stafett.de.in.x${i}.>`);
    await nc.flush();
    await sleep(1_000);
    const [leaf] = await leafsOf("de");
    expect(leaf?.subscriptions ?? 0).toBeLessThanOrEqual(BROKER_LIMITS.maxSubscriptions);
  });

  it("gets no link at the hub without its credentials (none to land in an account without limits)", async () => {
    const leafUrl = `nats-leaf://127.0.0.1:${await hub.leafPort()}`;
    const anon = await startServer({
      name: "no-credentials",
      jetstream: false,
      config: { leafnodes: { remotes: [{ url: leafUrl }] } },
    });
    servers.push(anon);
    await sleep(1_500);
    const all = (await hub.monitor<{ leafs?: { account: string }[] }>("/leafz")).leafs ?? [];
    expect(all.map((l) => l.account).filter((a) => !a.startsWith("country-"))).toEqual([]);
    await anon.stop();
  });

  it(`has at most ${HUB_LINKS_PER_MEMBER} links carrying its traffic at the hub`, async () => {
    // Each of its brokers listens on its own inbound subjects; Norway, its partner, sends there.
    const heard = new Set<number>();
    const listeners: NatsConnection[] = [];
    const listen = async (nc: NatsConnection, i: number) => {
      nc.subscribe("stafett.de.in.no.>", { callback: () => void heard.add(i) });
      await nc.flush();
    };
    await listen(links.get("de")!, -1);
    for (let i = 0; i < HUB_LINKS_PER_MEMBER + 2; i++) {
      const b = await memberBroker("de", `de-${i}`);
      const nc = await connect({ servers: b.url, user: "c", pass: "c" });
      listeners.push(nc);
      await listen(nc, i);
    }
    await sleep(1_500);
    const no = senders.get("no")!;
    for (let i = 0; i < 5; i++) no.publish("stafett.de.in.no.opened", "x");
    await no.flush();
    await sleep(1_000);
    for (const nc of listeners) await nc.close();
    // (/leafz of nats-server 2.9.10 still lists a link it refused, so what is heard counts.)
    expect(heard.size).toBeGreaterThan(0);
    expect(heard.size).toBeLessThanOrEqual(HUB_LINKS_PER_MEMBER);
    // Its partners' links are still up.
    expect((await leafsOf("no")).length).toBe(1);
  }, 30_000);
});
