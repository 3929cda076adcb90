/**
 * nats-server configurations for a country's broker and its federation links (docs/contract.md,
 * "Federation"): each country runs its own NATS with its own JetStream domain, the streams in
 * the STAFETT account and every organisation in an account of its own (accounts.ts). Two
 * countries are joined by a leafnode connection that each side binds to a link account, whichever
 * side connects: `stafett.<partner>.in.<own>.>` crosses one way and `stafett.<own>.in.<partner>.>`
 * the other, and nothing else, no JetStream API included, reaches either side's streams. Many
 * countries each link once to the federation's routing hub (`federationHubConfig`), with the
 * partner token `*` (`VIA_HUB`) on their side; a direct link is the case of two.
 * Pure functions returning JSON-ready objects (nats-server reads JSON config files; JSON also
 * avoids the bare `no` being read as false).
 */

import {
  BROKER_LIMITS,
  countryAccounts,
  LINKS_PER_PARTNER,
  linkAccountOf,
  type BrokerLimits,
  type LinkCredentials,
} from "./accounts.js";
import type { TrustList } from "./trust.js";

/**
 * TLS for a listener or a link (nats-server's `tls` block). With `verify` the other end must
 * present a certificate signed by `ca_file` (mutual TLS): on the client port every service, on
 * the leafnode port every partner's link.
 */
export interface ServerTls {
  cert_file: string;
  key_file: string;
  ca_file: string;
  verify?: boolean;
}

export interface CountryServerOptions {
  country: string;
  storeDir: string;
  /** The country's verified trust list: its organisations and policy make the accounts. */
  trustList: TrustList;
  /** Public nkeys (U…) of the organisations' users and of the provisioner (`PROVISIONER`). */
  nkeys: ReadonlyMap<string, string>;
  /** Links this broker accepts: a partner country connects here as a leafnode. */
  accepts?: readonly { partner: string; credentials: LinkCredentials }[];
  /** Links this broker makes: it connects to a partner's leafnode port. */
  connects?: readonly { partner: string; url: string; credentials: LinkCredentials }[];
  port?: number;
  leafPort?: number;
  host?: string;
  /**
   * TLS on the client port (top-level `tls`), the leafnode listener (`leafnodes.tls`) and each
   * remote link (`remotes[].tls`: this broker's certificate as the link's client certificate,
   * so it needs both the serverAuth and clientAuth extended key usages, and the CA that the
   * partner's server certificate must chain to).
   */
  tls?: ServerTls;
  limits?: Partial<BrokerLimits>;
}

/** The `tls` block of a listener: verify on unless explicitly turned off. */
function listenerTls(t: ServerTls): Record<string, unknown> {
  return {
    cert_file: t.cert_file,
    key_file: t.key_file,
    ca_file: t.ca_file,
    verify: t.verify ?? true,
  };
}

/**
 * The account of a leafnode that gives no credentials, on a listener for links (a country's, the
 * hub's): nats-server 2.9.10 would take it into the global account, where no limit applies; this
 * one takes none (`max_leafnodes` 0), so it is refused.
 */
export const NO_CREDENTIALS_ACCOUNT = "NOBODY";
const noCredentials = { [NO_CREDENTIALS_ACCOUNT]: { limits: { max_leafnodes: 0 } } };

