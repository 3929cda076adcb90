/**
 * nats-server configurations for a country's broker and its federation links (DESIGN.md
 * "Federation"): each country runs its own NATS with its own JetStream domain; two countries are
 * joined by a leafnode connection whose user lets only the pair's inbound subjects cross:
 * `stafett.<partner>.in.<own>.>` one way and `stafett.<own>.in.<partner>.>` the other.
 * Pure functions returning JSON-ready objects (nats-server reads JSON config files; JSON also
 * avoids the bare `no` being read as false).
 */

export const STAFETT_ACCOUNT = "STAFETT";

export interface LinkCredentials {
  user: string;
  password: string;
}

export interface CountryServerOptions {
  country: string;
  storeDir: string;
  /** Users of the account the services connect with. */
  users: readonly LinkCredentials[];
  /** Links this broker accepts: a partner country connects here as a leafnode. */
  accepts?: readonly { partner: string; credentials: LinkCredentials }[];
  /** Links this broker makes: it connects to a partner's leafnode port. */
  connects?: readonly { partner: string; url: string; credentials: LinkCredentials }[];
  port?: number;
  leafPort?: number;
  host?: string;
}

/** The permissions of the user a partner's link logs in as, seen from the accepting side. */
export function linkPermissions(own: string, partner: string): Record<string, unknown> {
  return {
    // What the partner may send into this broker: only our inbound subjects from it (and replies).
    publish: { allow: [`stafett.${own}.in.${partner}.>`, "_INBOX.>"] },
    // What the partner may receive from this broker: only its inbound subjects from us (and replies).
    subscribe: { allow: [`stafett.${partner}.in.${own}.>`, "_INBOX.>"] },
  };
}

export function countryServerConfig(o: CountryServerOptions): Record<string, unknown> {
  const linkUsers = (o.accepts ?? []).map((a) => ({ user: a.credentials.user, password: a.credentials.password, permissions: linkPermissions(o.country, a.partner) }));
  const config: Record<string, unknown> = {
    server_name: `stafett-${o.country}`,
    host: o.host ?? "127.0.0.1",
    port: o.port ?? 4222,
    jetstream: { store_dir: o.storeDir, domain: o.country },
    accounts: {
      [STAFETT_ACCOUNT]: {
        jetstream: "enabled",
        users: [...o.users.map((u) => ({ user: u.user, password: u.password })), ...linkUsers],
      },
    },
  };
  const leafnodes: Record<string, unknown> = {};
  if ((o.accepts ?? []).length > 0) {
    leafnodes.host = o.host ?? "127.0.0.1";
    leafnodes.port = o.leafPort ?? 7422;
  }
  if ((o.connects ?? []).length > 0) {
    leafnodes.remotes = (o.connects ?? []).map((c) => {
      const url = new URL(c.url);
      url.username = encodeURIComponent(c.credentials.user);
      url.password = encodeURIComponent(c.credentials.password);
      return { url: url.toString(), account: STAFETT_ACCOUNT };
    });
  }
  if (Object.keys(leafnodes).length > 0) config.leafnodes = leafnodes;
  return config;
}
