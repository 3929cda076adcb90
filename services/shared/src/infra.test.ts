import { describe, expect, it } from "vitest";
import { createCountry } from "@stafett/devkit";
import { BROKER_LIMITS, countryAccounts, VIA_HUB } from "./accounts.js";
import { generateSigningKey } from "./keys.js";
import {
  federationHubConfig,
  hubAccountOf,
  HUB_LINKS_PER_MEMBER,
  NO_CREDENTIALS_ACCOUNT,
  HUB_ROUTER_ACCOUNT,
} from "./infra.js";

const members = ["se", "no", "fi", "de"].map((country) => ({
  country,
  credentials: { user: `link-${country}`, password: `secret-${country}` },
}));
const partnerships = [
  ["se", "no"],
  ["se", "fi"],
  ["no", "fi"],
  ["fi", "de"],
] as const;

type Account = {
  users?: {
    user: string;
    password: string;
    permissions: { publish: { allow: string[] }; subscribe: { allow: string[] } };
    allowed_connection_types: string[];
  }[];
  imports?: { service: { account: string; subject: string } }[];
  exports?: { service: string; accounts: string[] }[];
  limits?: Record<string, number>;
};

describe("federationHubConfig", () => {
  const config = federationHubConfig({ members, partnerships, port: 4222, leafPort: 7422 });
  const accounts = config.accounts as Record<string, Account>;

  it("has no JetStream and stores nothing: no jetstream block, no store_dir", () => {
    expect(config).not.toHaveProperty("jetstream");
    expect(JSON.stringify(config)).not.toContain("store_dir");
    expect(config.leafnodes).toEqual({
      host: "127.0.0.1",
      port: 7422,
      authorization: { account: NO_CREDENTIALS_ACCOUNT },
    });
  });

  it("has an account per member and the router, each member's one user a leafnode only", () => {
    expect(Object.keys(accounts).sort()).toEqual(
      [
        HUB_ROUTER_ACCOUNT,
        NO_CREDENTIALS_ACCOUNT,
        "country-de",
        "country-fi",
        "country-no",
        "country-se",
      ].sort(),
    );
    // A leafnode without credentials lands in an account that takes none.
    expect(accounts[NO_CREDENTIALS_ACCOUNT]).toEqual({ limits: { max_leafnodes: 0 } });
    expect(accounts[HUB_ROUTER_ACCOUNT]?.users).toBeUndefined();
    expect(accounts[hubAccountOf("fi")]?.users).toEqual([
      {
        user: "link-fi",
        password: "secret-fi",
        permissions: {
          publish: { allow: ["stafett.*.in.fi.>", "_R_.>"] },
          subscribe: { allow: ["stafett.fi.in.*.>", "_R_.>"] },
        },
        allowed_connection_types: ["LEAFNODE"],
      },
    ]);
    // What a member sends goes only to the router, what it receives comes only from there.
    expect(accounts[hubAccountOf("se")]?.imports).toEqual([
      { service: { account: HUB_ROUTER_ACCOUNT, subject: "stafett.*.in.se.>" } },
    ]);
    expect(accounts[hubAccountOf("se")]?.exports).toEqual([
      { service: "stafett.se.in.*.>", accounts: [HUB_ROUTER_ACCOUNT] },
    ]);
  });

  it("bounds each member's links and each link's subscriptions, not only its messages", () => {
    for (const cc of ["se", "no", "fi", "de"])
      expect(accounts[hubAccountOf(cc)]?.limits).toEqual({
        max_payload: BROKER_LIMITS.maxPayload,
        max_leafnodes: HUB_LINKS_PER_MEMBER,
        max_subscriptions: BROKER_LIMITS.maxSubscriptions,
      });
  });

  it("joins exactly the partners' pairs, both ways, and no other", () => {
    const imports = (accounts[HUB_ROUTER_ACCOUNT]?.imports ?? [])
      .map((i) => `${i.service.account} ${i.service.subject}`)
      .sort();
    expect(imports).toEqual(
      [
        "country-de stafett.de.in.fi.>",
        "country-fi stafett.fi.in.de.>",
        "country-fi stafett.fi.in.no.>",
        "country-fi stafett.fi.in.se.>",
        "country-no stafett.no.in.fi.>",
        "country-no stafett.no.in.se.>",
        "country-se stafett.se.in.fi.>",
        "country-se stafett.se.in.no.>",
      ].sort(),
    );
  });

  it("refuses a partnership with a country that is not a member, or with itself", () => {
    expect(() => federationHubConfig({ members, partnerships: [["se", "dk"]] })).toThrow(
      /not a member/,
    );
    expect(() => federationHubConfig({ members, partnerships: [["se", "se"]] })).toThrow(
      /own partner/,
    );
  });

  it("puts mutual TLS on the client and leafnode ports when given", () => {
    const tls = { cert_file: "c.pem", key_file: "k.pem", ca_file: "ca.pem" };
    const withTls = federationHubConfig({ members, partnerships, tls });
    expect(withTls.tls).toEqual({ ...tls, verify: true });
    expect((withTls.leafnodes as { tls: unknown }).tls).toEqual({ ...tls, verify: true });
  });

  it("a new member changes no other member's account (so a reload keeps their links)", () => {
    const more = federationHubConfig({
      members: [
        ...members,
        { country: "dk", credentials: { user: "link-dk", password: "secret-dk" } },
      ],
      partnerships: [...partnerships, ["dk", "se"]],
    });
    const after = more.accounts as Record<string, Account>;
    for (const m of members)
      expect(after[hubAccountOf(m.country)]).toEqual(accounts[hubAccountOf(m.country)]);
  });
});

