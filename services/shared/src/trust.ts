/**
 * The national trust list: every organisation, its role and address, its public keys with
 * their validity, and which event types each role may send to which role. The national
 * coordinator's anchor key signs it (compact JWS, attached JSON payload); readers accept only
 * lists signed by an anchor they are configured with. Partner countries' lists are accepted
 * through the partner anchors a liaison is configured with; they may only name organisations
 * of their own country.
 */
import { CompactSign, compactVerify, decodeProtectedHeader } from "jose";
import { StafettError } from "./errors.js";
import {
  importEncryptionKey,
  importSigningKey,
  SIGNING_ALG,
  type KeyHandle,
  type PublicJwk,
} from "./keys.js";
import { parseOrgId } from "./subjects.js";
import { validateTrustList } from "./validate.js";
import type { EventType, Role } from "./types.js";

export const TRUST_JWS_TYP = "stafett-trust+jws";

export interface TrustKey {
  use: "sig" | "enc";
  kid: string;
  jwk: PublicJwk;
  notBefore: string;
  notAfter: string;
  revokedAt?: string;
}

export interface Organisation {
  id: string;
  role: Role;
  name: string;
  country: string;
  region?: string;
  municipality?: string;
  keys: TrustKey[];
}

export interface PolicyRule {
  from: Role;
  to: Role;
  types: EventType[];
}

/** A partner country whose trust list this country accepts, and the anchors that sign it. */
export interface PartnerAnchors {
  country: string;
  anchors: PublicJwk[];
}

export interface TrustList {
  version: number;
  country: string;
  issuer: string;
  issuedAt: string;
  /** When the list expires (optional): services warn before and report it as not ready after. */
  notAfter?: string;
  organisations: Organisation[];
  policy: PolicyRule[];
  partners?: PartnerAnchors[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export async function signTrustList(list: TrustList, anchor: KeyHandle): Promise<string> {
  validateTrustList(list);
  checkConsistency(list);
  return new CompactSign(encoder.encode(JSON.stringify(list)))
    .setProtectedHeader({ alg: SIGNING_ALG, kid: anchor.kid, typ: TRUST_JWS_TYP })
    .sign(anchor.key);
}

export async function verifyTrustList(
  jws: string,
  anchors: readonly KeyHandle[],
  country?: string,
): Promise<TrustList> {
  let kid: unknown;
  try {
    const header = decodeProtectedHeader(jws);
    kid = header.kid;
    const extra = Object.keys(header).find((k) => k !== "alg" && k !== "kid" && k !== "typ");
    if (extra !== undefined || header.typ !== TRUST_JWS_TYP)
      throw new StafettError(
        "ERR_TRUST_LIST_INVALID",
        `a trust list's protected header is exactly alg, kid and typ ${TRUST_JWS_TYP}`,
        { reason: extra === undefined ? "typ" : "header_member", field: "typ" },
      );
  } catch (cause) {
    if (cause instanceof StafettError) throw cause;
    throw new StafettError("ERR_TRUST_LIST_INVALID", "trust list is not a compact JWS", {
      reason: "format",
      cause,
    });
  }
  const anchor = anchors.find((a) => a.kid === kid);
  if (anchor === undefined) {
    throw new StafettError(
      "ERR_TRUST_LIST_INVALID",
      "trust list is not signed by a configured anchor",
      {
        reason: "unknown_anchor",
        field: "kid",
      },
    );
  }
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, anchor.key, { algorithms: [SIGNING_ALG] }));
  } catch (cause) {
    throw new StafettError("ERR_TRUST_LIST_INVALID", "trust list signature does not verify", {
      reason: "signature",
      cause,
    });
  }
  let list: unknown;
  try {
    list = JSON.parse(decoder.decode(payload));
  } catch (cause) {
    throw new StafettError("ERR_TRUST_LIST_INVALID", "trust list payload is not JSON", {
      reason: "not_json",
      cause,
    });
  }
  validateTrustList(list);
  const trusted = list as TrustList;
  checkConsistency(trusted);
  if (country !== undefined && trusted.country !== country)
    throw new StafettError("ERR_TRUST_LIST_INVALID", "the trust list is of another country", {
      reason: "country",
      field: "/country",
    });
  return trusted;
}

