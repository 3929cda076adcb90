/**
 * `stafett config services`: the environment file of each organisation's service, as an operator
 * would otherwise write it by hand (README, "Configuration"; docs/operations.md). One file per
 * organisation of the verified trust list (or of `--only`), named `<stem>.env` after the
 * organisation ("se-municipality-0180.env"), for the systemd unit `stafett-<service>@<stem>`
 * (infra/systemd/) to read with `EnvironmentFile=`.
 *
 * Every path in it is made absolute, as given: run it with the paths the files have on the host
 * that runs the services. It checks what it can before a service would: each organisation's key
 * files exist, are readable by their owner only and are of the right kind, and the trust list
 * names at least one of its signing keys; it says which keys the list does not name yet (a
 * rollover in progress).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  parseOrgId,
  readPrivateJwk,
  readSecretFile,
  StafettError,
  verifyTrustList,
  type Role,
  type TrustList,
} from "@stafett/shared";
import { readAnchors, writeFile } from "../files.js";
import type { Io } from "../io.js";
import { fileStem } from "./keys.js";

/** Which service acts for an organisation of each role. */
export const SERVICE_OF: Readonly<Record<Role, "gateway" | "hub" | "liaison" | "coordinator">> = {
  municipality: "gateway",
  hub: "hub",
  liaison: "liaison",
  coordinator: "coordinator",
};

export interface ConfigServicesArgs {
  trust: string;
  anchor: string;
  /** Directory of the organisations' private key files (`stafett keys generate`). */
  keys: string;
  natsUrl: string;
  out: string;
  /** Directory of the organisations' nkey seeds (`stafett nats users`). */
  nkeys?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Comma-separated organisation ids; default every organisation of the list. */
  only?: string;
  stateRoot: string;
  authJwks: string;
  authIssuer: string;
  authAudience: string;
  httpHost: string;
  metricsHost: string;
  httpPortBase: number;
  metricsPortBase: number;
  expiryWarning?: string;
  logLevel: string;
}

/** A private key file of an organisation: `<stem>.sig.jwk.json` or `<stem>.<label>.sig.jwk.json`. */
function keyFiles(dir: string, stem: string, use: "sig" | "enc"): string[] {
  const pattern = new RegExp(
    `^${stem.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(\\.[A-Za-z0-9_-]+)?\\.${use}\\.jwk\\.json$`,
  );
  return readdirSync(dir)
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => resolve(dir, f));
}