export function countryServerConfig(o: CountryServerOptions): Record<string, unknown> {
  if (o.trustList.country !== o.country)
    throw new Error(`the trust list is ${o.trustList.country}'s, not ${o.country}'s`);
  const accounts = countryAccounts({
    trustList: o.trustList,
    nkeys: o.nkeys,
    links: [
      ...(o.accepts ?? []).map((a) => ({ partner: a.partner, user: a.credentials })),
      ...(o.connects ?? []).map((c) => ({ partner: c.partner })),
    ],
    ...(o.limits === undefined ? {} : { limits: o.limits }),
  });
  const config: Record<string, unknown> = {
    server_name: `stafett-${o.country}`,
    host: o.host ?? "127.0.0.1",
    port: o.port ?? 4222,
    jetstream: { store_dir: o.storeDir, domain: o.country },
    accounts,
  };
  if (o.tls !== undefined) config.tls = listenerTls(o.tls);
  const leafnodes: Record<string, unknown> = {};
  if ((o.accepts ?? []).length > 0) {
    leafnodes.host = o.host ?? "127.0.0.1";
    leafnodes.port = o.leafPort ?? 7422;
    leafnodes.authorization = { account: NO_CREDENTIALS_ACCOUNT };
    Object.assign(accounts, noCredentials);
    if (o.tls !== undefined) leafnodes.tls = listenerTls(o.tls);
  }
  if ((o.connects ?? []).length > 0) {
    leafnodes.remotes = (o.connects ?? []).map((c) => {
      const url = new URL(c.url);
      url.username = encodeURIComponent(c.credentials.user);
      url.password = encodeURIComponent(c.credentials.password);
      const tls =
        o.tls === undefined
          ? {}
          : {
              tls: { cert_file: o.tls.cert_file, key_file: o.tls.key_file, ca_file: o.tls.ca_file },
            };
      // Bound to the link's account: whatever the partner sends reaches only what it imports.
      return { url: url.toString(), account: linkAccountOf(c.partner), ...tls };
    });
  }
  if (Object.keys(leafnodes).length > 0) config.leafnodes = leafnodes;
  return config;
}

export interface ClusterNodeOptions extends CountryServerOptions {
  /** This node's name (unique in the cluster) and its cluster (route) port. */
  node: string;
  clusterPort: number;
  /** Every node's route URL, e.g. nats-route://10.0.0.1:6222 (a node's own is ignored by the server). */
  routes: readonly string[];
}

/**
 * One node of a country's 3-node JetStream cluster (streams then use num_replicas 3; see
 * `provisionCountry`'s `replicas`). Each node needs its own server_name and explicit routes.
 */
export function clusterNodeConfig(o: ClusterNodeOptions): Record<string, unknown> {
  return {
    ...countryServerConfig(o),
    server_name: `stafett-${o.country}-${o.node}`,
    cluster: {
      name: `stafett-${o.country}`,
      host: o.host ?? "0.0.0.0",
      port: o.clusterPort,
      routes: [...o.routes],
    },
  };
}

/** A member of the federation: its country, and the user its broker's hub link logs in as. */
export interface HubMember {
  country: string;
  credentials: LinkCredentials;
}

export interface FederationHubOptions {
  members: readonly HubMember[];
  /** The pairs of partner countries: each may send the other its events, and nothing more. */
  partnerships: readonly (readonly [string, string])[];
  port?: number;
  leafPort?: number;
  host?: string;
  /** TLS on the client port and the leafnode listener, verify on (the members' links). */
  tls?: ServerTls;
  /**
   * Each member account's `max_payload` (default `BROKER_LIMITS.maxPayload`); nats-server 2.9.10
   * does not apply it to a leafnode, so it does not bound what a member's link sends.
   */
  maxPayload?: number;
}

/**
 * How a running hub takes a new member: reload the config with the new account and pairs, wait
 * until the new country's link is up at the hub, then reload the same config once more.
 * nats-server 2.9.10 sets up the subscriptions of a service import at a reload only for accounts
 * it had before (so after one reload the new country's publishes find no responders), and the
 * answers a new account's link gives reach the hub only when that link was up before the reload
 * that subscribed them (checked by hand, each order; test/e2e/federation-join.test.ts runs this
 * one). Every other member's account and user stay as they were, and so do their links.
 */
export const HUB_JOIN_STEPS = ["reload", "wait for the new link", "reload"] as const;

/** How many links a member may have up at the hub at once (`LINKS_PER_PARTNER`). */
export const HUB_LINKS_PER_MEMBER = LINKS_PER_PARTNER;

/** The hub's account that joins partners; no user logs into it. */
export const HUB_ROUTER_ACCOUNT = "ROUTER";

/** The hub's account of a member country, into which that country's link logs. */
export const hubAccountOf = (country: string): string => `country-${country}`;

const COUNTRY = /^[a-z]{2}$/;