/**
 * A partner country's trust list, as every reader takes it: only for a country the own list
 * names as a partner, verified with the anchors the own list gives for it, and of that country.
 */
export async function verifyPartnerList(jws: string, own: TrustList): Promise<TrustList> {
  let claimed: unknown;
  try {
    const payload = jws.split(".")[1] ?? "";
    claimed = (
      JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { country?: unknown }
    ).country;
  } catch (cause) {
    throw new StafettError("ERR_TRUST_LIST_INVALID", "trust list is not a compact JWS", {
      reason: "format",
      cause,
    });
  }
  const partner = (own.partners ?? []).find((p) => p.country === claimed);
  if (partner === undefined || typeof claimed !== "string")
    throw new StafettError(
      "ERR_TRUST_LIST_INVALID",
      "the own trust list names no such partner country",
      { reason: "not_partner", field: "/country" },
    );
  const anchors = await Promise.all(partner.anchors.map((a) => importSigningKey(a)));
  return verifyTrustList(jws, anchors, claimed);
}

/** What a schema cannot say: ids agree with roles and addresses, kids with their JWKs. */
function checkConsistency(list: TrustList): void {
  if (list.issuer !== `${list.country}:coordinator`)
    throw new StafettError(
      "ERR_TRUST_LIST_INVALID",
      "a trust list is issued by its country's coordinator",
      { reason: "issuer", field: "/issuer" },
    );
  for (const p of list.partners ?? []) {
    if (p.country === list.country) {
      throw new StafettError("ERR_TRUST_LIST_INVALID", "a country cannot be its own partner", {
        reason: "partner",
        field: "/partners",
      });
    }
    if (p.anchors.some((a) => a.crv !== "Ed25519")) {
      throw new StafettError("ERR_TRUST_LIST_INVALID", "partner anchors are Ed25519 keys", {
        reason: "crv",
        field: "/partners",
      });
    }
  }
  const ids = new Set<string>();
  const kids = new Set<string>();
  list.organisations.forEach((org, i) => {
    const field = `/organisations/${i}`;
    const fail = (reason: string, message: string): never => {
      throw new StafettError("ERR_TRUST_LIST_INVALID", message, { reason, field });
    };
    let address;
    try {
      address = parseOrgId(org.id);
    } catch {
      return fail("id", "organisation id is not valid");
    }
    if (ids.has(org.id)) fail("duplicate_id", "organisation listed twice");
    ids.add(org.id);
    if (address.role !== org.role) fail("role", "role does not match the organisation id");
    if (address.country !== org.country || org.country !== list.country) {
      fail("country", "organisation is not of the trust list's country");
    }
    if (address.role === "hub" && org.region !== address.region)
      fail("region", "hub region does not match its id");
    if (address.role === "municipality" && org.municipality !== address.code) {
      fail("municipality", "municipality code does not match its id");
    }
    for (const key of org.keys) {
      if (key.jwk.kid !== key.kid) fail("kid", "key entry kid differs from its JWK kid");
      if (kids.has(key.kid)) fail("duplicate_kid", "kid listed twice");
      kids.add(key.kid);
      const crv = key.use === "sig" ? "Ed25519" : "X25519";
      if (key.jwk.crv !== crv) fail("crv", `a ${key.use} key must be ${crv}`);
    }
  });
}

interface KeyEntry {
  org: Organisation;
  key: TrustKey;
  handle?: Promise<KeyHandle>;
}

/**
 * A verified view of one or more trust lists: the first is the own country's, whose policy
 * applies; the others contribute their organisations (partners). Imported keys are cached.
 */
export class TrustStore {
  readonly lists: readonly TrustList[];
  private readonly orgs = new Map<string, Organisation>();
  private readonly keys = new Map<string, KeyEntry>();
  private readonly allowed = new Set<string>();

  constructor(lists: readonly TrustList[]) {
    if (lists.length === 0)
      throw new StafettError("ERR_TRUST_LIST_INVALID", "no trust list", { reason: "missing" });
    this.lists = lists;
    for (const list of lists) {
      for (const org of list.organisations) {
        if (this.orgs.has(org.id)) {
          throw new StafettError("ERR_TRUST_LIST_INVALID", "organisation in two trust lists", {
            reason: "duplicate_id",
          });
        }
        this.orgs.set(org.id, org);
        for (const key of org.keys) this.keys.set(key.kid, { org, key });
      }
    }
    for (const rule of lists[0]?.policy ?? []) {
      for (const type of rule.types) this.allowed.add(`${rule.from}>${type}>${rule.to}`);
    }
  }

