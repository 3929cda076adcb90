import { beforeAll, describe, expect, it } from "vitest";
import { StafettError } from "./errors.js";
import { signDetached, verifyDetached } from "./jws.js";
import {
  generateSigningKey,
  importSigningKey,
  publicJwkOf,
  type KeyHandle,
  type PublicJwk,
} from "./keys.js";

/**
 * A verifier's own signature coming back is checked against the record of it instead of being
 * verified again. The record must decide exactly as Ed25519 would: these tests sign, then verify
 * as the signer, presenting what an attacker could vary (the bytes, the key, the signature).
 */
describe("verifying a signature this process made", () => {
  let signer: KeyHandle;
  let verifier: KeyHandle;
  let otherVerifier: KeyHandle;
  let publicJwk: PublicJwk;
  const payload = Uint8Array.from({ length: 1_900 }, (_, i) => (i * 31 + 3) % 256);

  beforeAll(async () => {
    const [own, other] = await Promise.all([generateSigningKey(), generateSigningKey()]);
    publicJwk = publicJwkOf(own.publicJwk);
    signer = await importSigningKey(own.privateJwk);
    verifier = await importSigningKey(publicJwk);
    otherVerifier = await importSigningKey(publicJwkOf(other.publicJwk));
  });

  const refused = (p: Promise<void>): Promise<string> =>
    p.then(
      () => "accepted",
      (err: unknown) => (err instanceof StafettError ? err.code : "threw"),
    );

  it("accepts it with the signer's public key, under any handle of that key", async () => {
    const jws = await signDetached(payload, signer);
    await verifyDetached(jws, payload, verifier, signer);
    // A handle imported again (as a trust list builds them) holds an equal key.
    await verifyDetached(jws, Uint8Array.from(payload), await importSigningKey(publicJwk), signer);
  });

  it("refuses it over bytes that differ in one byte", async () => {
    const jws = await signDetached(payload, signer);
    for (const at of [0, 950, payload.length - 1]) {
      const changed = Uint8Array.from(payload);
      changed[at] = (changed[at] ?? 0) ^ 1;
      expect(await refused(verifyDetached(jws, changed, verifier, signer))).toBe(
        "ERR_SIGNATURE_INVALID",
      );
    }
  });

  it("refuses it with another organisation's key", async () => {
    const jws = await signDetached(payload, signer);
    expect(await refused(verifyDetached(jws, payload, otherVerifier, signer))).toBe(
      "ERR_SIGNATURE_INVALID",
    );
  });

  it("refuses a signature changed in one character, and one moved to another header", async () => {
    const jws = await signDetached(payload, signer);
    const dot = jws.lastIndexOf(".");
    const sig = jws.slice(dot + 1);
    const flipped = `${jws.slice(0, dot + 1)}${sig[0] === "A" ? "B" : "A"}${sig.slice(1)}`;
    expect(await refused(verifyDetached(flipped, payload, verifier, signer))).toBe(
      "ERR_SIGNATURE_INVALID",
    );
    const otherTyp = await signDetached(payload, signer, "other+jws");
    const swapped = `${otherTyp.slice(0, otherTyp.indexOf("."))}..${sig}`;
    expect(await refused(verifyDetached(swapped, payload, verifier, signer))).toBe(
      "ERR_SIGNATURE_INVALID",
    );
  });
});
