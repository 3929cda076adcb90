/**
 * `stafett provision`, `stafett federation config` and `stafett federation add-country`: a
 * country's stream, consumers and trust bucket on its NATS; the nats-server configuration of its
 * broker and federation links, or of the federation's routing hub; a country added to a running
 * hub.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import {
  Bus,
  countryServerConfig,
  federationHubConfig,
  hubAccountOf,
  createLogger,
  provisionCountry,
  publishTrustList,
  StafettError,
  VIA_HUB,
  verifyTrustList,
  type ServerTls,
} from "@stafett/shared";
import { readAnchors, writeFile } from "../files.js";
import type { Io } from "../io.js";
import { nkeysInDir } from "./nats-users.js";
import { connectionOptions, type NatsArgs } from "./quarantine.js";

function pairs(text: string | undefined, what: string): [string, string][] {
  return (text ?? "")
    .split(",")
    .filter(Boolean)
    .map((pair) => {
      const [cc, value] = pair.split("=");
      if (cc === undefined || value === undefined || !/^[a-z]{2}$/.test(cc)) {
        throw new StafettError("ERR_CONFIG_INVALID", `${what} takes cc=value pairs`, {
          reason: "format",
          field: what,
        });
      }
      return [cc, value];
    });
}

export async function provision(
  args: NatsArgs & {
    trust: string;
    anchor: string;
    partnerTrust?: string;
    /** How long refused messages are kept in the quarantine (default `PROVISION_DEFAULTS`). */
    quarantineMaxAgeMs?: number;
  },
  io: Io,
): Promise<number> {
  const jws = readFileSync(args.trust, "utf8").trim();
  const list = await verifyTrustList(jws, await readAnchors(args.anchor));
  // Connect as the provisioner (`stafett nats users` writes provisioner.nk with --nkey-file): the
  // only user of the account that holds the streams.
  const bus = await Bus.connect(
    {
      servers: args.natsUrl.split(","),
      name: "stafett-provision",
      connection: connectionOptions(args),
    },
    createLogger({ service: "cli", level: "warn" }),
  );
  try {
    const report = await provisionCountry(
      bus.nc,
      await bus.manager(),
      list,
      jws,
      args.quarantineMaxAgeMs === undefined ? {} : { quarantineMaxAgeMs: args.quarantineMaxAgeMs },
    );
    io.out(
      `stream ${report.stream}: ${report.streamChanged}\n` +
        `consumers created: ${report.consumersCreated.join(", ") || "none"}\n` +
        `consumers updated: ${report.consumersUpdated.join(", ") || "none"}\n` +
        `consumers deleted: ${report.consumersDeleted.join(", ") || "none"}\n` +
        `trust list ${list.country} v${list.version} in bucket, revision ${report.trustListRevision}\n`,
    );
    for (const [cc, file] of pairs(args.partnerTrust, "--partner-trust")) {
      if (!(list.partners ?? []).some((p) => p.country === cc)) {
        throw new StafettError(
          "ERR_TRUST_LIST_INVALID",
          `${cc} is not a partner in the trust list`,
          { reason: "partner", field: "--partner-trust" },
        );
      }
      const revision = await publishTrustList(bus.nc, cc, readFileSync(file, "utf8").trim());
      io.out(`partner trust list ${cc} in bucket, revision ${revision}\n`);
    }
  } finally {
    await bus.close();
  }
  return 0;
}

/**
 * A secret kept in DIR/links/<name>.password (0600), so a rerun gives the same config. A link's
 * is named by the country pair ("no-se"), the same on both sides; hand it to the partner out of band.
 */
function linkPassword(dir: string, name: string): string {
  const file = join(dir, "links", `${name}.password`);
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const password = randomBytes(24).toString("base64url");
  writeFile(file, `${password}\n`, true);
  return password;
}

const pair = (a: string, b: string): string => [a, b].sort().join("-");
/** The name of a country's hub link password (`links/hub-<cc>.password`, on both sides). */
const hubLink = (cc: string): string => `hub-${cc}`;

