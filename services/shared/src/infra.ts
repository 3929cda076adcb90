/**
 * nats-server configurations for a country's broker and its federation links (docs/contract.md,
 * "Federation"): each country runs its own NATS with its own JetStream domain, the streams in
 * the STAFETT account and every organisation in an account of its own (accounts.ts). Two
 * countries are joined by a leafnode connection that each side binds to a link account, whichever
 * side connects: `stafett.<partner>.in.<own>.>` crosses one way and `stafett.<own>.in.<partner>.>`
 * the other, and nothing else, no JetStream API included, reaches either side's streams.
 * Pure functions returning JSON-ready objects (nats-server reads JSON config files; JSON also
 * avoids the bare `no` being read as false).
 */

import {
  countryAccounts,
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
