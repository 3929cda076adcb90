/**
 * The node:crypto fast path (jws.ts, jwe.ts) against jose, in both directions: jose verifies
 * what we sign and decrypts what we seal; we verify and open what jose makes. Same wire format:
 * detached compact JWS with EdDSA over BASE64URL(event bytes); JWE general JSON serialization,
 * ECDH-ES+A256KW with X25519 per recipient, A256GCM, AAD = BASE64URL(referral id).
 */
import { randomUUID } from "node:crypto";
import {
  compactVerify,
  flattenedVerify,
  FlattenedSign,
  GeneralEncrypt,
  generalDecrypt,
  generateKeyPair,
  type GeneralJWE,
} from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { StafettError } from "./errors.js";
import { open, recipientKids, seal } from "./jwe.js";
import { readJwsHeader, signDetached, verifyDetached, EVENT_JWS_TYP } from "./jws.js";
import {
  CONTENT_ENC,
  generateEncryptionKey,
  generateSigningKey,
  importEncryptionKey,
  importSigningKey,
  KEY_WRAP_ALG,
  publicJwkOf,
  SIGNING_ALG,
  type KeyHandle,
} from "./keys.js";
import { samplePersonal } from "@stafett/devkit/fixtures";

const encoder = new TextEncoder();
const b64u = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url");

/** One organisation's four keys: signing and verifying, decrypting and encrypting. */
interface KeySet {
  sign: KeyHandle;
  verify: KeyHandle;
  decrypt: KeyHandle;
  encrypt: KeyHandle;
}

async function keySet(): Promise<KeySet> {
  const [s, e] = await Promise.all([generateSigningKey(), generateEncryptionKey()]);
  return {
    sign: await importSigningKey(s.privateJwk),
    verify: await importSigningKey(publicJwkOf(s.publicJwk)),
    decrypt: await importEncryptionKey(e.privateJwk),
    encrypt: await importEncryptionKey(publicJwkOf(e.publicJwk)),
  };
}

/** A handle with only the WebCrypto key, as code written before the fast path builds them. */
const cryptoKeyOnly = (h: KeyHandle): KeyHandle => ({ kid: h.kid, key: h.key });

function expectCode(err: unknown, code: string, reason?: string): void {
  expect(err).toBeInstanceOf(StafettError);
  expect((err as StafettError).code).toBe(code);
  if (reason !== undefined) expect((err as StafettError).reason).toBe(reason);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: unknown) => err,
  );
}

let alice: KeySet;
let bob: KeySet;
let carol: KeySet;
/** Stands for an Event's protobuf bytes: binary, any byte value, the size of a real one. */
const payload = Uint8Array.from({ length: 1_784 }, (_, i) => (i * 151 + 7) % 256);

beforeAll(async () => {
  [alice, bob, carol] = await Promise.all([keySet(), keySet(), keySet()]);
});