/** The TLS files, given all three or none. */
function tlsOf(args: TlsArgs): ServerTls | undefined {
  const tls = [args.tlsCert, args.tlsKey, args.tlsCa];
  if (tls.some((t) => t !== undefined) && tls.some((t) => t === undefined))
    throw new StafettError("ERR_CONFIG_INVALID", "--tls-cert, --tls-key and --tls-ca go together", {
      reason: "tls",
      field: "--tls-cert",
    });
  if (args.tlsCert === undefined || args.tlsKey === undefined || args.tlsCa === undefined)
    return undefined;
  return {
    cert_file: resolve(args.tlsCert),
    key_file: resolve(args.tlsKey),
    ca_file: resolve(args.tlsCa),
  };
}

interface TlsArgs {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

interface ListenArgs extends TlsArgs {
  port?: number;
  leafPort?: number;
  host?: string;
}

const listenOf = (args: ListenArgs) => ({
  ...(args.port === undefined ? {} : { port: args.port }),
  ...(args.leafPort === undefined ? {} : { leafPort: args.leafPort }),
  ...(args.host === undefined ? {} : { host: args.host }),
});

/**
 * A federation's description, the source of the hub's config: its member countries and the
 * pairs of partners among them (docs/operations.md, "Running the federation's hub").
 */
export interface FederationDescription {
  members: string[];
  partnerships: [string, string][];
}

function readFederation(file: string): FederationDescription {
  const invalid = (reason: string) =>
    new StafettError("ERR_CONFIG_INVALID", "not a federation description", {
      reason,
      field: "--federation",
    });
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    throw invalid("json");
  }
  if (typeof parsed !== "object" || parsed === null) throw invalid("json");
  const d = parsed as Partial<FederationDescription>;
  const isCc = (x: unknown) => typeof x === "string" && /^[a-z]{2}$/.test(x);
  if (!Array.isArray(d.members) || !d.members.every(isCc)) throw invalid("members");
  if (
    !Array.isArray(d.partnerships) ||
    !d.partnerships.every((p) => Array.isArray(p) && p.length === 2 && p.every(isCc))
  )
    throw invalid("partnerships");
  return { members: d.members, partnerships: d.partnerships };
}

/** The hub's config of a federation, each member's link password kept in DIR/links/. */
function hubConfigOf(
  d: FederationDescription,
  out: string,
  listen: ListenArgs,
): Record<string, unknown> {
  try {
    const tls = tlsOf(listen);
    return federationHubConfig({
      members: d.members.map((country) => ({
        country,
        credentials: { user: `link-${country}`, password: linkPassword(out, hubLink(country)) },
      })),
      partnerships: d.partnerships,
      ...listenOf(listen),
      ...(tls === undefined ? {} : { tls }),
    });
  } catch (err) {
    if (err instanceof StafettError) throw err;
    throw new StafettError("ERR_CONFIG_INVALID", (err as Error).message, {
      reason: "federation",
      field: "--federation",
    });
  }
}

/** `stafett federation config --federation FILE`: the routing hub's nats-server config. */
export function federationHubConfigFile(
  args: ListenArgs & { federation: string; out: string },
  io: Io,
): number {
  const d = readFederation(args.federation);
  const config = hubConfigOf(d, args.out, args);
  const file = join(args.out, "nats-hub.json");
  writeFile(file, `${JSON.stringify(config, null, 2)}\n`, true);
  io.out(
    `${file}: the federation's hub (no JetStream), members ${d.members.join(", ")}, ` +
      `partners ${d.partnerships.map(([a, b]) => `${a}-${b}`).join(", ") || "none"}\n` +
      `link passwords in ${join(args.out, "links")}/hub-<cc>.password (0600): give each country its own, out of band\n`,
  );
  return 0;
}

