/**
 * Building trust lists from organisation descriptions, the default policy, and identities from
 * private key files' contents. Used by the CLI (`stafett trust sign`), provisioning and the demo.
 */
import { StafettError } from "./errors.js";
import { municipality as municipalityOf } from "./geo.js";
import {
  generateEncryptionKey,
  generateSigningKey,
  importEncryptionKey,
  importSigningKey,
  publicJwkOf,
  type KeyPairJwk,
  type PrivateJwk,
  type PublicJwk,
} from "./keys.js";
import type { Identity } from "./pipeline.js";
import { coordinatorId, hubId, liaisonId, municipalityId, parseOrgId } from "./subjects.js";
import type { Organisation, PartnerAnchors, PolicyRule, TrustKey, TrustList } from "./trust.js";
import type { Role } from "./types.js";
import { region as regionOf } from "./geo.js";

/**
 * Who may send what to whom. Municipalities talk to hubs (the hub relays to other
 * municipalities), and to partner countries through their own liaison; hubs relay, receipt and
 * escalate; liaisons relay across the border; anyone may answer with a receipt or a rejection.
 */
export const DEFAULT_POLICY: readonly PolicyRule[] = [
  {
    from: "municipality",
    to: "hub",
    types: ["opened", "updated", "withdrawn", "closed", "accepted", "declined"],
  },
  {
    from: "municipality",
    to: "liaison",
    types: ["opened", "updated", "withdrawn", "closed", "accepted", "declined"],
  },
  { from: "hub", to: "municipality", types: ["forwarded", "escalated"] },
  { from: "hub", to: "hub", types: ["forwarded"] },
  { from: "hub", to: "liaison", types: ["forwarded"] },
  // A hub reports its region's open referrals, in aggregate, to the national coordinator alone.
  { from: "hub", to: "coordinator", types: ["escalated", "forwarded", "reported"] },
  // A contact point refers a child to a partner's contact point, follows it up, and answers.
  {
    from: "liaison",
    to: "liaison",
    types: ["opened", "updated", "withdrawn", "closed", "forwarded", "accepted", "declined"],
  },
  { from: "liaison", to: "hub", types: ["forwarded"] },
  // A partner's contact point may accept or decline on behalf of its country.
  {
    from: "liaison",
    to: "municipality",
    types: ["forwarded", "accepted", "declined", "escalated"],
  },
  { from: "liaison", to: "coordinator", types: ["escalated", "forwarded"] },
  { from: "coordinator", to: "hub", types: ["forwarded"] },
  { from: "coordinator", to: "municipality", types: ["forwarded"] },
  ...(["municipality", "hub", "liaison", "coordinator"] as const).flatMap((from) =>
    (["municipality", "hub", "liaison", "coordinator"] as const).map((to): PolicyRule => ({
      from,
      to,
      types: ["received", "rejected"],
    })),
  ),
];

export interface OrganisationDescription {
  id: string;
  name?: string;
  signingKeys: readonly PublicJwk[];
  encryptionKeys: readonly PublicJwk[];
  /** Validity of the keys listed; defaults: from now, for one year. */
  notBefore?: string;
  notAfter?: string;
}

const YEAR_MS = 365 * 24 * 3_600_000;

export function describeOrganisation(
  desc: OrganisationDescription,
  now = new Date(),
): Organisation {
  const address = parseOrgId(desc.id);
  const notBefore = desc.notBefore ?? now.toISOString();
  const notAfter = desc.notAfter ?? new Date(Date.parse(notBefore) + YEAR_MS).toISOString();
  const keys: TrustKey[] = [
    ...desc.signingKeys.map((jwk) => trustKey("sig", jwk, notBefore, notAfter)),
    ...desc.encryptionKeys.map((jwk) => trustKey("enc", jwk, notBefore, notAfter)),
  ];
  const org: Organisation = {
    id: desc.id,
    role: address.role,
    name: desc.name ?? defaultName(desc.id),
    country: address.country,
    keys,
  };
  if (address.role === "hub") org.region = address.region;
  if (address.role === "municipality") {
    org.municipality = address.code;
    if (address.country === "se") org.region = municipalityOf(address.code).region;
  }
  return org;
}

function trustKey(
  use: "sig" | "enc",
  jwk: PublicJwk,
  notBefore: string,
  notAfter: string,
): TrustKey {
  const pub = publicJwkOf(jwk);
  return { use, kid: pub.kid, jwk: pub, notBefore, notAfter };
}

function defaultName(id: string): string {
  const a = parseOrgId(id);
  switch (a.role) {
    case "municipality":
      return a.country === "se"
        ? `${municipalityOf(a.code).name} socialtjänst`
        : `Municipality ${a.code}`;
    case "hub":
      return a.country === "se"
        ? `Regionkoordinator ${regionOf(a.region).name}`
        : `Regional hub ${a.region}`;
    case "liaison":
      return `National liaison (${a.country.toUpperCase()})`;
    case "coordinator":
      return `National coordinator (${a.country.toUpperCase()})`;
  }
}

export interface TrustListInput {
  country: string;
  version: number;
  organisations: readonly Organisation[];
  policy?: readonly PolicyRule[];
  issuedAt?: Date;
  /** When the list expires; none when not given. */
  notAfter?: Date;
  partners?: readonly PartnerAnchors[];
}

export function buildTrustList(input: TrustListInput): TrustList {
  return {
    version: input.version,
    country: input.country,
    issuer: coordinatorId(input.country),
    issuedAt: (input.issuedAt ?? new Date()).toISOString(),
    ...(input.notAfter === undefined ? {} : { notAfter: input.notAfter.toISOString() }),
    organisations: [...input.organisations],
    policy: (input.policy ?? DEFAULT_POLICY).map((r) => ({ ...r, types: [...r.types] })),
    ...(input.partners === undefined
      ? {}
      : { partners: input.partners.map((p) => ({ country: p.country, anchors: [...p.anchors] })) }),
  };
}

export interface OrganisationKeys {
  signing: KeyPairJwk;
  encryption: KeyPairJwk;
}

export async function generateOrganisationKeys(): Promise<OrganisationKeys> {
  const [signing, encryption] = await Promise.all([generateSigningKey(), generateEncryptionKey()]);
  return { signing, encryption };
}

export async function identityFromJwks(
  id: string,
  signing: PrivateJwk,
  encryption: PrivateJwk,
): Promise<Identity> {
  parseOrgId(id);
  if (typeof signing.d !== "string" || typeof encryption.d !== "string") {
    throw new StafettError("ERR_KEY_INVALID", "an identity needs private keys", {
      reason: "not_private",
    });
  }
  const [s, e] = await Promise.all([importSigningKey(signing), importEncryptionKey(encryption)]);
  return { id, signing: s, encryption: e };
}

/** The organisation ids of a country layout: its hubs follow from the municipalities' regions. */
export function countryOrganisationIds(
  country: string,
  municipalityCodes: readonly string[],
  regions?: readonly string[],
): string[] {
  const hubs = new Set(regions ?? []);
  if (country === "se") for (const code of municipalityCodes) hubs.add(municipalityOf(code).region);
  return [
    coordinatorId(country),
    liaisonId(country),
    ...[...hubs].map((r) => hubId(country, r)),
    ...municipalityCodes.map((c) => municipalityId(country, c)),
  ];
}

export type { Role };