export async function configServices(args: ConfigServicesArgs, io: Io): Promise<number> {
  const trustFile = resolve(args.trust);
  const anchorFile = resolve(args.anchor);
  const list: TrustList = await verifyTrustList(
    readFileSync(trustFile, "utf8").trim(),
    await readAnchors(anchorFile),
  );
  const wanted =
    args.only === undefined
      ? list.organisations.map((o) => o.id)
      : args.only.split(",").filter(Boolean);
  for (const id of wanted) {
    parseOrgId(id);
    if (!list.organisations.some((o) => o.id === id))
      throw new StafettError("ERR_UNKNOWN_ORGANISATION", `${id} is not in the trust list`, {
        reason: "unknown",
        field: "--only",
      });
  }
  if (args.tlsCa !== undefined && !existsSync(args.tlsCa))
    throw new StafettError("ERR_CONFIG_INVALID", `no CA file ${args.tlsCa}`, {
      reason: "unreadable",
      field: "--tls-ca",
    });
  if ((args.tlsCert === undefined) !== (args.tlsKey === undefined))
    throw new StafettError("ERR_CONFIG_INVALID", "--tls-cert and --tls-key go together", {
      reason: "tls",
      field: "--tls-cert",
    });
  if (args.tlsKey !== undefined) readSecretFile(args.tlsKey);
  const sorted = [...wanted].sort();
  for (const [i, id] of sorted.entries()) {
    const stem = fileStem(id);
    const org = list.organisations.find((o) => o.id === id);
    if (org === undefined) continue;
    const files = { sig: keyFiles(args.keys, stem, "sig"), enc: keyFiles(args.keys, stem, "enc") };
    const notes: string[] = [];
    for (const use of ["sig", "enc"] as const) {
      if (files[use].length === 0)
        throw new StafettError(
          "ERR_CONFIG_INVALID",
          `no ${use} private key file for ${id} in ${args.keys} (${stem}[.<label>].${use}.jwk.json)`,
          { reason: "missing", field: "--keys" },
        );
      for (const f of files[use]) {
        const jwk = readPrivateJwk(f);
        if (jwk.crv !== (use === "sig" ? "Ed25519" : "X25519"))
          throw new StafettError("ERR_KEY_INVALID", `${f} is not a ${use} key`, {
            reason: "kty",
            field: f,
          });
        const listed = org.keys.find((k) => k.kid === jwk.kid);
        notes.push(
          `${use} ${jwk.kid.slice(0, 8)} ${listed === undefined ? "not in the list yet" : listed.revokedAt === undefined ? "listed" : "revoked (kept to open what was sealed to it)"}`,
        );
      }
    }
    const signingListed = files.sig.some((f) => {
      const kid = readPrivateJwk(f).kid;
      return org.keys.some((k) => k.kid === kid && k.use === "sig");
    });
    if (!signingListed)
      throw new StafettError(
        "ERR_UNKNOWN_KEY",
        `the trust list names none of ${id}'s signing keys: sign the list first`,
        { reason: "not_listed", field: "--keys" },
      );
    const nkey = args.nkeys === undefined ? undefined : resolve(args.nkeys, `${stem}.nk`);
    if (nkey !== undefined) readSecretFile(nkey);
    const service = SERVICE_OF[org.role];
    const env: [string, string][] = [
      ["STAFETT_ORG", id],
      ["NATS_URL", args.natsUrl],
      ...(nkey === undefined ? [] : ([["NATS_NKEY_FILE", nkey]] as [string, string][])),
      ...(args.tlsCa === undefined
        ? []
        : ([["NATS_TLS_CA", resolve(args.tlsCa)]] as [string, string][])),
      ...(args.tlsCert === undefined || args.tlsKey === undefined
        ? []
        : ([
            ["NATS_TLS_CERT", resolve(args.tlsCert)],
            ["NATS_TLS_KEY", resolve(args.tlsKey)],
          ] as [string, string][])),
      ["STAFETT_SIGNING_KEY", files.sig.join(",")],
      ["STAFETT_ENCRYPTION_KEY", files.enc.join(",")],
      ["STAFETT_TRUST_ANCHORS", anchorFile],
      ["STAFETT_STATE_DIR", resolve(args.stateRoot, stem)],
      ["STAFETT_HTTP_HOST", args.httpHost],
      ["STAFETT_HTTP_PORT", String(args.httpPortBase + i)],
      ["STAFETT_METRICS_HOST", args.metricsHost],
      ["STAFETT_METRICS_PORT", String(args.metricsPortBase + i)],
      ["STAFETT_AUTH_JWKS", resolve(args.authJwks)],
      ["STAFETT_AUTH_ISSUER", args.authIssuer],
      ["STAFETT_AUTH_AUDIENCE", args.authAudience],
      ...(args.expiryWarning === undefined
        ? []
        : ([["STAFETT_EXPIRY_WARNING", args.expiryWarning]] as [string, string][])),
      ["LOG_LEVEL", args.logLevel],
    ];
    for (const [name, value] of env)
      if (/[\s"'\\$`]/.test(value))
        throw new StafettError(
          "ERR_CONFIG_INVALID",
          `${name} would hold a space, quote or $: systemd's EnvironmentFile reads those differently`,
          { reason: "unsafe_value", field: name },
        );
    const text =
      `# ${id}: stafett-${service}@${stem}.service (generated by stafett config services from ${list.country} trust list v${list.version})\n` +
      env.map(([k, v]) => `${k}=${v}\n`).join("");
    const file = join(args.out, `${stem}.env`);
    writeFile(file, text);
    io.out(
      `${file}: ${service}, API ${args.httpHost}:${args.httpPortBase + i}, metrics ${args.metricsHost}:${args.metricsPortBase + i}; ${notes.join(", ")}\n` +
        `  systemctl enable --now stafett-${service}@${stem}\n`,
    );
  }
  return 0;
}