export async function federationConfig(
  args: {
    country: string;
    out: string;
    storeDir: string;
    trust: string;
    anchor: string;
    /** Directory of the nkey seeds (`stafett nats users`); default <out>/nkeys. */
    nkeys?: string;
    acceptFrom?: string;
    connectTo?: string;
    /** The federation hub's leafnode URL: one link, for every partner (`VIA_HUB`). */
    hub?: string;
  } & ListenArgs,
  io: Io,
): Promise<number> {
  const tls = tlsOf(args);
  if (args.hub !== undefined && (args.acceptFrom !== undefined || args.connectTo !== undefined))
    throw new StafettError("ERR_CONFIG_INVALID", "--hub or direct links, not both", {
      reason: "links",
      field: "--hub",
    });
  const acceptFrom = (args.acceptFrom ?? "").split(",").filter(Boolean);
  // Each name becomes a file name (its link's password): a country code and nothing else.
  if (acceptFrom.some((partner) => !/^[a-z]{2}$/.test(partner)))
    throw new StafettError("ERR_CONFIG_INVALID", "--accept-from takes country codes", {
      reason: "format",
      field: "--accept-from",
    });
  // Checked before anything is written.
  const connectTo = pairs(args.connectTo, "--connect-to");
  const list = await verifyTrustList(
    readFileSync(args.trust, "utf8").trim(),
    await readAnchors(args.anchor),
  );
  if (list.country !== args.country)
    throw new StafettError("ERR_CONFIG_INVALID", `the trust list is ${list.country}'s`, {
      reason: "country",
      field: "--trust",
    });
  const seedDir = args.nkeys ?? join(args.out, "nkeys");
  const { nkeys, created } = nkeysInDir(list, seedDir);
  const accepts = acceptFrom.map((partner) => ({
    partner,
    credentials: {
      user: `link-${partner}`,
      password: linkPassword(args.out, pair(args.country, partner)),
    },
  }));
  const connects = [
    ...connectTo.map(([partner, url]) => ({
      partner,
      url,
      credentials: {
        user: `link-${args.country}`,
        password: linkPassword(args.out, pair(args.country, partner)),
      },
    })),
    ...(args.hub === undefined
      ? []
      : [
          {
            partner: VIA_HUB,
            url: args.hub,
            credentials: {
              user: `link-${args.country}`,
              password: linkPassword(args.out, hubLink(args.country)),
            },
          },
        ]),
  ];
  const config = countryServerConfig({
    country: args.country,
    storeDir: args.storeDir,
    trustList: list,
    nkeys,
    accepts,
    connects,
    ...listenOf(args),
    ...(tls === undefined ? {} : { tls }),
  });
  const file = join(args.out, `nats-${args.country}.json`);
  writeFile(file, `${JSON.stringify(config, null, 2)}\n`, true);
  io.out(
    `${file}: broker for ${args.country} (JetStream domain "${args.country}"), ${list.organisations.length} organisations each in an account of its own` +
      `${accepts.length > 0 ? `, accepts links from ${accepts.map((a) => a.partner).join(", ")}` : ""}` +
      `${connects.length > 0 ? `, connects to ${connects.map((c) => (c.partner === VIA_HUB ? "the federation's hub" : c.partner)).join(", ")}` : ""}\n` +
      `nkey seeds (0600) in ${seedDir}/: ${created.length} new; give each organisation only its own, keep provisioner.nk with the operator` +
      `${args.tlsCert === undefined ? "; no TLS" : "; mutual TLS on the client and leafnode ports"}\n` +
      `link passwords in ${join(args.out, "links")}/ (0600): give each partner its own, out of band\n`,
  );
  return 0;
}

/**
 * `stafett federation add-country`: the country joins the description, the hub's running config
 * gets the new accounts block (everything else in it stays), and, given the hub's pid and
 * monitoring URL, the hub takes it without a restart (`HUB_JOIN_STEPS`): a reload, the new
 * country's link (its broker started meanwhile with `federation config --country CC --hub URL`),
 * a second reload. No other member's broker is touched; each partner then puts a trust list
 * naming the new country's anchor into its bucket (docs/operations.md, "Adding a country").
 */
