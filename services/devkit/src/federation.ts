/**
 * Two or more countries' brokers on this machine, joined as in production: each with its own
 * JetStream domain, its streams in the STAFETT account and every organisation in an account of
 * its own. Either the first accepts the others' leafnode links, each link bound on both sides to
 * a link account that lets only the pair's inbound subjects cross (`countryServerConfig` in
 * @stafett/shared); or, with `hub`, every country links once to a routing hub without JetStream
 * that lets only partners talk (`federationHubConfig`). With `tls: true`, client and leafnode
 * connections are mutual TLS with a throwaway CA. With `placement` (a direct link only), each
 * broker runs in a network namespace of the test's own (`netns.ts`), its clients' port on one
 * address and the partners' link on another, so that a test can cut the link alone.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  countryServerConfig,
  createBrokerUsers,
  federationHubConfig,
  hubAccountOf,
  STAFETT_ACCOUNT,
  VIA_HUB,
  type BrokerUsers,
  type LinkCredentials,
  type TrustList,
} from "@stafett/shared";
import { mergeConfig, startServer, type NatsServer, type ServerConfig } from "./nats-server.js";
import { createTestCa, type TestCa } from "./tls.js";
import { waitFor } from "./wait.js";

export interface Federation {
  servers: ReadonlyMap<string, NatsServer>;
  /** Each country's nkey users: a seed per organisation and the provisioner. */
  users: ReadonlyMap<string, BrokerUsers>;
  /**
   * The link credentials, by the connecting country: the accepting side's link user (with
   * `hub`, every country's user on the hub).
   */
  links: ReadonlyMap<string, LinkCredentials>;
  /** The routing hub, when started with `hub`. */
  hub: NatsServer | undefined;
  /** The CA and certificates, when started with `tls: true`; clients connect with `tls.client`. */
  tls: TestCa | undefined;
  server(country: string): NatsServer;
  /** The seeds of one country's users (LocalCountry's `nkeys`). */
  seeds(country: string): ReadonlyMap<string, Uint8Array>;
  /**
   * Adds a country to a federation through the hub, as `stafett federation add-country` does:
   * the hub's config gains its account and its partnerships and the running hub reloads it, the
   * country's broker starts and links to the hub, and the hub reloads once more
   * (`HUB_JOIN_STEPS`); no other broker is touched.
   */
  addCountry(country: string, list: TrustList, partners: readonly string[]): Promise<NatsServer>;
  stop(): Promise<void>;
}

/** Where one country's broker runs: a network namespace, and its addresses there. */
export interface BrokerPlacement {
  /** The namespace (`ip netns exec`); see `createNetwork`. */
  netns: string;
  /** Where its client and monitoring ports listen: reachable from the test's own namespace. */
  host: string;
  /** Where it accepts partners' leafnode links (the accepting country only); default `host`. */
  leafHost?: string;
}

export interface FederationOptions {
  /** Mutual TLS (verify on) on every client port and leafnode link, with a generated CA. */
  tls?: boolean;
  /** Join every country through a routing hub; only these pairs may talk. */
  hub?: { partnerships: readonly (readonly [string, string])[] };
  /**
   * Per country: run its broker in a network namespace. Only for a direct link (the hub runs in
   * the test's namespace), and not with `tls` (the test certificates name only 127.0.0.1).
   */
  placement?: Readonly<Record<string, BrokerPlacement>>;
  /**
   * Merged into every country's broker config. A test of a cut link sets a short `ping_interval`
   * and `ping_max` (they apply to leafnode links too) so a dead link is noticed in seconds.
   */
  config?: ServerConfig;
}

const secret = (): string => randomBytes(18).toString("base64url");

/**
 * Starts `first` and each of `others`, each country's broker with the accounts of its trust list
 * in `trust`: without `hub`, `first` accepts the others' links; with `hub`, a routing hub starts
 * first and every country links to it.
 */
