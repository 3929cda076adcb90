/**
 * 2. Primitive baseline: the operations the handoff's security is made of, with node:crypto
 * directly (the ideal cost of the same security), and the library's four JOSE operations next
 * to jose's (WebCrypto) doing the same thing.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import { samplePersonal, type Country } from "@stafett/devkit";
import {
  decodeSignedEvent,
  issue,
  keyObjectOf,
  open,
  seal,
  signDetached,
  verifyDetached,
} from "@stafett/shared";
import { joseOpen, joseSeal, joseSignDetached, joseVerifyDetached } from "./jose-reference.js";
import type { Primitive } from "./operations.js";
import { DESTINATION, HUB, openedInput, ORIGIN } from "./sample.js";
import { bestRates } from "./stats.js";

/** node:crypto operations per second, one thread (the kinds: PRIMITIVES in operations.ts). */
export type PrimitiveRates = Record<Primitive, number>;

/** The library's JOSE operations next to jose's, per second. */
export interface JoseRates {
  library: { sign: number; verify: number; seal2: number; open: number };
  jose: { sign: number; verify: number; seal2: number; open: number };
  /**
   * The same primitive steps as the library's seal and open, called one after another with
   * node:crypto and nothing else (no JSON, no base64): what the JOSE layer adds is the difference.
   */
  bare: { seal2: number; open: number };
}

export interface PrimitivesResult {
  /** Bytes signed: the Event bytes of a real `opened`. */
  signedBytes: number;
  /** Bytes sealed: JSON.stringify(samplePersonal()). */
  personalBytes: number;
  node: PrimitiveRates;
  joseLayer: JoseRates;
}

const KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");

export async function runPrimitives(country: Country, budgetMs = 800): Promise<PrimitivesResult> {
  const origin = country.identity(ORIGIN);
  const issued = await issue(openedInput(0), { identity: origin, trust: country.trust });
  const eventBytes = decodeSignedEvent(issued.bytes).event;
  const personal = Buffer.from(JSON.stringify(samplePersonal()));

  const ed = generateKeyPairSync("ed25519");
  const signature = sign(null, eventBytes, ed.privateKey);
  const recipient = generateKeyPairSync("x25519");
  const otherInfo = Buffer.concat([
    lengthPrefixed(Buffer.from("ECDH-ES+A256KW")),
    lengthPrefixed(Buffer.alloc(0)),
    lengthPrefixed(Buffer.alloc(0)),
    uint32(256),
  ]);
  const kek = randomBytes(32);
  const cek = randomBytes(32);
  const wrapped = aesKw("wrap", kek, cek);
  const iv = randomBytes(12);
  const aad = Buffer.from(
    `eyJlbmMiOiJBMjU2R0NNIiwiY3R5IjoiYXBwbGljYXRpb24vanNvbiJ9.${"x".repeat(48)}`,
  );
  const enc = gcmEncrypt(cek, iv, aad, personal);

  const node: PrimitiveRates = await bestRates(
    {
      ed25519Sign: () => sign(null, eventBytes, ed.privateKey),
      ed25519Verify: () => verify(null, eventBytes, ed.publicKey, signature),
      x25519KeyGen: () => generateKeyPairSync("x25519"),
      x25519Agree: () => {
        const z = diffieHellman({
          privateKey: recipient.privateKey,
          publicKey: recipient.publicKey,
        });
        return createHash("sha256").update(uint32(1)).update(z).update(otherInfo).digest();
      },
      aesKwWrap: () => aesKw("wrap", kek, cek),
      aesKwUnwrap: () => aesKw("unwrap", kek, wrapped),
      aesGcmEncrypt: () => gcmEncrypt(cek, iv, aad, personal),
      aesGcmDecrypt: () => gcmDecrypt(cek, iv, aad, enc),
    },
    budgetMs * 8,
  );

  const signer = origin.signing;
  const verifier = (await country.trust.signingKey(signer.kid)).handle;
  const recipients = await country.trust.encryptionKeys([HUB, DESTINATION], new Date());
  const reader = country.identity(HUB).encryption;
  const jws = await signDetached(eventBytes, signer);
  const referralId = issued.event.referralId;
  const sealed = await seal(samplePersonal(), recipients, referralId);
  const joseSealed = await joseSeal(samplePersonal(), recipients, referralId);
  const recipientKeys = recipients.map((r) => keyObjectOf(r));
  const readerKey = keyObjectOf(reader);
  const bareSeal = (): Buffer => {
    const contentKey = randomBytes(32);
    for (const key of recipientKeys) {
      const ephemeral = generateKeyPairSync("x25519");
      const z = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: key });
      aesKw(
        "wrap",
        createHash("sha256").update(uint32(1)).update(z).update(otherInfo).digest(),
        contentKey,
      );
    }
    return gcmEncrypt(contentKey, randomBytes(12), aad, personal);
  };
  const bareOpen = (): Buffer => {
    const z = diffieHellman({ privateKey: readerKey, publicKey: recipient.publicKey });
    const agreed = createHash("sha256").update(uint32(1)).update(z).update(otherInfo).digest();
    // Unwrapped with the key it was wrapped with (the agreed one differs here): same cost.
    const contentKey = aesKw("unwrap", agreed.byteLength === 32 ? kek : agreed, wrapped);
    return gcmDecrypt(contentKey, iv, aad, enc);
  };
  const layer = await bestRates(
    {
      bareSeal2: bareSeal,
      bareOpen,
      librarySign: () => signDetached(eventBytes, signer),
      joseSign: () => joseSignDetached(eventBytes, signer),
      libraryVerify: () => verifyDetached(jws, eventBytes, verifier),
      joseVerify: () => joseVerifyDetached(jws, eventBytes, verifier),
      librarySeal2: () => seal(samplePersonal(), recipients, referralId),
      joseSeal2: () => joseSeal(samplePersonal(), recipients, referralId),
      libraryOpen: () => open(sealed, reader, referralId),
      joseOpen: () => joseOpen(joseSealed, reader),
    },
    budgetMs * 10,
  );
  const joseLayer: JoseRates = {
    library: {
      sign: layer.librarySign,
      verify: layer.libraryVerify,
      seal2: layer.librarySeal2,
      open: layer.libraryOpen,
    },
    bare: { seal2: layer.bareSeal2, open: layer.bareOpen },
    jose: {
      sign: layer.joseSign,
      verify: layer.joseVerify,
      seal2: layer.joseSeal2,
      open: layer.joseOpen,
    },
  };
  return {
    signedBytes: eventBytes.byteLength,
    personalBytes: personal.byteLength,
    node,
    joseLayer,
  };
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function lengthPrefixed(b: Buffer): Buffer {
  return Buffer.concat([uint32(b.byteLength), b]);
}

function aesKw(mode: "wrap" | "unwrap", kek: Buffer, input: Buffer): Buffer {
  const c =
    mode === "wrap"
      ? createCipheriv("id-aes256-wrap", kek, KW_IV)
      : createDecipheriv("id-aes256-wrap", kek, KW_IV);
  return Buffer.concat([c.update(input), c.final()]);
}

function gcmEncrypt(key: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.setAAD(aad);
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

function gcmDecrypt(key: Buffer, iv: Buffer, aad: Buffer, sealed: Buffer): Buffer {
  const d = createDecipheriv("aes-256-gcm", key, iv);
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.byteLength - 16));
  return Buffer.concat([d.update(sealed.subarray(0, sealed.byteLength - 16)), d.final()]);
}
