/**
 * Keys from files. A private key file that group or others can read is refused: a leaked
 * signing key lets anyone speak for the organisation.
 */
import { readFileSync, statSync } from "node:fs";
import { StafettError } from "./errors.js";
import {
  importEncryptionKey,
  importSigningKey,
  publicJwkOf,
  type KeyHandle,
  type PrivateJwk,
  type PublicJwk,
} from "./keys.js";
import { Keyring } from "./keyring.js";
import { parseOrgId } from "./subjects.js";

export function readJsonFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as unknown;
  } catch (cause) {
    throw new StafettError("ERR_CONFIG_INVALID", `cannot read JSON from ${path}`, {
      reason: "unreadable",
      field: path,
      cause,
    });
  }
}

/** Refuses a secret file that group or others can read. */
function assertPrivateFile(path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (cause) {
    throw new StafettError("ERR_CONFIG_INVALID", `cannot read key file ${path}`, {
      reason: "unreadable",
      field: path,
      cause,
    });
  }
  if ((mode & 0o077) !== 0) {
    throw new StafettError(
      "ERR_KEY_INVALID",
      `private key file ${path} is readable by others (chmod 600 it)`,
      {
        reason: "permissions",
        field: path,
      },
    );
  }
}

/** A secret (an nkey seed, a password) from a file only its owner can read. */
export function readSecretFile(path: string): Uint8Array {
  assertPrivateFile(path);
  return new TextEncoder().encode(readFileSync(path, "utf8").trim());
}

export function readPrivateJwk(path: string): PrivateJwk {
  assertPrivateFile(path);
  const jwk = readJsonFile(path) as PrivateJwk;
  if (typeof jwk.d !== "string")
    throw new StafettError("ERR_KEY_INVALID", `${path} holds no private key`, {
      reason: "not_private",
      field: path,
    });
  return jwk;
}

export function readPublicJwk(path: string): PublicJwk {
  return publicJwkOf(readJsonFile(path) as PublicJwk);
}

/** Anchor public keys: files holding a JWK or a JSON array of JWKs; comma-separated paths. */
export async function readAnchorKeys(paths: string): Promise<KeyHandle[]> {
  const out: KeyHandle[] = [];
  for (const path of paths
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const value = readJsonFile(path);
    for (const jwk of Array.isArray(value) ? value : [value])
      out.push(await importSigningKey(publicJwkOf(jwk as PublicJwk)));
  }
  return out;
}

/**
 * An organisation's identity from its private key files: one signing and one encryption key, or
 * several of each during a rollover (a Keyring: it signs with the newest valid one and opens
 * with any; keyring.ts).
 */
export async function loadIdentity(
  id: string,
  signingKeyFiles: readonly string[],
  encryptionKeyFiles: readonly string[],
): Promise<Keyring> {
  parseOrgId(id);
  const signing = await Promise.all(
    signingKeyFiles.map((f) => importSigningKey(privateKeyOf(f, "sig"))),
  );
  const encryption = await Promise.all(
    encryptionKeyFiles.map((f) => importEncryptionKey(privateKeyOf(f, "enc"))),
  );
  return new Keyring(id, signing, encryption);
}

/** A private key file's JWK, refused when it is not of the use it was configured for. */
function privateKeyOf(path: string, use: "sig" | "enc"): PrivateJwk {
  const jwk = readPrivateJwk(path);
  const crv = use === "sig" ? "Ed25519" : "X25519";
  if (jwk.crv !== crv)
    throw new StafettError("ERR_KEY_INVALID", `${path} is not an ${crv} key`, {
      reason: "kty",
      field: path,
    });
  return jwk;
}