export async function startFederation(
  first: string,
  others: readonly string[],
  trust: Readonly<Record<string, TrustList>>,
  options: FederationOptions = {},
): Promise<Federation> {
  const tls =
    options.tls === true ? createTestCa(mkdtempSync(join(tmpdir(), "stafett-tls-"))) : undefined;
  const removeCa = () => {
    if (tls !== undefined) rmSync(tls.dir, { recursive: true, force: true });
  };
  const viaHub = options.hub !== undefined;
  if (viaHub && options.placement !== undefined)
    throw new Error("placement is for a direct link: a hub runs in the test's own namespace");
  const servers = new Map<string, NatsServer>();
  const users = new Map<string, BrokerUsers>();
  const links = new Map(
    (viaHub ? [first, ...others] : others).map((cc) => [
      cc,
      { user: `link-${cc}`, password: secret() },
    ]),
  );
  const link = (cc: string): LinkCredentials => links.get(cc) ?? { user: "", password: "" };
  const partnerships = [...(options.hub?.partnerships ?? [])];
  const hubConfig = () =>
    federationHubConfig({
      members: [...links].map(([country, credentials]) => ({ country, credentials })),
      partnerships,
      port: -1,
      leafPort: -1,
      ...(tls === undefined ? {} : { tls: tls.server }),
    });
  const startCountry = async (
    country: string,
    list: TrustList | undefined,
    extra: Record<string, unknown>,
  ): Promise<NatsServer> => {
    if (list === undefined) throw new Error(`no trust list for ${country}`);
    const countryUsers = createBrokerUsers(list);
    users.set(country, countryUsers);
    const at = options.placement?.[country];
    // store_dir is filled in by the launcher; port and leafnode port are picked by the OS.
    const config = countryServerConfig({
      country,
      storeDir: "",
      trustList: list,
      nkeys: countryUsers.nkeys,
      port: -1,
      leafPort: -1,
      ...(at === undefined ? {} : { host: at.host }),
      ...(tls === undefined ? {} : { tls: tls.server }),
      ...extra,
    });
    delete (config.jetstream as Record<string, unknown>).store_dir;
    const leafnodes = config.leafnodes as Record<string, unknown> | undefined;
    if (at?.leafHost !== undefined && leafnodes?.port !== undefined) leafnodes.host = at.leafHost;
    const s = await startServer({
      name: `stafett-${country}`,
      jetstream: { domain: country },
      config: mergeConfig(config, options.config ?? {}),
      ...(at === undefined ? {} : { host: at.host, netns: at.netns }),
    });
    servers.set(country, s);
    return s;
  };
  let hub: NatsServer | undefined;
  const leafUrl = async (s: NatsServer, at?: BrokerPlacement) =>
    `nats-leaf://${at?.leafHost ?? at?.host ?? "127.0.0.1"}:${await s.leafPort()}`;
  const connectToHub = async (country: string, list: TrustList | undefined) => {
    if (hub === undefined) throw new Error("this federation has no hub");
    return startCountry(country, list, {
      connects: [{ partner: VIA_HUB, url: await leafUrl(hub), credentials: link(country) }],
    });
  };
  try {
    if (viaHub) {
      // The hub stores nothing: no JetStream.
      hub = await startServer({ name: "stafett-hub", jetstream: false, config: hubConfig() });
      for (const cc of [first, ...others]) await connectToHub(cc, trust[cc]);
    } else {
      const firstServer = await startCountry(first, trust[first], {
        accepts: others.map((partner) => ({ partner, credentials: link(partner) })),
      });
      const url = await leafUrl(firstServer, options.placement?.[first]);
      for (const cc of others)
        await startCountry(cc, trust[cc], {
          connects: [{ partner: first, url, credentials: link(cc) }],
        });
    }
  } catch (err) {
    await Promise.all(
      [...servers.values(), ...(hub === undefined ? [] : [hub])].map((s) => s.stop()),
    );
    removeCa();
    throw err;
  }
  return {
    servers,
    users,
    links,
    tls,
    hub,
    server(country: string): NatsServer {
      const s = servers.get(country);
      if (s === undefined) throw new Error(`no server for ${country}`);
      return s;
    },
    seeds(country: string): ReadonlyMap<string, Uint8Array> {
      const u = users.get(country);
      if (u === undefined) throw new Error(`no users for ${country}`);
      return u.seeds;
    },
    async addCountry(country, list, partners) {
      if (hub === undefined) throw new Error("a country joins through the hub");
      links.set(country, { user: `link-${country}`, password: secret() });
      for (const p of partners) partnerships.push([country, p]);
      // HUB_JOIN_STEPS in @stafett/shared: reload, the new link, reload again.
      const accounts = hubConfig().accounts;
      await hub.reload({ accounts });
      const server = await connectToHub(country, list);
      await waitFor(
        async () =>
          (await hub?.monitor<{ leafs?: { account: string }[] }>("/leafz"))?.leafs?.some(
            (l) => l.account === hubAccountOf(country),
          ) === true,
        { timeoutMs: 10_000, message: `${country}'s link at the hub` },
      );
      await hub.reload({ accounts });
      return server;
    },
    async stop() {
      await Promise.all([...servers.values()].map((s) => s.stop()));
      await hub?.stop();
      removeCa();
    },
  };
}

export { STAFETT_ACCOUNT };
