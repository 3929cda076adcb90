/**
 * Two (or more) countries' brokers on this machine, joined as in production: each with its own
 * JetStream domain, its streams in the STAFETT account and every organisation in an account of
 * its own, the first accepting the others' leafnode links, each link bound on both sides to a
 * link account that lets only the pair's inbound subjects cross (`countryServerConfig` in
 * @stafett/shared). With `tls: true`, client and leafnode connections are mutual TLS with a
 * throwaway CA. With `placement`, each broker runs in a network namespace of the test's own
 * (`netns.ts`), its clients' port on one address and the partners' link on another, so that a
 * test can cut the link alone.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  countryServerConfig,
  createBrokerUsers,
  STAFETT_ACCOUNT,
  type BrokerUsers,
  type LinkCredentials,
  type TrustList,
} from "@stafett/shared";
import { mergeConfig, startServer, type NatsServer, type ServerConfig } from "./nats-server.js";
import { createTestCa, type TestCa } from "./tls.js";

export interface Federation {
  servers: ReadonlyMap<string, NatsServer>;
  /** Each country's nkey users: a seed per organisation and the provisioner. */
  users: ReadonlyMap<string, BrokerUsers>;
  /** The link credentials, by the connecting country: the accepting side's link user. */
  links: ReadonlyMap<string, LinkCredentials>;
  /** The CA and certificates, when started with `tls: true`; clients connect with `tls.client`. */
  tls: TestCa | undefined;
  server(country: string): NatsServer;
  /** The seeds of one country's users (LocalCountry's `nkeys`). */
  seeds(country: string): ReadonlyMap<string, Uint8Array>;
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
  /** Per country: run its broker in a network namespace (the test certificates name only 127.0.0.1, so not with `tls`). */
  placement?: Readonly<Record<string, BrokerPlacement>>;
  /**
   * Merged into every broker's config. A test of a cut link sets a short `ping_interval` and
   * `ping_max` (they apply to leafnode links too) so a dead link is noticed in seconds.
   */
  config?: ServerConfig;
}

const secret = (): string => randomBytes(18).toString("base64url");

/**
 * Starts `hub` (accepting links) and each of `others` (connecting to it), each country's broker
 * with the accounts of its trust list in `trust`.
 */
export async function startFederation(
  hub: string,
  others: readonly string[],
  trust: Readonly<Record<string, TrustList>>,
  options: FederationOptions = {},
): Promise<Federation> {
  const tls =
    options.tls === true ? createTestCa(mkdtempSync(join(tmpdir(), "stafett-tls-"))) : undefined;
  const removeCa = () => {
    if (tls !== undefined) rmSync(tls.dir, { recursive: true, force: true });
  };
  const servers = new Map<string, NatsServer>();
  const users = new Map<string, BrokerUsers>();
  const links = new Map(others.map((cc) => [cc, { user: `link-${cc}`, password: secret() }]));
  const link = (cc: string): LinkCredentials => links.get(cc) ?? { user: "", password: "" };
  const start = (country: string, extra: Record<string, unknown>) => {
    const list = trust[country];
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
    return startServer({
      name: `stafett-${country}`,
      jetstream: { domain: country },
      config: mergeConfig(config, options.config ?? {}),
      ...(at === undefined ? {} : { host: at.host, netns: at.netns }),
    });
  };
  try {
    const hubServer = await start(hub, {
      accepts: others.map((partner) => ({ partner, credentials: link(partner) })),
    });
    servers.set(hub, hubServer);
    const hubAt = options.placement?.[hub];
    const leafUrl = `nats-leaf://${hubAt?.leafHost ?? hubAt?.host ?? "127.0.0.1"}:${await hubServer.leafPort()}`;
    for (const cc of others) {
      const s = await start(cc, {
        connects: [{ partner: hub, url: leafUrl, credentials: link(cc) }],
      });
      servers.set(cc, s);
    }
  } catch (err) {
    await Promise.all([...servers.values()].map((s) => s.stop()));
    removeCa();
    throw err;
  }
  return {
    servers,
    users,
    links,
    tls,
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
    async stop() {
      await Promise.all([...servers.values()].map((s) => s.stop()));
      removeCa();
    },
  };
}

export { STAFETT_ACCOUNT };
