/**
 * `stafett provision` and `stafett federation config`: a country's stream, consumers and trust
 * bucket on its NATS, and the nats-server configuration of its broker and federation links.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import {
  Bus,
  countryServerConfig,
  createLogger,
  provisionCountry,
  publishTrustList,
  StafettError,
  verifyTrustList,
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
    port?: number;
    leafPort?: number;
    host?: string;
    tlsCert?: string;
    tlsKey?: string;
    tlsCa?: string;
  },
  io: Io,
): Promise<number> {
  const tls = [args.tlsCert, args.tlsKey, args.tlsCa];
  if (tls.some((t) => t !== undefined) && tls.some((t) => t === undefined))
    throw new StafettError("ERR_CONFIG_INVALID", "--tls-cert, --tls-key and --tls-ca go together", {
      reason: "tls",
      field: "--tls-cert",
    });
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
  const accepts = (args.acceptFrom ?? "")
    .split(",")
    .filter(Boolean)
    .map((partner) => ({
      partner,
      credentials: {
        user: `link-${partner}`,
        password: linkPassword(args.out, pair(args.country, partner)),
      },
    }));
  const connects = pairs(args.connectTo, "--connect-to").map(([partner, url]) => ({
    partner,
    url,
    credentials: {
      user: `link-${args.country}`,
      password: linkPassword(args.out, pair(args.country, partner)),
    },
  }));
  const config = countryServerConfig({
    country: args.country,
    storeDir: args.storeDir,
    trustList: list,
    nkeys,
    accepts,
    connects,
    ...(args.port === undefined ? {} : { port: args.port }),
    ...(args.leafPort === undefined ? {} : { leafPort: args.leafPort }),
    ...(args.host === undefined ? {} : { host: args.host }),
    ...(args.tlsCert === undefined || args.tlsKey === undefined || args.tlsCa === undefined
      ? {}
      : {
          tls: {
            cert_file: resolve(args.tlsCert),
            key_file: resolve(args.tlsKey),
            ca_file: resolve(args.tlsCa),
          },
        }),
  });
  const file = join(args.out, `nats-${args.country}.json`);
  writeFile(file, `${JSON.stringify(config, null, 2)}\n`, true);
  io.out(
    `${file}: broker for ${args.country} (JetStream domain "${args.country}"), ${list.organisations.length} organisations each in an account of its own` +
      `${accepts.length > 0 ? `, accepts links from ${accepts.map((a) => a.partner).join(", ")}` : ""}` +
      `${connects.length > 0 ? `, connects to ${connects.map((c) => c.partner).join(", ")}` : ""}\n` +
      `nkey seeds (0600) in ${seedDir}/: ${created.length} new; give each organisation only its own, keep provisioner.nk with the operator` +
      `${args.tlsCert === undefined ? "; no TLS" : "; mutual TLS on the client and leafnode ports"}\n` +
      `link passwords in ${join(args.out, "links")}/ (0600): give each partner its own, out of band\n`,
  );
  return 0;
}
