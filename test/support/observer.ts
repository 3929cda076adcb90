/**
 * The attack tests' observer: a user in a country's streams' account (`STAFETT`) that may only
 * listen, and so hears everything that lands there.
 */
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import type { NatsServer } from "@stafett/devkit";
import { STAFETT_ACCOUNT } from "@stafett/shared";

/** Adds the observer to a country broker's config (`countryServerConfig`'s output). */
export function addStreamsObserver(config: Record<string, unknown>, password: string): void {
  const accounts = config.accounts as Record<string, { users: unknown[] }>;
  accounts[STAFETT_ACCOUNT]?.users.push({
    user: "observer",
    password,
    permissions: { publish: { deny: [">"] }, subscribe: { allow: [">"] } },
  });
}

/** Connects the observer and hands `heard` every message that lands in the streams' account. */
export async function observeStreams(
  server: NatsServer,
  password: string,
  heard: (m: Msg) => void,
): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url, user: "observer", pass: password });
  nc.subscribe(">", { callback: (_e, m) => heard(m) });
  await nc.flush();
  return nc;
}
