import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  buildTrustList,
  describeOrganisation,
  importSigningKey,
  signTrustList,
  verifyTrustList,
  type PartnerAnchors,
  type PolicyRule,
} from "@stafett/shared";
import { readAnchors, readJson, readPrivateJwk, readPublicJwk, writeFile } from "../files.js";
import type { Io } from "../io.js";

/**
 * One organisation in `trust sign --orgs FILE` (a JSON array). Key paths are relative to FILE.
 *   { "id": "se:municipality:0180", "name": "Stockholm socialtjänst",
 *     "signing": ["keys/se-municipality-0180.sig.pub.jwk.json"],
 *     "encryption": ["keys/se-municipality-0180.enc.pub.jwk.json"],
 *     "notBefore": "2026-01-01T00:00:00Z", "notAfter": "2027-01-01T00:00:00Z",
 *     "revoked": { "<kid>": "2026-06-01T00:00:00Z" } }
 * A key may also be given as { "file": "...", "notBefore": "...", "notAfter": "..." }, with a
 * validity of its own: during a rollover the new key's later `notBefore` makes it the newest,
 * the one senders seal to and the organisation signs with (docs/operations.md).
 */
type KeyFileEntry = string | { file: string; notBefore?: string; notAfter?: string };

interface OrgFileEntry {
  id: string;
  name?: string;
  signing: KeyFileEntry[];
  encryption: KeyFileEntry[];
  notBefore?: string;
  notAfter?: string;
  revoked?: Record<string, string>;
}

/** A partner anchors file: each partner country and its anchors' public key files. */
function readPartnerAnchors(file: string): PartnerAnchors[] {
  const entries = readJson(file) as { country: string; anchors: string[] }[];
  return entries.map((e) => ({
    country: e.country,
    anchors: e.anchors.map((a) => readPublicJwk(resolve(dirname(file), a))),
  }));
}

export async function trustSign(
  args: {
    orgs: string;
    anchor: string;
    country: string;
    version: number;
    out: string;
    policy?: string;
    /**
     * The partner countries and their anchors' public key files, relative to this file:
     * `[{ "country": "no", "anchors": ["anchor-no.pub.jwk.json"] }]`.
     */
    partners?: string;
    /** How long the list is valid from now (it gets a notAfter); none: it never expires. */
    validForMs?: number;
  },
  io: Io,
): Promise<number> {
  const base = dirname(resolve(args.orgs));
  const entries = readJson(args.orgs) as OrgFileEntry[];
  const fileOf = (k: KeyFileEntry): string => resolve(base, typeof k === "string" ? k : k.file);
  const organisations = entries.map((e) => {
    const own = new Map<string, { notBefore?: string; notAfter?: string }>();
    const read = (k: KeyFileEntry) => {
      const jwk = readPublicJwk(fileOf(k));
      if (typeof k !== "string") own.set(jwk.kid, k);
      return jwk;
    };
    const desc = {
      id: e.id,
      signingKeys: e.signing.map(read),
      encryptionKeys: e.encryption.map(read),
      ...(e.name === undefined ? {} : { name: e.name }),
      ...(e.notBefore === undefined ? {} : { notBefore: e.notBefore }),
      ...(e.notAfter === undefined ? {} : { notAfter: e.notAfter }),
    };
    const org = describeOrganisation(desc);
    for (const key of org.keys) {
      const validity = own.get(key.kid);
      if (validity?.notBefore !== undefined) key.notBefore = validity.notBefore;
      if (validity?.notAfter !== undefined) key.notAfter = validity.notAfter;
      const revokedAt = e.revoked?.[key.kid];
      if (revokedAt !== undefined) key.revokedAt = revokedAt;
    }
    return org;
  });
  const policy = args.policy === undefined ? undefined : (readJson(args.policy) as PolicyRule[]);
  const partners =
    args.partners === undefined ? undefined : readPartnerAnchors(resolve(args.partners));
  const issuedAt = new Date();
  const list = buildTrustList({
    country: args.country,
    version: args.version,
    issuedAt,
    ...(args.validForMs === undefined
      ? {}
      : { notAfter: new Date(issuedAt.getTime() + args.validForMs) }),
    organisations,
    ...(policy === undefined ? {} : { policy }),
    ...(partners === undefined ? {} : { partners }),
  });
  const anchor = await importSigningKey(readPrivateJwk(args.anchor));
  const jws = await signTrustList(list, anchor);
  writeFile(args.out, jws);
  io.out(
    `trust list ${list.country} v${list.version}: ${organisations.length} organisations, ${list.notAfter === undefined ? "no expiry" : `valid until ${list.notAfter}`}, signed by ${anchor.kid} -> ${args.out}\n`,
  );
  return 0;
}

export async function trustVerify(args: { file: string; anchor: string }, io: Io): Promise<number> {
  const list = await verifyTrustList(
    readFileSync(args.file, "utf8").trim(),
    await readAnchors(args.anchor),
  );
  io.out(
    `trust list ${list.country} v${list.version}, issued ${list.issuedAt} by ${list.issuer}${list.notAfter === undefined ? "" : `, valid until ${list.notAfter}${Date.parse(list.notAfter) <= Date.now() ? " (EXPIRED)" : ""}`}: signature and schema OK\n`,
  );
  for (const org of list.organisations) {
    const keys = org.keys
      .map((k) => `${k.use}:${k.kid.slice(0, 8)}${k.revokedAt === undefined ? "" : " REVOKED"}`)
      .join(" ");
    io.out(`  ${org.id.padEnd(26)} ${org.role.padEnd(12)} ${keys}\n`);
  }
  return 0;
}
