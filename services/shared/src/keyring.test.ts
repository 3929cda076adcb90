import { beforeAll, describe, expect, it } from "vitest";
import { samplePersonal } from "@stafett/devkit/fixtures";
import { open, recipientKids, seal } from "./jwe.js";
import {
  generateEncryptionKey,
  generateSigningKey,
  importEncryptionKey,
  importSigningKey,
  type KeyHandle,
  type KeyPairJwk,
} from "./keys.js";
import { Keyring, currentSigningKey, decryptionKeyFor, openPersonal } from "./keyring.js";
import { keyStates, listExpiry } from "./operations.js";
import { buildTrustList } from "./organisations.js";
import { TrustStore, type TrustKey, type TrustList } from "./trust.js";

const ORG = "se:municipality:1480";
const NOW = Date.parse("2026-12-01T12:00:00Z");
const DAY = 86_400_000;
const iso = (t: number): string => new Date(t).toISOString();

let sig1: KeyPairJwk, sig2: KeyPairJwk, enc1: KeyPairJwk, enc2: KeyPairJwk;
let s1: KeyHandle, s2: KeyHandle, e1: KeyHandle, e2: KeyHandle;

beforeAll(async () => {
  [sig1, sig2, enc1, enc2] = await Promise.all([
    generateSigningKey(),
    generateSigningKey(),
    generateEncryptionKey(),
    generateEncryptionKey(),
  ]);
  [s1, s2, e1, e2] = await Promise.all([
    importSigningKey(sig1.privateJwk),
    importSigningKey(sig2.privateJwk),
    importEncryptionKey(enc1.privateJwk),
    importEncryptionKey(enc2.privateJwk),
  ]);
});

/** A trust list naming the organisation with these key entries. */
function storeWith(keys: TrustKey[], notAfter?: number): TrustStore {
  const list: TrustList = buildTrustList({
    country: "se",
    version: 1,
    issuedAt: new Date(NOW),
    ...(notAfter === undefined ? {} : { notAfter: new Date(notAfter) }),
    organisations: [
      {
        id: ORG,
        role: "municipality",
        name: "Göteborg",
        country: "se",
        region: "vast",
        municipality: "1480",
        keys,
      },
    ],
  });
  return new TrustStore([list]);
}

function entry(
  use: "sig" | "enc",
  pair: KeyPairJwk,
  from: number,
  to: number,
  revokedAt?: number,
): TrustKey {
  return {
    use,
    kid: pair.publicJwk.kid,
    jwk: pair.publicJwk,
    notBefore: iso(from),
    notAfter: iso(to),
    ...(revokedAt === undefined ? {} : { revokedAt: iso(revokedAt) }),
  };
}

describe("Keyring: a rollover", () => {
  it("signs with the newest key the trust list holds valid, and follows the list without a restart", () => {
    const ring = new Keyring(ORG, [s1, s2], [e1], () => new Date(NOW));
    let store = storeWith([
      entry("sig", sig1, NOW - 100 * DAY, NOW + 200 * DAY),
      entry("enc", enc1, NOW - DAY, NOW + DAY),
    ]);
    ring.useTrust(() => store);
    // The new key is installed, but the list does not name it yet: the old one signs.
    expect(ring.signing.kid).toBe(s1.kid);
    store = storeWith([
      entry("sig", sig1, NOW - 100 * DAY, NOW + 200 * DAY),
      entry("sig", sig2, NOW - DAY, NOW + 365 * DAY),
      entry("enc", enc1, NOW - DAY, NOW + DAY),
    ]);
    expect(ring.signing.kid).toBe(s2.kid);
    // Once the new key is revoked (a bad rollout), the old one signs again.
    store = storeWith([
      entry("sig", sig1, NOW - 100 * DAY, NOW + 200 * DAY),
      entry("sig", sig2, NOW - DAY, NOW + 365 * DAY, NOW - 1),
      entry("enc", enc1, NOW - DAY, NOW + DAY),
    ]);
    expect(ring.signing.kid).toBe(s1.kid);
    // A handle kept by someone (the audit's checkpoints) follows too.
    const kept = currentSigningKey(ring);
    expect(kept.kid).toBe(s1.kid);
    store = storeWith([
      entry("sig", sig1, NOW - 100 * DAY, NOW + 200 * DAY, NOW - 1),
      entry("sig", sig2, NOW - DAY, NOW + 365 * DAY),
      entry("enc", enc1, NOW - DAY, NOW + DAY),
    ]);
    expect(kept.kid).toBe(s2.kid);
  });

  it("opens a part sealed to either of its encryption keys", async () => {
    const ring = new Keyring(ORG, [s1], [e1, e2]);
    const referralId = "1c1b7c55-9b6a-4c2d-8f31-0c7a2f5e9d10";
    const pub1 = await importEncryptionKey(enc1.publicJwk);
    const pub2 = await importEncryptionKey(enc2.publicJwk);
    for (const pub of [pub1, pub2]) {
      const sealed = await seal(samplePersonal(), [pub], referralId);
      const key = decryptionKeyFor(ring, recipientKids(sealed));
      expect(key?.kid).toBe(pub.kid);
      if (key === undefined) throw new Error("no key");
      expect(await open(sealed, key, referralId)).toEqual(samplePersonal());
    }
    // Without the old key's file, a part sealed to it cannot be opened: that is what is lost.
    const onlyNew = new Keyring(ORG, [s1], [e2]);
    const old = await seal(samplePersonal(), [pub1], referralId);
    expect(decryptionKeyFor(onlyNew, recipientKids(old))).toBeUndefined();
  });

  it("openPersonal: opens with whichever key the part names; says which refusal it is", async () => {
    const referralId = "1c1b7c55-9b6a-4c2d-8f31-0c7a2f5e9d10";
    const pub1 = await importEncryptionKey(enc1.publicJwk);
    // Sealed to the old key, opened by a party that now encrypts with the new one.
    const old = await seal(samplePersonal(), [pub1], referralId);
    const rotated = new Keyring(ORG, [s1], [e2, e1]);
    expect(await openPersonal(rotated, old, referralId)).toEqual(samplePersonal());
    await expect(openPersonal(new Keyring(ORG, [s1], [e2]), old, referralId)).rejects.toMatchObject(
      { code: "ERR_NOT_RECIPIENT", reason: "key_not_held" },
    );
    await expect(openPersonal(rotated, undefined, referralId)).rejects.toMatchObject({
      code: "ERR_NOT_RECIPIENT",
      reason: "not_recipient",
    });
  });

  it("refuses no keys, or the same key twice", () => {
    expect(() => new Keyring(ORG, [], [e1])).toThrow(
      expect.objectContaining({ code: "ERR_KEY_INVALID" }),
    );
    expect(() => new Keyring(ORG, [s1, s1], [e1])).toThrow(
      expect.objectContaining({ reason: "duplicate_kid" }),
    );
  });
});