describe("detached JWS (EdDSA)", () => {
  it("jose verifies what signDetached makes, with the payload put back between the dots", async () => {
    const jws = await signDetached(payload, alice.sign);
    const [protectedHeader = "", middle, signature = ""] = jws.split(".");
    expect(middle).toBe("");
    const flat = await flattenedVerify(
      { protected: protectedHeader, payload: b64u(payload), signature },
      alice.verify.key,
      { algorithms: [SIGNING_ALG] },
    );
    expect(flat.protectedHeader).toEqual({ alg: "EdDSA", kid: alice.sign.kid, typ: EVENT_JWS_TYP });
    expect(Buffer.from(flat.payload).equals(Buffer.from(payload))).toBe(true);
    const compact = await compactVerify(
      `${protectedHeader}.${b64u(payload)}.${signature}`,
      alice.verify.key,
    );
    expect(compact.protectedHeader.kid).toBe(alice.sign.kid);
  });

  it("makes exactly jose's bytes (Ed25519 is deterministic)", async () => {
    for (const typ of [EVENT_JWS_TYP, "stafett-trust+jws"]) {
      const jose = await new FlattenedSign(payload)
        .setProtectedHeader({ alg: SIGNING_ALG, kid: alice.sign.kid, typ })
        .sign(alice.sign.key);
      expect(await signDetached(payload, alice.sign, typ)).toBe(
        `${jose.protected}..${jose.signature}`,
      );
    }
  });

  it("verifyDetached accepts what jose signs, and reads its header", async () => {
    const jose = await new FlattenedSign(payload)
      .setProtectedHeader({ alg: SIGNING_ALG, kid: alice.sign.kid, typ: EVENT_JWS_TYP })
      .sign(alice.sign.key);
    const jws = `${jose.protected}..${jose.signature}`;
    await expect(verifyDetached(jws, payload, alice.verify)).resolves.toBeUndefined();
    expect(readJwsHeader(jws)).toEqual({ alg: "EdDSA", kid: alice.sign.kid, typ: EVENT_JWS_TYP });
  });

  it("works with handles that carry only a CryptoKey", async () => {
    const jws = await signDetached(payload, cryptoKeyOnly(alice.sign));
    await expect(
      verifyDetached(jws, payload, cryptoKeyOnly(alice.verify)),
    ).resolves.toBeUndefined();
    await expect(verifyDetached(jws, payload, alice.verify)).resolves.toBeUndefined();
  });

  it("neither accepts a changed payload, a changed signature or another key", async () => {
    const jws = await signDetached(payload, alice.sign);
    const changed = Uint8Array.from(payload);
    changed[0] = (changed[0] ?? 0) ^ 1;
    const [p = "", , s = ""] = jws.split(".");
    const otherSig = `${s.slice(0, 10)}${s[10] === "A" ? "B" : "A"}${s.slice(11)}`;
    for (const [candidate, bytes, key] of [
      [jws, changed, alice.verify],
      [`${p}..${otherSig}`, payload, alice.verify],
      [jws, payload, bob.verify],
    ] as const) {
      expectCode(
        await rejection(verifyDetached(candidate, bytes, key)),
        "ERR_SIGNATURE_INVALID",
        "check_failed",
      );
      const [cp = "", , cs = ""] = candidate.split(".");
      await expect(
        flattenedVerify({ protected: cp, payload: b64u(bytes), signature: cs }, key.key),
      ).rejects.toThrow();
    }
  });

  it("refuses another algorithm, an attached payload and a private key in place of a public one", async () => {
    const { privateKey } = await generateKeyPair("ES256");
    const es = await new FlattenedSign(payload)
      .setProtectedHeader({ alg: "ES256", kid: alice.sign.kid })
      .sign(privateKey);
    expectCode(
      await rejection(verifyDetached(`${es.protected}..${es.signature}`, payload, alice.verify)),
      "ERR_SIGNATURE_INVALID",
    );
    const jws = await signDetached(payload, alice.sign);
    const [p = "", , s = ""] = jws.split(".");
    expectCode(
      await rejection(verifyDetached(`${p}.${b64u(payload)}.${s}`, payload, alice.verify)),
      "ERR_SIGNATURE_INVALID",
    );
    expectCode(await rejection(verifyDetached(jws, payload, alice.sign)), "ERR_SIGNATURE_INVALID");
  });
});

