/**
 * Organisation keys: an Ed25519 signing key and an X25519 encryption key, as JWKs whose `kid`
 * is the RFC 7638 thumbprint. Public keys travel in the trust list; private keys stay in files
 * that only their owner can read.
 */
import { KeyObject } from "node:crypto";
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from "jose";
import { StafettError } from "./errors.js";

export const SIGNING_ALG = "EdDSA";
export const KEY_WRAP_ALG = "ECDH-ES+A256KW";
export const CONTENT_ENC = "A256GCM";

export type KeyUse = "sig" | "enc";

export interface PublicJwk extends JWK {
  kty: string;
  crv: "Ed25519" | "X25519";
  x: string;
  kid: string;
}

export interface PrivateJwk extends PublicJwk {
  d: string;
}

export interface KeyPairJwk {
  publicJwk: PublicJwk;
  privateJwk: PrivateJwk;
}

/**
 * A ready-to-use key: imported once, reused for every message. `key` is the WebCrypto key that
 * jose takes (trust lists, tokens); `keyObject` is the same key for node:crypto, which the
 * event signatures and sealed parts use (jws.ts, jwe.ts). A handle built with only `key` gets
 * its KeyObject derived on first use (`keyObjectOf`).
 */
export interface KeyHandle {
  kid: string;
  key: CryptoKey;
  keyObject?: KeyObject;
}

const derivedKeyObjects = new WeakMap<CryptoKey, KeyObject>();

/** The node:crypto KeyObject of a handle: its own, or one derived from its CryptoKey once. */
export function keyObjectOf(handle: KeyHandle): KeyObject {
  if (handle.keyObject !== undefined) return handle.keyObject;
  let keyObject = derivedKeyObjects.get(handle.key);
  if (keyObject === undefined) {
    keyObject = KeyObject.from(handle.key);
    derivedKeyObjects.set(handle.key, keyObject);
  }
  return keyObject;
}

export async function generateSigningKey(): Promise<KeyPairJwk> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { crv: "Ed25519", extractable: true });
  return toKeyPairJwk(await exportJWK(privateKey), "sig");
}

export async function generateEncryptionKey(): Promise<KeyPairJwk> {
  const { privateKey } = await generateKeyPair(KEY_WRAP_ALG, { crv: "X25519", extractable: true });
  return toKeyPairJwk(await exportJWK(privateKey), "enc");
}

async function toKeyPairJwk(jwk: JWK, use: KeyUse): Promise<KeyPairJwk> {
  const { kty, crv, x, d } = jwk;
  if (kty !== "OKP" || (crv !== "Ed25519" && crv !== "X25519") || !x || !d) {
    throw new StafettError("ERR_KEY_INVALID", "generated key is not an OKP key", { reason: "kty" });
  }
  const kid = await calculateJwkThumbprint({ kty, crv, x });
  const alg = use === "sig" ? SIGNING_ALG : KEY_WRAP_ALG;
  const publicJwk: PublicJwk = { kty, crv, x, kid, use, alg };
  return { publicJwk, privateJwk: { ...publicJwk, d } };
}

/** Strips everything but the public members; refuses a JWK that is not an OKP key. */
export function publicJwkOf(jwk: JWK): PublicJwk {
  const { kty, crv, x, kid, use, alg } = jwk;
  if (kty !== "OKP" || (crv !== "Ed25519" && crv !== "X25519") || typeof x !== "string") {
    throw new StafettError("ERR_KEY_INVALID", "key is not an Ed25519 or X25519 JWK", {
      reason: "kty",
    });
  }
  if (typeof kid !== "string" || kid.length === 0) {
    throw new StafettError("ERR_KEY_INVALID", "key has no kid", { reason: "kid" });
  }
  const out: PublicJwk = { kty, crv, x, kid };
  if (use !== undefined) out.use = use;
  if (alg !== undefined) out.alg = alg;
  return out;
}

export async function importSigningKey(jwk: JWK): Promise<KeyHandle> {
  return importKey(jwk, "Ed25519", SIGNING_ALG);
}

export async function importEncryptionKey(jwk: JWK): Promise<KeyHandle> {
  return importKey(jwk, "X25519", KEY_WRAP_ALG);
}

async function importKey(jwk: JWK, crv: "Ed25519" | "X25519", alg: string): Promise<KeyHandle> {
  if (jwk.kty !== "OKP" || jwk.crv !== crv || typeof jwk.kid !== "string") {
    throw new StafettError("ERR_KEY_INVALID", `key is not an ${crv} JWK with a kid`, {
      reason: "kty",
    });
  }
  try {
    const key = await importJWK(jwk, alg);
    if (key instanceof Uint8Array) throw new TypeError("symmetric key");
    return { kid: jwk.kid, key, keyObject: KeyObject.from(key) };
  } catch (cause) {
    throw new StafettError("ERR_KEY_INVALID", `${crv} JWK could not be imported`, {
      reason: "import_failed",
      cause,
    });
  }
}