describe("the keys readiness check", () => {
  const WARN = 14 * DAY;
  const good = (): TrustKey[] => [
    entry("sig", sig1, NOW - DAY, NOW + 365 * DAY),
    entry("enc", enc1, NOW - DAY, NOW + 365 * DAY),
  ];

  it("passes with a listed, valid signing key and the held key senders seal to", () => {
    const ring = new Keyring(ORG, [s1], [e1]);
    expect(keyStates(ring, storeWith(good()), NOW, WARN).check).toEqual({ ok: true });
  });

  // The key entries are built when the test runs (the keys are generated in beforeAll).
  it.each<[string, () => TrustKey[], string, string]>([
    [
      "a signing key the list does not name",
      () => [entry("enc", enc1, NOW - DAY, NOW + 365 * DAY)],
      "ERR_UNKNOWN_KEY",
      "not_listed",
    ],
    [
      "a revoked signing key",
      () => [
        entry("sig", sig1, NOW - DAY, NOW + 365 * DAY, NOW - 1),
        entry("enc", enc1, NOW - DAY, NOW + 365 * DAY),
      ],
      "ERR_KEY_REVOKED",
      "revoked",
    ],
    [
      "an expired signing key",
      () => [
        entry("sig", sig1, NOW - 9 * DAY, NOW - DAY),
        entry("enc", enc1, NOW - DAY, NOW + 365 * DAY),
      ],
      "ERR_KEY_NOT_VALID",
      "outside_validity",
    ],
    [
      "a signing key that expires within the warning time",
      () => [
        entry("sig", sig1, NOW - DAY, NOW + 3 * DAY),
        entry("enc", enc1, NOW - DAY, NOW + 365 * DAY),
      ],
      "ERR_EXPIRING",
      "signing_key",
    ],
    [
      "senders sealing to a key it does not hold",
      () => [
        entry("sig", sig1, NOW - DAY, NOW + 365 * DAY),
        entry("enc", enc1, NOW - 9 * DAY, NOW + 365 * DAY),
        entry("enc", enc2, NOW - DAY, NOW + 365 * DAY),
      ],
      "ERR_KEY_INVALID",
      "not_held",
    ],
    [
      "an encryption key that expires within the warning time",
      () => [
        entry("sig", sig1, NOW - DAY, NOW + 365 * DAY),
        entry("enc", enc1, NOW - DAY, NOW + DAY),
      ],
      "ERR_EXPIRING",
      "encryption_key",
    ],
  ])("fails for %s (%s, %s)", (_what, keys, code, reason) => {
    const ring = new Keyring(ORG, [s1], [e1]);
    const { check } = keyStates(ring, storeWith(keys()), NOW, WARN);
    expect(check).toMatchObject({ ok: false, code, reason });
  });

  it("does not warn about an old key once its successor is the one in use", () => {
    const ring = new Keyring(ORG, [s1, s2], [e1, e2], () => new Date(NOW));
    const store = storeWith([
      entry("sig", sig1, NOW - 300 * DAY, NOW + 2 * DAY),
      entry("sig", sig2, NOW - DAY, NOW + 365 * DAY),
      entry("enc", enc1, NOW - 300 * DAY, NOW + 2 * DAY),
      entry("enc", enc2, NOW - DAY, NOW + 365 * DAY),
    ]);
    ring.useTrust(() => store);
    expect(keyStates(ring, store, NOW, WARN)).toEqual({
      check: { ok: true },
      signingExpiring: false,
      encryptionExpiring: false,
    });
  });
});

describe("trust list expiry", () => {
  const list = (notAfter?: number): TrustList => {
    const [l] = storeWith(
      [entry("sig", sig1, NOW - DAY, NOW + DAY), entry("enc", enc1, NOW - DAY, NOW + DAY)],
      notAfter,
    ).lists;
    if (l === undefined) throw new Error("no list");
    return l;
  };

  it("says nothing of a list without notAfter, or one far from it", () => {
    expect(listExpiry(list(), NOW, 14 * DAY)).toBeUndefined();
    expect(listExpiry(list(NOW + 30 * DAY), NOW, 14 * DAY)).toBeUndefined();
  });

  it("warns within the warning time and reports an expired list", () => {
    expect(listExpiry(list(NOW + 3 * DAY), NOW, 14 * DAY)).toMatchObject({
      code: "ERR_EXPIRING",
      reason: "trust_list",
    });
    expect(listExpiry(list(NOW - 1), NOW, 14 * DAY)).toMatchObject({
      code: "ERR_TRUST_LIST_INVALID",
      reason: "expired",
    });
  });
});
