/**
 * Two (or more) countries' brokers on this machine, joined as in production: each with its own
 * JetStream domain and account, the first accepting the others' leafnode links, each link's user
 * allowed only the pair's inbound subjects (`countryServerConfig` in @stafett/shared). With
 * `tls: true`, client and leafnode connections are mutual TLS with a throwaway CA.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { countryServerConfig, STAFETT_ACCOUNT, type LinkCredentials } from "@stafett/shared";
import { startServer, type NatsServer } from "./nats-server.js";
import { createTestCa, type TestCa } from "./tls.js";

export interface Federation {
  servers: ReadonlyMap<string, NatsServer>;
  /** Credentials of the services' user in each country's account. */
  users: ReadonlyMap<string, LinkCredentials>;
  /** The CA and certificates, when started with `tls: true`; clients connect with `tls.client`. */
  tls: TestCa | undefined;
  server(country: string): NatsServer;
  stop(): Promise<void>;
}

export interface FederationOptions {
  /** Mutual TLS (verify on) on every client port and leafnode link, with a generated CA. */
  tls?: boolean;
}

const secret = (): string => randomBytes(18).toString("base64url");

/** Starts `hub` (accepting links) and each of `others` (connecting to it). */
export async function startFederation(
  hub: string,
  others: readonly string[],
  options: FederationOptions = {},
): Promise<Federation> {
  const tls =
    options.tls === true ? createTestCa(mkdtempSync(join(tmpdir(), "stafett-tls-"))) : undefined;
  const removeCa = () => {
    if (tls !== undefined) rmSync(tls.dir, { recursive: true, force: true });
  };
  const servers = new Map<string, NatsServer>();
  const users = new Map<string, LinkCredentials>();
  const links = new Map(others.map((cc) => [cc, { user: `link-${cc}`, password: secret() }]));
  const withDir = (country: string, extra: Record<string, unknown>) => {
    const services = { user: "stafett", password: secret() };
    users.set(country, services);
    // store_dir is filled in by the launcher; port and leafnode port are picked by the OS.
    const config = countryServerConfig({
      country,
      storeDir: "",
      users: [services],
      port: -1,
      leafPort: -1,
      ...(tls === undefined ? {} : { tls: tls.server }),
      ...extra,
    });
    delete (config.jetstream as Record<string, unknown>).store_dir;
    return config;
  };
  try {
    const hubServer = await startServer({
      name: `stafett-${hub}`,
      jetstream: { domain: hub },
      config: withDir(hub, {
        accepts: others.map((partner) => ({
          partner,
          credentials: links.get(partner) ?? { user: "", password: "" },
        })),
      }),
    });
    servers.set(hub, hubServer);
    const leafUrl = `nats-leaf://127.0.0.1:${await hubServer.leafPort()}`;
    for (const cc of others) {
      const s = await startServer({
        name: `stafett-${cc}`,
        jetstream: { domain: cc },
        config: withDir(cc, {
          connects: [
            {
              partner: hub,
              url: leafUrl,
              credentials: links.get(cc) ?? { user: "", password: "" },
            },
          ],
        }),
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
    tls,
    server(country: string): NatsServer {
      const s = servers.get(country);
      if (s === undefined) throw new Error(`no server for ${country}`);
      return s;
    },
    async stop() {
      await Promise.all([...servers.values()].map((s) => s.stop()));
      removeCa();
    },
  };
}

export { STAFETT_ACCOUNT };
