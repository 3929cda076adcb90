/**
 * An in-memory country with freshly generated keys: every organisation's identity, the anchor,
 * and the signed trust list. The demo, the benchmarks and the tests use it; production keys come
 * from `stafett keys generate` and files.
 */
import {
  buildTrustList,
  countryOrganisationIds,
  describeOrganisation,
  generateOrganisationKeys,
  generateSigningKey,
  identityFromJwks,
  importSigningKey,
  signTrustList,
  TrustStore,
  type Identity,
  type KeyHandle,
  type KeyPairJwk,
  type OrganisationKeys,
  type PartnerAnchors,
  type PolicyRule,
  type PublicJwk,
  type TrustList,
} from "@stafett/shared";

export interface Country {
  code: string;
  /** The anchor's private key (signs trust lists) and its public half (what readers trust). */
  anchor: KeyHandle;
  anchorPublic: KeyHandle;
  anchorPublicJwk: PublicJwk;
  trustList: TrustList;
  /** The trust list as the anchor signed it (compact JWS). */
  trustListJws: string;
  identities: ReadonlyMap<string, Identity>;
  keys: ReadonlyMap<string, OrganisationKeys>;
  /** A trust store of this country's list (plus `partners`' lists, when given). */
  trust: TrustStore;
  identity(id: string): Identity;
}

export interface CountryOptions {
  code: string;
  /** The anchor key pair (generated when not given; give it to name this country as a partner elsewhere). */
  anchor?: KeyPairJwk;
  /** Partner countries whose lists this country accepts, with their anchors' public keys. */
  partnerAnchors?: readonly PartnerAnchors[];
  municipalities: readonly string[];
  /** Hubs of regions with no listed municipality. */
  regions?: readonly string[];
  version?: number;
  /** When the trust list expires (none when not given). */
  trustNotAfter?: Date;
  policy?: readonly PolicyRule[];
  partners?: readonly TrustList[];
  now?: Date;
}

export async function createCountry(options: CountryOptions): Promise<Country> {
  const ids = countryOrganisationIds(options.code, options.municipalities, options.regions);
  const anchorPair = options.anchor ?? (await generateSigningKey());
  const anchor = await importSigningKey(anchorPair.privateJwk);
  const keys = new Map<string, OrganisationKeys>();
  const identities = new Map<string, Identity>();
  await Promise.all(
    ids.map(async (id) => {
      const k = await generateOrganisationKeys();
      keys.set(id, k);
      identities.set(id, await identityFromJwks(id, k.signing.privateJwk, k.encryption.privateJwk));
    }),
  );
  const now = options.now ?? new Date();
  const notBefore = new Date(now.getTime() - 24 * 3_600_000).toISOString();
  const organisations = ids.map((id) => {
    const k = keys.get(id);
    if (k === undefined) throw new Error("key generation out of step");
    return describeOrganisation(
      {
        id,
        signingKeys: [k.signing.publicJwk],
        encryptionKeys: [k.encryption.publicJwk],
        notBefore,
      },
      now,
    );
  });
  const listInput = {
    country: options.code,
    version: options.version ?? 1,
    organisations,
    issuedAt: now,
    ...(options.trustNotAfter === undefined ? {} : { notAfter: options.trustNotAfter }),
    ...(options.partnerAnchors === undefined ? {} : { partners: options.partnerAnchors }),
  };
  const trustList = buildTrustList(
    options.policy === undefined ? listInput : { ...listInput, policy: options.policy },
  );
  const trustListJws = await signTrustList(trustList, anchor);
  return {
    code: options.code,
    anchor,
    anchorPublic: await importSigningKey(anchorPair.publicJwk),
    anchorPublicJwk: anchorPair.publicJwk,
    trustList,
    trustListJws,
    identities,
    keys,
    trust: new TrustStore([trustList, ...(options.partners ?? [])]),
    identity(id: string): Identity {
      const identity = identities.get(id);
      if (identity === undefined) throw new Error(`no identity ${id} in this country`);
      return identity;
    },
  };
}