/**
 * The nats-server configuration of the federation's routing hub: no JetStream, nothing stored.
 * Each member country has an account, into which its broker's link logs in (leafnode
 * connections only); country X's account sends into `ROUTER` only `stafett.*.in.X.>` (X as the
 * sender) and takes from it only `stafett.X.in.*.>` (X as the recipient); `ROUTER` imports
 * `stafett.P.in.X.>` from P's account for each pair of partners X and P, and nothing else. So
 * a pair that is not partnered exchanges nothing, and no country sees another pair's traffic.
 * Each import is a service import, so JetStream's answer (the PubAck of the partner's stream)
 * comes back the same way. The link users' permissions say the same again (the sender and the
 * recipient token): NATS checks a leafnode's permissions as a client's, `publish` for what the
 * link sends to the hub and `subscribe` for what the hub sends it.
 *
 * Adding a country adds its account and the imports of its pairs to `ROUTER`: every other
 * member's account and user stay as they were, so a reload keeps their links.
 */
export function federationHubConfig(o: FederationHubOptions): Record<string, unknown> {
  const members = new Set<string>();
  for (const m of o.members) {
    if (!COUNTRY.test(m.country)) throw new Error(`not a country code: ${m.country}`);
    if (members.has(m.country)) throw new Error(`${m.country} is a member twice`);
    members.add(m.country);
  }
  const pairs = new Map<string, readonly [string, string]>();
  for (const [a, b] of o.partnerships) {
    if (!members.has(a) || !members.has(b))
      throw new Error(`the partnership ${a}-${b} names a country that is not a member`);
    if (a === b) throw new Error(`${a} cannot be its own partner`);
    const key = [a, b].sort().join("-");
    pairs.set(key, [a, b]);
  }
  const routerImports = [...pairs.values()]
    .sort()
    .flatMap(([a, b]) => [
      { service: { account: hubAccountOf(b), subject: `stafett.${b}.in.${a}.>` } },
      { service: { account: hubAccountOf(a), subject: `stafett.${a}.in.${b}.>` } },
    ]);
  const accounts: Record<string, Record<string, unknown>> = {
    [HUB_ROUTER_ACCOUNT]: {
      exports: o.members.map((m) => ({
        service: `stafett.*.in.${m.country}.>`,
        accounts: [hubAccountOf(m.country)],
      })),
      imports: routerImports,
    },
    ...noCredentials,
  };
  const maxPayload = o.maxPayload ?? BROKER_LIMITS.maxPayload;
  for (const m of o.members) {
    const cc = m.country;
    accounts[hubAccountOf(cc)] = {
      users: [
        {
          user: m.credentials.user,
          password: m.credentials.password,
          // Replies to service imports are `_R_.…` subjects in whichever direction they go.
          permissions: {
            publish: { allow: [`stafett.*.in.${cc}.>`, "_R_.>"] },
            subscribe: { allow: [`stafett.${cc}.in.*.>`, "_R_.>"] },
          },
          allowed_connection_types: ["LEAFNODE"],
        },
      ],
      imports: [{ service: { account: HUB_ROUTER_ACCOUNT, subject: `stafett.*.in.${cc}.>` } }],
      exports: [{ service: `stafett.${cc}.in.*.>`, accounts: [HUB_ROUTER_ACCOUNT] }],
      // Without a bound on its links and on each link's subscriptions one member could exhaust
      // the hub every member shares (test/security/hub-member-attacks.test.ts). nats-server
      // 2.9.10 does not hold a leafnode to `max_payload`, the account's or the server's: what
      // bounds a message is the partner stream's `max_msg_size` (docs/security.md).
      limits: {
        max_payload: maxPayload,
        max_leafnodes: HUB_LINKS_PER_MEMBER,
        max_subscriptions: BROKER_LIMITS.maxSubscriptions,
      },
    };
  }
  const host = o.host ?? "127.0.0.1";
  const config: Record<string, unknown> = {
    server_name: "stafett-hub",
    host,
    port: o.port ?? 4222,
    accounts,
    leafnodes: {
      host,
      port: o.leafPort ?? 7422,
      authorization: { account: NO_CREDENTIALS_ACCOUNT },
      ...(o.tls === undefined ? {} : { tls: listenerTls(o.tls) }),
    },
  };
  if (o.tls !== undefined) config.tls = listenerTls(o.tls);
  return config;
}
