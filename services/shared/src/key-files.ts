/**
 * Keys from files. A private key file that group or others can read is refused: a leaked
 * signing key lets anyone speak for the organisation.
 */
import { readFileSync, statSync } from "node:fs";
import { StafettError } from "./errors.js";
import {
  importSigningKey,
  publicJwkOf,
  type KeyHandle,
  type PrivateJwk,
  type PublicJwk,
} from "./keys.js";
import { identityFromJwks } from "./organisations.js";
import type { Identity } from "./pipeline.js";

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

export async function loadIdentity(
  id: string,
  signingKeyFile: string,
  encryptionKeyFile: string,
): Promise<Identity> {
  return identityFromJwks(id, readPrivateJwk(signingKeyFile), readPrivateJwk(encryptionKeyFile));
}