export async function federationAddCountry(
  args: {
    federation: string;
    out: string;
    country: string;
    partners: string;
    hubConfig: string;
    hubPid?: number;
    hubMonitor?: string;
    waitMs?: number;
  },
  io: Io,
): Promise<number> {
  const d = readFederation(args.federation);
  const partners = args.partners.split(",").filter(Boolean);
  // Checked before anything is written: the country names its link password's file.
  if (!/^[a-z]{2}$/.test(args.country))
    throw new StafettError("ERR_CONFIG_INVALID", `not a country code: ${args.country}`, {
      reason: "country",
      field: "--country",
    });
  const strangers = partners.filter((p) => !d.members.includes(p));
  if (strangers.length > 0)
    throw new StafettError(
      "ERR_CONFIG_INVALID",
      `a partner must be a member already: ${strangers.join(", ")}`,
      { reason: "partners", field: "--partners" },
    );
  // A member whose password is not in --out would get a new one, and lose its link at the reload.
  const unknown = d.members.filter(
    (cc) => !existsSync(join(args.out, "links", `${hubLink(cc)}.password`)),
  );
  if (unknown.length > 0)
    throw new StafettError(
      "ERR_CONFIG_INVALID",
      `no link password of ${unknown.join(", ")} in ${join(args.out, "links")}: not the hub's directory`,
      { reason: "links", field: "--out" },
    );
  if (d.members.includes(args.country))
    throw new StafettError("ERR_CONFIG_INVALID", `${args.country} is a member already`, {
      reason: "member",
      field: "--country",
    });
  const next: FederationDescription = {
    members: [...d.members, args.country],
    partnerships: [...d.partnerships, ...partners.map((p): [string, string] => [args.country, p])],
  };
  const running = JSON.parse(readFileSync(args.hubConfig, "utf8")) as Record<string, unknown>;
  const { accounts } = hubConfigOf(next, args.out, {});
  writeFile(args.hubConfig, `${JSON.stringify({ ...running, accounts }, null, 2)}\n`, true);
  writeFile(args.federation, `${JSON.stringify(next, null, 2)}\n`);
  io.out(
    `${args.federation}: ${args.country} joins, partner of ${partners.join(", ") || "none"}\n` +
      `${args.hubConfig}: accounts rewritten; its link password is ${join(args.out, "links", `${hubLink(args.country)}.password`)}\n`,
  );
  if (args.hubPid === undefined || args.hubMonitor === undefined) {
    io.out("no --hub-pid and --hub-monitor: reload the hub yourself (docs/operations.md)\n");
    return 0;
  }
  const pid = args.hubPid;
  const monitor = args.hubMonitor;
  const waitMs = args.waitMs ?? 600_000;
  const reload = async (): Promise<void> => {
    const before = await loadTime(monitor);
    process.kill(pid, "SIGHUP");
    await until(async () => (await loadTime(monitor)) !== before, 10_000, "the hub to reload");
  };
  await reload();
  io.out(`hub reloaded; waiting for ${args.country}'s link\n`);
  await until(
    async () => {
      const z = (await getJson(`${monitor}/leafz`)) as { leafs?: { account?: string }[] };
      return (z.leafs ?? []).some((l) => l.account === hubAccountOf(args.country));
    },
    waitMs,
    `${args.country}'s link at the hub`,
  );
  await reload();
  io.out(`${args.country}'s link is up; hub reloaded again: the pairs carry both ways\n`);
  return 0;
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/** When the hub last (re)loaded its config (`/varz` config_load_time). */
async function loadTime(monitor: string): Promise<string> {
  const v = (await getJson(`${monitor}/varz`)) as { config_load_time?: string };
  return v.config_load_time ?? "";
}

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new StafettError("ERR_CONFIG_INVALID", `timed out waiting for ${what}`, {
        reason: "timeout",
      });
    await new Promise((r) => setTimeout(r, 100));
  }
}