describe("a country linked to the hub", () => {
  const subjectsOf = (imports: unknown): string[] =>
    ((imports ?? []) as { service?: { account: string; subject: string } }[]).map((i) =>
      i.service === undefined ? "" : `${i.service.account} ${i.service.subject}`,
    );

  it("names no partner: a partner added to the trust list changes nothing in its broker", async () => {
    const anchor = (await generateSigningKey()).publicJwk;
    const country = await createCountry({
      code: "se",
      municipalities: ["1280"],
      partnerAnchors: [{ country: "no", anchors: [anchor] }],
    });
    const list = country.trustList;
    const accounts = (partners: string[]) =>
      countryAccounts({
        trustList: {
          ...list,
          partners: partners.map((p) => ({
            country: p,
            anchors: list.partners?.[0]?.anchors ?? [],
          })),
        },
        nkeys: new Map(),
        links: [{ partner: VIA_HUB }],
      });
    const one = accounts(["no"]);
    expect(accounts(["no", "dk", "fi"])).toEqual(one);
    // The hub link's account: any partner's inbound subjects in, ours to any partner out.
    expect(subjectsOf(one["link-hub"]?.imports)).toContain("STAFETT stafett.se.in.*.opened");
    expect(one["link-hub"]?.exports).toEqual([
      { service: "stafett.*.in.se.>", accounts: ["se-liaison"] },
    ]);
    expect(subjectsOf(one["se-liaison"]?.imports)).toContain("link-hub stafett.*.in.se.opened");
    const malmo = subjectsOf(one["se-municipality-1280"]?.imports);
    expect(malmo).toContain("STAFETT stafett.se.out.*.opened");
    expect(malmo.filter((s) => s.includes(".out.no."))).toEqual([]);
  });

  it("is linked to the hub or directly to partners, not both", async () => {
    const country = await createCountry({ code: "se", municipalities: [] });
    expect(() =>
      countryAccounts({
        trustList: country.trustList,
        nkeys: new Map(),
        links: [{ partner: VIA_HUB }, { partner: "no" }],
      }),
    ).toThrow(/not both/);
  });
});