  get version(): number {
    return this.lists[0]?.version ?? 0;
  }

  get country(): string {
    return this.lists[0]?.country ?? "";
  }

  organisation(id: string): Organisation | undefined {
    return this.orgs.get(id);
  }

  /** The trust list's entry for key `kid`, if it has one. */
  key(kid: string): TrustKey | undefined {
    return this.keys.get(kid)?.key;
  }

  organisations(): Organisation[] {
    return [...this.orgs.values()];
  }

  /** May an organisation of role `from` send events of `type` to one of role `to`? */
  mayEmit(from: Role, type: EventType, to: Role): boolean {
    return this.allowed.has(`${from}>${type}>${to}`);
  }

  /**
   * The signing key `kid` with its owner and the imported key (imported once, then cached).
   * Whether it may be used at a given time is `checkKeyUsable`'s question.
   */
  async signingKey(kid: string): Promise<{ org: Organisation; key: TrustKey; handle: KeyHandle }> {
    const entry = this.keys.get(kid);
    if (entry === undefined || entry.key.use !== "sig") {
      throw new StafettError("ERR_UNKNOWN_KEY", "signing key is not in the trust list", {
        reason: "unknown",
        field: "kid",
      });
    }
    entry.handle ??= importSigningKey(entry.key.jwk);
    return { org: entry.org, key: entry.key, handle: await entry.handle };
  }

  /** The current encryption key of each organisation, for sealing to it at time `at`. */
  async encryptionKeys(orgIds: readonly string[], at: Date): Promise<KeyHandle[]> {
    return Promise.all(
      orgIds.map(async (id) => {
        const org = this.orgs.get(id);
        if (org === undefined) {
          throw new StafettError("ERR_UNKNOWN_ORGANISATION", "recipient is not in the trust list", {
            reason: "unknown",
            field: "recipients",
          });
        }
        const key = org.keys
          .filter((k) => k.use === "enc" && usable(k, at))
          .sort((a, b) => Date.parse(b.notBefore) - Date.parse(a.notBefore))[0];
        if (key === undefined) {
          throw new StafettError("ERR_KEY_NOT_VALID", "recipient has no valid encryption key", {
            reason: "no_valid_key",
            field: "recipients",
          });
        }
        const entry = this.keys.get(key.kid);
        if (entry === undefined) throw new Error("trust store index out of step");
        entry.handle ??= importEncryptionKey(key.jwk);
        return entry.handle;
      }),
    );
  }
}

function usable(key: TrustKey, at: Date): boolean {
  const t = at.getTime();
  return (
    key.revokedAt === undefined && Date.parse(key.notBefore) <= t && t <= Date.parse(key.notAfter)
  );
}

/**
 * For an event another party relays (the opened inside a hub's hand-on): the key is judged by
 * its state when the first receiver took the event, not now. That receiver refused a revoked key
 * itself, so what it relays was signed before the revocation: it is refused only when it claims
 * a time at or after the revocation, or outside the key's validity.
 */
export function checkRelayedKeyUsable(key: TrustKey, at: Date): void {
  if (key.revokedAt !== undefined && Date.parse(key.revokedAt) <= at.getTime()) {
    throw new StafettError("ERR_KEY_REVOKED", "key was revoked before the event's time", {
      reason: "revoked",
      field: "kid",
    });
  }
  const { revokedAt: _revokedAt, ...unrevoked } = key;
  checkKeyUsable(unrevoked, at);
}

/** Refuses a revoked key, or one used outside its validity. */
export function checkKeyUsable(key: TrustKey, at: Date): void {
  // A revoked key is refused whatever time the event claims: a thief can backdate an event.
  if (key.revokedAt !== undefined) {
    throw new StafettError("ERR_KEY_REVOKED", "key has been revoked", {
      reason: "revoked",
      field: "kid",
    });
  }
  const t = at.getTime();
  if (!(Date.parse(key.notBefore) <= t && t <= Date.parse(key.notAfter))) {
    throw new StafettError("ERR_KEY_NOT_VALID", "key is not valid at the event's time", {
      reason: "outside_validity",
      field: "kid",
    });
  }
}