describe("JWE (ECDH-ES+A256KW, X25519, A256GCM)", () => {
  const personal = samplePersonal(3);

  async function joseSeal(
    recipients: readonly KeyHandle[],
    referralId: string,
    apu?: string,
  ): Promise<string> {
    const jwe = new GeneralEncrypt(encoder.encode(JSON.stringify(personal)))
      .setProtectedHeader({ enc: CONTENT_ENC, cty: "application/json" })
      .setAdditionalAuthenticatedData(encoder.encode(referralId));
    for (const r of recipients) {
      const recipient = jwe
        .addRecipient(r.key)
        .setUnprotectedHeader({ alg: KEY_WRAP_ALG, kid: r.kid });
      if (apu !== undefined) {
        recipient.setKeyManagementParameters({
          apu: encoder.encode(apu),
          apv: encoder.encode(`${apu}-v`),
        });
      }
    }
    return JSON.stringify(await jwe.encrypt());
  }

  /** Member names, recursively, so two JWEs can be compared in shape whatever their values. */
  function shape(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(shape);
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v)]));
    }
    return typeof value;
  }

  for (const count of [1, 2, 3]) {
    it(`jose decrypts what seal makes for ${count} recipient(s), for each of them`, async () => {
      const readers = [bob, carol, alice].slice(0, count);
      const referralId = randomUUID();
      const sealed = await seal(
        personal,
        readers.map((r) => r.encrypt),
        referralId,
      );
      expect(recipientKids(sealed)).toEqual(readers.map((r) => r.encrypt.kid));
      for (const r of readers) {
        const out = await generalDecrypt(JSON.parse(sealed) as GeneralJWE, r.decrypt.key, {
          keyManagementAlgorithms: [KEY_WRAP_ALG],
          contentEncryptionAlgorithms: [CONTENT_ENC],
        });
        expect(JSON.parse(new TextDecoder().decode(out.plaintext))).toEqual(personal);
        expect(new TextDecoder().decode(out.additionalAuthenticatedData)).toBe(referralId);
        expect(out.protectedHeader?.enc).toBe(CONTENT_ENC);
      }
    });

    it(`seal writes jose's layout for ${count} recipient(s)`, async () => {
      const readers = [bob, carol, alice].slice(0, count).map((r) => r.encrypt);
      const referralId = randomUUID();
      const ours = JSON.parse(await seal(personal, readers, referralId)) as GeneralJWE;
      const theirs = JSON.parse(await joseSeal(readers, referralId)) as GeneralJWE;
      expect(JSON.stringify(shape(ours))).toBe(JSON.stringify(shape(theirs)));
      const header = (j: GeneralJWE): unknown =>
        JSON.parse(Buffer.from(j.protected ?? "", "base64url").toString());
      expect(JSON.stringify(shape(header(ours)))).toBe(JSON.stringify(shape(header(theirs))));
      expect(ours.aad).toBe(theirs.aad);
    });

    it(`open reads what jose seals for ${count} recipient(s)`, async () => {
      const readers = [bob, carol, alice].slice(0, count);
      const referralId = randomUUID();
      const sealed = await joseSeal(
        readers.map((r) => r.encrypt),
        referralId,
      );
      for (const r of readers) {
        expect(await open(sealed, r.decrypt, referralId)).toEqual(personal);
        expect(await open(sealed, cryptoKeyOnly(r.decrypt), referralId)).toEqual(personal);
      }
    });
  }

  it("open reads jose's agreement party info (apu, apv)", async () => {
    const referralId = randomUUID();
    const sealed = await joseSeal([bob.encrypt, carol.encrypt], referralId, "stafett");
    expect(await open(sealed, carol.decrypt, referralId)).toEqual(personal);
  });

  it("neither opens a part moved to another referral, or with a changed ciphertext", async () => {
    const referralId = randomUUID();
    const sealed = await seal(personal, [bob.encrypt, carol.encrypt], referralId);
    expectCode(
      await rejection(open(sealed, bob.decrypt, randomUUID())),
      "ERR_DECRYPT_FAILED",
      "aad_mismatch",
    );
    const jwe = JSON.parse(sealed) as GeneralJWE;
    const c = jwe.ciphertext;
    const changed = { ...jwe, ciphertext: `${c[0] === "A" ? "B" : "A"}${c.slice(1)}` };
    expectCode(
      await rejection(open(JSON.stringify(changed), bob.decrypt, referralId)),
      "ERR_DECRYPT_FAILED",
      "check_failed",
    );
    await expect(generalDecrypt(changed, bob.decrypt.key)).rejects.toThrow();
    const moved = { ...jwe, aad: b64u(encoder.encode("other")) };
    await expect(generalDecrypt(moved, bob.decrypt.key)).rejects.toThrow();
  });

  it("refuses a reader that is not a recipient, another enc, and a low-order ephemeral key", async () => {
    const referralId = randomUUID();
    const sealed = await seal(personal, [bob.encrypt, carol.encrypt], referralId);
    expectCode(
      await rejection(open(sealed, alice.decrypt, referralId)),
      "ERR_NOT_RECIPIENT",
      "not_recipient",
    );

    const a128 = new GeneralEncrypt(encoder.encode("{}"))
      .setProtectedHeader({ enc: "A128GCM" })
      .setAdditionalAuthenticatedData(encoder.encode(referralId));
    a128
      .addRecipient(bob.encrypt.key)
      .setUnprotectedHeader({ alg: KEY_WRAP_ALG, kid: bob.encrypt.kid });
    a128
      .addRecipient(carol.encrypt.key)
      .setUnprotectedHeader({ alg: KEY_WRAP_ALG, kid: carol.encrypt.kid });
    expectCode(
      await rejection(open(JSON.stringify(await a128.encrypt()), bob.decrypt, referralId)),
      "ERR_DECRYPT_FAILED",
    );

    const jwe = JSON.parse(sealed) as GeneralJWE;
    const lowOrder = {
      ...jwe,
      recipients: jwe.recipients.map((r) => ({
        ...r,
        header: { ...r.header, epk: { kty: "OKP", crv: "X25519", x: b64u(new Uint8Array(32)) } },
      })),
    };
    expectCode(
      await rejection(open(JSON.stringify(lowOrder), bob.decrypt, referralId)),
      "ERR_DECRYPT_FAILED",
    );
  });
});
